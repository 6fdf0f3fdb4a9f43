"""Model families behind small protocols; ``rsvlm.models.registry`` names what can be loaded."""
