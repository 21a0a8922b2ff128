"""Decisions: every evaluation's explained outcome, the guards that may suppress it, and the
mutable evaluation state of each product (detectors, schedules, M-of-N history, budget)."""
