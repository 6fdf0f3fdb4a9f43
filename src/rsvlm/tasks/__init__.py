"""Evaluation tasks. Each depends only on embeddings or on the model protocols, never on a model class."""
