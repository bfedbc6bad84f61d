"""carbontop's built-in benchmark workloads.

Importing this package imports nothing heavy: torch and numpy are imported inside each workload.
"""
