"""Embedding extraction and its on-disk cache."""
