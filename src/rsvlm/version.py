"""The package version, in the bottom layer so that any module may record it (run records, reports).

``rsvlm.__version__`` is the same value; ``tests/test_layers.py`` checks both against the installed metadata.
"""

__version__ = "0.1.0"
