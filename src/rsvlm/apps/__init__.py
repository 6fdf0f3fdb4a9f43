"""Applications built on the library layers: end-to-end runs such as the scene demo (``rsvlm demo``)."""
