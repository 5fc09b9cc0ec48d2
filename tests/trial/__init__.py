"""Tests of nas_prune.trial, module for module."""
