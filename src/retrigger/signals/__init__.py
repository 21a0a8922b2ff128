"""Ingested monitoring signals: metric points, feature sample batches, outcomes, alerts.

Writes come through the routers in ``router.py``; the evaluation layer reads through
``readers.py`` (``read_columns``, ``read_outcomes``, ``read_metric``, ``active_alerts``).
"""
