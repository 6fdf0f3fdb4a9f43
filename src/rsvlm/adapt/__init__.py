"""Light heads fitted on frozen embeddings, for what a contrastive model does not answer zero-shot."""
