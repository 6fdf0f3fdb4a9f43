"""Dataset building: combining labelled sets into training data for chat models."""
