"""Pruning methods, one module each; each registers itself on import."""
