"""Validated config models, one per file: trial, sweep, search space; YAML I/O in base."""
