"""Sweeps: the study record, storages, early-stop decisions, the baseline, progress, and
backends (Optuna, Ray Tune) behind a registry."""
