"""Small shared utilities: the plug-in registry and atomic file writes."""
