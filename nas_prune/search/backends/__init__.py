"""Search backends: thin adapters between a Sweep and a search library (Optuna, Ray Tune)."""
