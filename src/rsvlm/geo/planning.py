"""Checking a whole-scene run before any work: tile sizes, the tile budget, output names, valid pixels.

Everything here reads headers and, at most, one decimated look at each scene, so a run that cannot work (a
sparse file declaring 200,000² px, ``--tile 100000`` on a 256-px image, a scene of nodata, two inputs that
would write the same folder) stops with one line before the model loads or a file is written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import digest_text, unique_slugs
from rsvlm.geo.maps import MapSettings
from rsvlm.geo.source import Scene
from rsvlm.geo.tiling import DEFAULT_MAX_TILES, plan_tiles

MIN_AUTO_TILE = 32
"""Smallest automatic tile: a smaller one blown up to the model's 160-224 px input shows it nothing."""
MAX_AUTO_TILE = 512
RESERVED_NAMES = frozenset({"neon-trees", "report.html", "adapter"})
"""Names the demo writes at the top of its output folder, which a scene's folder must not take."""


def auto_tile(scene: Scene) -> tuple[int, int]:
    """Tile and stride in pixels: ~640 m tiles where the ground resolution is known (the scale of AID
    scenes the default model learnt from), else 160 px; half-tile stride; never larger than the scene.

    A scene shorter than ``MIN_AUTO_TILE`` on a side (a 1x1 raster) is refused: it holds no whole tile.
    """
    shorter = min(scene.width, scene.height)
    if shorter < MIN_AUTO_TILE:
        raise DataError(
            scene.path,
            f"the {scene.width}x{scene.height} px scene is smaller than one {MIN_AUTO_TILE}-px tile "
            "(the smallest automatic tile)",
            f"pass --tile {shorter} or less to map it anyway" if shorter > 1 else "give a larger scene",
        )
    a, _, _, d, _, _ = scene.transform
    gsd = math.hypot(a, d)
    projected = scene.crs is not None and not scene.crs.upper().startswith(("EPSG:4326", "OGC:CRS84"))
    tile = round(640.0 / gsd / 16.0) * 16 if projected and gsd > 0 else 160
    tile = max(MIN_AUTO_TILE, min(tile, MAX_AUTO_TILE, (shorter // 16) * 16))
    return tile, tile // 2


def plan_settings(
    scene: Scene, tile: int | None, stride: int | None, max_tiles: int | None = DEFAULT_MAX_TILES
) -> MapSettings:
    """Map settings for ``scene`` from the user's ``--tile``/``--stride`` (``None``: automatic), checked
    against the scene and the tile budget now, so a bad plan fails before any pixel is read."""
    if max_tiles is not None and max_tiles < 1:
        raise RsvlmError(f"--max-tiles {max_tiles} must be at least 1 (it bounds the tiles of one scene)")
    if tile is None:
        auto, auto_stride = auto_tile(scene)
        tile, stride = auto, auto_stride if stride is None else stride
    elif stride is None:
        stride = tile
    plan_tiles(scene.path, scene.width, scene.height, scene.band_count, tile, stride, max_tiles)
    return MapSettings(tile=tile, stride=stride, max_tiles=max_tiles)


def output_folders(inputs: Sequence[Path], scenes: Sequence[Scene]) -> list[str]:
    """One distinct, readable folder name per scene: ``a/scene.tif`` and ``b/scene.tif`` get a short digest of
    their paths, ``日本.tif`` stays ``日本``; an input given twice is refused (one run would overwrite the other)."""
    keys = [str(Path(p).resolve()) for p in inputs]
    names = unique_slugs([s.name for s in scenes], fallback="scene", keys=keys)
    return [f"{n}-{digest_text(k)}" if n in RESERVED_NAMES else n for n, k in zip(names, keys, strict=True)]
