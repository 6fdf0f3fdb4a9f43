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
from pathlib import Path

from rsvlm.data.raster import Window
from rsvlm.data.sample import Affine6
from rsvlm.data.tiling import tile_starts
from rsvlm.errors import DataError, RsvlmError

DEFAULT_MAX_TILES = 200_000
"""Tiles one scene may plan before a run is refused (raise it with ``--max-tiles`` / ``max_tiles``).

Measured with rsvlm-lite on 2 CPUs: 13 ms a tile (``benchmarks/results/geo-scaling.md``: 15,625 tiles of a
20,000² scene in 210 s), so the default bounds a scene to about 45 minutes; a whole Sentinel-2 granule
(10,980² px at 10 m, 64-px tiles every 32 px: 117,649 tiles) fits. A 7 MB sparse GeoTIFF that declares
200,000² px (39 million tiles, days of work) does not."""
CELLS_PER_TILE = 4
"""Map cells allowed per tile of the budget. Cells and tiles are about as many for any usual stride; a stride
far under the tile (``--tile 4096 --stride 1``: one tile, 16.7 million cells) would make map arrays of GBs."""
MAX_TILE_BYTES = 1 << 30
"""Largest tile in memory, all bands as float32 (1 GiB): a tile is shrunk to the model's input (160-224 px)
anyway, so bigger tiles only cost memory."""


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
        return len(tile_starts(self.height, self.size, self.stride, flush=False))

    @property
    def cols(self) -> int:
        return len(tile_starts(self.width, self.size, self.stride, flush=False))

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


def plan_tiles(
    source: str | Path, width: int, height: int, bands: int, size: int, stride: int, max_tiles: int | None
) -> TileGrid:
    """The tile grid of a scene, or a one-line error before any pixel is read or any model loads.

    Refused: a tile or stride that is not positive, a stride that does not divide the tile, a tile larger
    than the scene's shorter side (it would be mostly padding, and a huge one is a huge allocation), a tile
    over ``MAX_TILE_BYTES``, a plan of more than ``max_tiles`` tiles and a map of more than
    ``CELLS_PER_TILE * max_tiles`` cells (``max_tiles=None``: no limit on either).
    """
    if size <= 0 or stride <= 0:
        raise DataError(source, f"tile {size} px and stride {stride} px must be positive", "pass --tile/--stride >= 1")
    if size % stride:
        raise DataError(
            source, f"stride {stride} px does not divide tile {size} px", "make --stride a divisor of --tile"
        )
    if width <= 0 or height <= 0:
        raise DataError(source, f"is an empty {width}x{height} px scene")
    if size > min(width, height):
        raise DataError(
            source,
            f"tile {size} px is larger than the {width}x{height} px scene",
            f"pass --tile {min(width, height)} or less",
        )
    tile_bytes = size * size * bands * 4
    if tile_bytes > MAX_TILE_BYTES:
        raise DataError(
            source,
            f"a {size}-px tile of {bands} bands needs {tile_bytes / 2**30:.1f} GiB, over the "
            f"{MAX_TILE_BYTES / 2**30:.0f} GiB limit for one tile",
            "pass a smaller --tile; tiles are shrunk to the model's input anyway",
        )
    grid = TileGrid(width, height, size, stride)
    if max_tiles is not None and len(grid) > max_tiles:
        raise DataError(
            source,
            f"{width}x{height} px in {size}-px tiles every {stride} px plans {len(grid):,} tiles, over the limit "
            f"of {max_tiles:,}",
            "raise the limit with --max-tiles N if you mean it, or pass a larger --tile/--stride",
        )
    rows, cols = grid.cell_shape
    if max_tiles is not None and rows * cols > CELLS_PER_TILE * max_tiles:
        raise DataError(
            source,
            f"a {stride}-px stride makes a map of {rows * cols:,} cells, over the limit of "
            f"{CELLS_PER_TILE * max_tiles:,} ({CELLS_PER_TILE} per tile of --max-tiles)",
            "pass a larger --stride, or raise --max-tiles",
        )
    return grid


def window_transform(transform: Affine6, window: Window) -> Affine6:
    """Transform of a window's pixels: same pixel size, origin moved to the window's top-left corner."""
    a, b, c, d, e, f = transform
    return a, b, a * window.col + b * window.row + c, d, e, d * window.col + e * window.row + f
