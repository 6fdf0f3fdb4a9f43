"""Samples, readers (one module per format), raster I/O and the constants every layer shares (bands, names)."""
