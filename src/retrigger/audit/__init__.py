"""The audit trail: who changed what, when, with the diff."""
