"""Checks run once to answer one question; kept with the figures they gave (docs/performance.md)."""
