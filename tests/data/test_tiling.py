"""Tile starts: the one rule behind dataset tiles (flush with the edge) and scene grids (past the edge, padded)."""

from __future__ import annotations

import numpy as np
import pytest

from rsvlm.data.sample import Boxes
from rsvlm.data.tiling import boxes_in_tile, tile_starts, tiles
from rsvlm.geo.tiling import TileGrid


def test_tiles_cover_the_image_and_boxes_follow_their_centres() -> None:
    windows = tiles(50, 70, 20, 10)
    assert windows[0] == (0, 0, 20, 20) and windows[-1] == (50, 30, 20, 20)
    boxes = Boxes(np.array([[2.0, 2, 8, 8], [15, 15, 30, 25]]), ("Tree", "Tree"))
    inside = boxes_in_tile(boxes, (10, 10, 20, 20))
    assert inside.labels == ("Tree",)  # the first box's centre (5, 5) is outside
    np.testing.assert_array_equal(inside.xyxy, [[5, 5, 20, 15]])  # shifted, clipped to the tile


@pytest.mark.parametrize(
    ("length", "size", "stride"), [(50, 20, 10), (64, 32, 32), (65, 32, 16), (10, 32, 8), (7, 7, 7)]
)
def test_flush_and_padded_tilings_agree_where_the_stride_lands_on_the_edge(length: int, size: int, stride: int) -> None:
    padded, flush = list(tile_starts(length, size, stride, flush=False)), tile_starts(length, size, stride, flush=True)
    assert padded[0] == flush[0] == 0 and padded[-1] + size >= length  # both cover the whole length
    assert flush[-1] == max(0, length - size)  # flush: the last tile ends at the edge
    if (length - size) % stride == 0 or length <= size:
        assert padded == flush
    else:
        assert padded[:-1] == flush[:-1] and padded[-1] > flush[-1]  # padded: the last tile reaches past


def test_scene_grid_counts_its_tiles_with_the_same_rule() -> None:
    grid = TileGrid(width=65, height=50, size=32, stride=16)
    assert grid.cols == len(tile_starts(65, 32, 16, flush=False)) == 4
    assert grid.rows == len(tile_starts(50, 32, 16, flush=False)) == 3
    assert [t.window.col for t in grid][: grid.cols] == list(tile_starts(65, 32, 16, flush=False))
