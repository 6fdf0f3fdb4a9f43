"""One module per annotation format; ``rsvlm.data.registry`` names them and detects them."""
