"""Tile grids: how many tiles, that they cover the scene, the cells each one writes, and the transforms."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window as RioWindow
from rasterio.windows import transform as rio_window_transform

from rsvlm.data.raster import Window
from rsvlm.data.sample import Affine6
from rsvlm.errors import RsvlmError
from rsvlm.geo.tiling import TileGrid, window_transform

S2_TRANSFORM: Affine6 = (10.0, 0.0, 435730.0, 0.0, -10.0, 4179460.0)
ROTATED: Affine6 = (2.0, 0.5, 100.0, 0.3, -2.0, 500.0)
"""A rotated and sheared pixel grid: every term of the affine matters."""


def _coverage(grid: TileGrid) -> np.ndarray:
    """How many tiles see each pixel of the scene (the part of a window past the edge is dropped)."""
    counts = np.zeros((grid.height, grid.width), dtype=np.int64)
    for tile in grid:
        w = tile.window
        counts[w.row : w.row + w.height, w.col : w.col + w.width] += 1
    return counts


@pytest.mark.parametrize(
    ("width", "height", "size", "stride", "rows", "cols"),
    [
        (100, 60, 20, 10, 5, 9),  # sizes divide: last tile ends exactly on the edge
        (100, 60, 20, 20, 3, 5),  # no overlap
        (105, 61, 20, 10, 6, 10),  # sizes do not divide: one more tile reaches past the edge
        (1933, 1947, 224, 112, 17, 17),  # the Sentinel-2 test scene at a model's tile size
        (5, 7, 20, 10, 1, 1),  # a scene smaller than one tile is one (padded) tile
    ],
)
def test_rows_cols_and_len(width: int, height: int, size: int, stride: int, rows: int, cols: int) -> None:
    grid = TileGrid(width, height, size, stride)
    assert (grid.rows, grid.cols, len(grid)) == (rows, cols, rows * cols)
    tiles = list(grid)
    assert len(tiles) == rows * cols
    assert [t.index for t in tiles] == list(range(len(grid)))
    last = tiles[-1]
    assert (last.grid_row, last.grid_col) == (rows - 1, cols - 1)
    assert last.window == Window((cols - 1) * stride, (rows - 1) * stride, size, size)


@pytest.mark.parametrize(("width", "height", "size", "stride"), [(100, 60, 20, 10), (105, 61, 20, 10), (97, 43, 16, 4)])
def test_every_pixel_is_covered_and_no_tile_starts_outside(width: int, height: int, size: int, stride: int) -> None:
    grid = TileGrid(width, height, size, stride)
    counts = _coverage(grid)
    assert counts.min() >= 1
    for tile in grid:
        assert tile.window.width == tile.window.height == size
        assert 0 <= tile.window.col < width and 0 <= tile.window.row < height
    # the grid is minimal: without its last column (row) of tiles the right (bottom) edge would be uncovered
    assert (grid.cols - 1) * stride + size >= width
    assert (grid.rows - 1) * stride + size >= height
    if grid.cols > 1:
        assert (grid.cols - 2) * stride + size < width
    if grid.rows > 1:
        assert (grid.rows - 2) * stride + size < height


def test_batches_are_consecutive_row_major_tiles() -> None:
    grid = TileGrid(105, 61, 20, 10)
    batches = list(grid.batches(7))
    assert [len(b) for b in batches] == [7] * 8 + [4]
    assert [t.index for b in batches for t in b] == list(range(len(grid)))


@pytest.mark.parametrize(("size", "stride"), [(20, 7), (20, 0), (0, 5), (10, 20), (-20, 10)])
def test_stride_must_divide_size(size: int, stride: int) -> None:
    with pytest.raises(RsvlmError, match="multiple of the stride"):
        TileGrid(100, 100, size, stride)


def test_empty_scene_is_refused() -> None:
    with pytest.raises(RsvlmError, match="empty 0x10 scene"):
        TileGrid(0, 10, 20, 10)


@pytest.mark.parametrize(("width", "height", "size", "stride"), [(100, 60, 20, 10), (105, 61, 20, 5), (50, 50, 64, 16)])
def test_cell_slices_stay_inside_and_interior_cells_are_seen_by_k_squared_tiles(
    width: int, height: int, size: int, stride: int
) -> None:
    grid = TileGrid(width, height, size, stride)
    rows, cols = grid.cell_shape
    assert (rows, cols) == (-(-height // stride), -(-width // stride))
    k = grid.cells_per_tile
    assert k == size // stride
    counts = np.zeros((rows, cols), dtype=np.int64)
    for tile in grid:
        rs, cs = grid.cell_slices(tile)
        assert 0 <= rs.start < rs.stop <= rows and 0 <= cs.start < cs.stop <= cols
        assert (rs.start * stride, cs.start * stride) == (tile.window.row, tile.window.col)
        counts[rs, cs] += 1

    # tile t (in cell units) covers cells t .. t+k-1, so cell r is seen by tile rows max(0, r-k+1) .. min(r, rows-1)
    def seen(n_cells: int, n_tiles: int) -> np.ndarray:
        r = np.arange(n_cells)
        return np.minimum(r, n_tiles - 1) - np.maximum(0, r - k + 1) + 1

    expected = np.outer(seen(rows, grid.rows), seen(cols, grid.cols))
    np.testing.assert_array_equal(counts, expected)
    assert counts.min() >= 1
    if rows > 2 * k and cols > 2 * k:
        interior = counts[k - 1 : grid.rows, k - 1 : grid.cols]
        assert interior.size > 0 and (interior == k * k).all()
        assert counts.max() == k * k


def test_cell_transform_scales_pixels_by_stride_and_keeps_origin() -> None:
    grid = TileGrid(1933, 1947, 224, 56)
    assert grid.cell_transform(S2_TRANSFORM) == (560.0, 0.0, 435730.0, 0.0, -560.0, 4179460.0)
    cell = Affine(*grid.cell_transform(ROTATED))
    scene = Affine(*ROTATED)
    for r, c in [(0, 0), (3, 5), (34, 34)]:
        # corner of cell (r, c) is the corner of scene pixel (r * stride, c * stride)
        assert cell @ (c, r) == pytest.approx(scene @ (c * 56, r * 56))


def test_window_transform_north_up() -> None:
    t = window_transform(S2_TRANSFORM, Window(100, 30, 224, 224))
    assert t == (10.0, 0.0, 435730.0 + 1000.0, 0.0, -10.0, 4179460.0 - 300.0)


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")  # inside rasterio.windows
@pytest.mark.parametrize(("col", "row"), [(0, 0), (7, 3), (112, 448)])
def test_window_transform_rotated_matches_rasterio(col: int, row: int) -> None:
    t = window_transform(ROTATED, Window(col, row, 64, 32))
    a, b, _, d, e, _ = ROTATED
    assert t[:2] == (a, b) and t[3:5] == (d, e)  # same pixel size and rotation
    assert t[2] == pytest.approx(a * col + b * row + 100.0)
    assert t[5] == pytest.approx(d * col + e * row + 500.0)
    reference = rio_window_transform(RioWindow(col, row, 64, 32), Affine(*ROTATED))
    assert t == pytest.approx(tuple(reference)[:6])
    # the window's pixel (i, j) is the scene's pixel (col + i, row + j)
    assert Affine(*t) @ (5, 9) == pytest.approx(Affine(*ROTATED) @ (col + 5, row + 9))
