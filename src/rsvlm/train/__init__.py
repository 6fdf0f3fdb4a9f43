"""Training: configs, data assembly, augmentations and the contrastive trainer."""
