"""Reporters: turn step results into console lines, CI outputs, summaries and annotations."""
