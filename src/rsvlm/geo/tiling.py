"""Cutting a scene into model-sized tiles, and the coarser grid of cells that maps are written on.

Tiles are ``size`` pixels square and start every ``stride`` pixels; ``stride`` divides ``size``, so every
tile covers a whole number of ``stride``-sized cells and each cell is seen by ``(size / stride)²`` tiles
(fewer at the edges). Tiles at the right and bottom edges may reach past the scene; the reader pads them
with nodata, so every tile has the same size and the model sees the same scale everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from rsvlm.data.raster import Window
from rsvlm.data.sample import Affine6
from rsvlm.errors import RsvlmError


@dataclass(frozen=True)
class Tile:
    """One tile: its place in the tile grid and its pixel window in the scene (may reach past the edge)."""

    index: int
    grid_row: int
    grid_col: int
    window: Window


@dataclass(frozen=True)
class TileGrid:
    width: int
    height: int
    size: int
    stride: int

    def __post_init__(self) -> None:
        if self.size <= 0 or self.stride <= 0 or self.size % self.stride:
            raise RsvlmError(f"tile size {self.size} must be a positive multiple of the stride {self.stride}")
        if self.width <= 0 or self.height <= 0:
            raise RsvlmError(f"cannot tile an empty {self.width}x{self.height} scene")

    @property
    def rows(self) -> int:
        return max(1, math.ceil((self.height - self.size) / self.stride) + 1)

    @property
    def cols(self) -> int:
        return max(1, math.ceil((self.width - self.size) / self.stride) + 1)

    def __len__(self) -> int:
        return self.rows * self.cols

    @property
    def cells_per_tile(self) -> int:
        return self.size // self.stride

    @property
    def cell_shape(self) -> tuple[int, int]:
        """(rows, cols) of the map grid: one cell per ``stride`` pixels, covering the scene."""
        return math.ceil(self.height / self.stride), math.ceil(self.width / self.stride)

    def tile(self, index: int) -> Tile:
        row, col = divmod(index, self.cols)
        return Tile(index, row, col, Window(col * self.stride, row * self.stride, self.size, self.size))

    def __iter__(self) -> Iterator[Tile]:
        return (self.tile(i) for i in range(len(self)))

    def batches(self, batch_size: int) -> Iterator[list[Tile]]:
        """Consecutive tiles in row-major order, so a batch reads neighbouring windows of the file."""
        for start in range(0, len(self), batch_size):
            yield [self.tile(i) for i in range(start, min(start + batch_size, len(self)))]

    def cell_slices(self, tile: Tile) -> tuple[slice, slice]:
        """The cells of the map grid a tile covers, clipped to the grid."""
        rows, cols = self.cell_shape
        k = self.cells_per_tile
        r0, c0 = tile.window.row // self.stride, tile.window.col // self.stride
        return slice(r0, min(r0 + k, rows)), slice(c0, min(c0 + k, cols))

    def cell_transform(self, transform: Affine6) -> Affine6:
        """The map grid's affine transform: the scene's, with pixels ``stride`` times larger."""
        a, b, c, d, e, f = transform
        s = self.stride
        return a * s, b * s, c, d * s, e * s, f


def window_transform(transform: Affine6, window: Window) -> Affine6:
    """Transform of a window's pixels: same pixel size, origin moved to the window's top-left corner."""
    a, b, c, d, e, f = transform
    return a, b, a * window.col + b * window.row + c, d, e, d * window.col + e * window.row + f
