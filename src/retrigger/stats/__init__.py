"""Statistics for retrigger: drift tests, profiles and streaming drift detectors."""
