"""One trial: run_trial (run), the dense cache, fine-tuning, early-stop monitor, artifacts.
Imports neither Optuna nor Ray."""
