"""Whole scenes: tiling, band presets, maps from text, boxes and counts in map coordinates."""
