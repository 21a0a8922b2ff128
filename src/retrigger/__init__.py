"""retrigger: when ML models get retrained, decided the same way for every product."""

__version__ = "0.1.0"
