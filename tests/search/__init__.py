"""Tests of nas_prune.search, module for module."""
