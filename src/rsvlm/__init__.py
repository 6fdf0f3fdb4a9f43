"""rsvlm: vision-language models for remote-sensing imagery.

Importing the package is cheap on purpose: heavy libraries (torch, rasterio, transformers) are
imported inside the functions that need them, so the CLI starts instantly.
"""

__version__ = "0.1.0"
