"""Tests of nas_prune.results, module for module."""
