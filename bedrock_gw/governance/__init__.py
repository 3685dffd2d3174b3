"""Governing who may use what: per-key limits and budgets, usage accounting, metrics.

The pure parts (``limits``, ``usage``, ``observe``) hold no I/O; ``usage_store`` owns the SQLite
file on a thread of its own; ``governor`` ties them to requests.
"""
