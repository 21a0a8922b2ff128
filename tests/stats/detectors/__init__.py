"""Tests of the streaming drift detectors."""
