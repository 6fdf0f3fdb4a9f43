"""Whole scenes: tiling, maps from text, boxes, GeoJSON and counts in map coordinates.

Band presets are data every layer reads: ``rsvlm.data.bands``.
"""
