"""Writing maps as georeferenced GeoTIFFs and as PNG overlays on the scene.

GeoTIFFs carry the scene's CRS and the map grid's transform, so they open on top of the input in QGIS
or any GIS; class maps get a colour table and class names in the band description, probability and
similarity rasters get one named float band per text. PNGs are for people: the scene's composite with
the map blended over it, at the overview's size.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.sample import Affine6

CLASS_NODATA = 255

PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
)  # fmt: skip
"""Distinct colours for land-cover classes (the 'tab20'-style qualitative set)."""

_RAMP = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32
)  # dark → bright, a perceptually ordered ramp close to 'inferno'


def class_color(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def write_float_map(
    path: str | Path, data: npt.NDArray[np.float32], transform: Affine6, crs: str | None, names: Sequence[str]
) -> Path:
    """A (bands, rows, cols) float32 GeoTIFF, NaN as nodata, one described band per name."""
    import rasterio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = data if data.ndim == 3 else data[None]
    profile = _profile(data.shape, "float32", transform, crs, nodata=float("nan"))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32))
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
    return path


def write_class_map(
    path: str | Path, classes: npt.NDArray[np.uint8], transform: Affine6, crs: str | None, names: Sequence[str]
) -> Path:
    """A uint8 class-index GeoTIFF with a colour table; class names go into the metadata tags."""
    import rasterio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = _profile((1, *classes.shape), "uint8", transform, crs, nodata=CLASS_NODATA)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes[None])
        dst.write_colormap(1, {i: (*class_color(i), 255) for i in range(len(names))} | {CLASS_NODATA: (0, 0, 0, 0)})
        dst.update_tags(**{f"class_{i}": name for i, name in enumerate(names)})
        dst.set_band_description(1, "land cover class index")
    return path


def _profile(shape: Sequence[int], dtype: str, transform: Affine6, crs: str | None, nodata: float) -> dict[str, Any]:
    from affine import Affine

    bands, rows, cols = shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "count": bands,
        "height": rows,
        "width": cols,
        "dtype": dtype,
        "transform": Affine(*transform),
        "nodata": nodata,
        "compress": "deflate",
    }
    if crs is not None:
        profile["crs"] = crs
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def ramp(values: npt.NDArray[np.float32], lo: float | None = None, hi: float | None = None) -> npt.NDArray[np.uint8]:
    """Values → RGB on the ramp, stretched between ``lo``/``hi`` (default 2nd/98th percentile); NaN → black."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros((*values.shape, 3), dtype=np.uint8)
    lo = float(np.percentile(finite, 2)) if lo is None else lo
    hi = float(np.percentile(finite, 98)) if hi is None else hi
    t = np.clip((np.nan_to_num(values, nan=lo) - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    frac = (t - i)[..., None]
    rgb = _RAMP[i] * (1 - frac) + _RAMP[i + 1] * frac
    rgb[~np.isfinite(values)] = 0
    out: npt.NDArray[np.uint8] = rgb.astype(np.uint8)
    return out


def classes_rgb(classes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    lut = np.zeros((256, 3), dtype=np.uint8)
    for i in range(255):
        lut[i] = class_color(i)
    return lut[classes]


def overlay(
    base: npt.NDArray[np.uint8],
    layer: npt.NDArray[np.uint8],
    cell: float,
    alpha: float = 0.55,
    mask: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.uint8]:
    """``layer`` (the map grid, rows x cols x 3) blended over ``base`` (the scene overview, H x W x 3).

    ``cell`` is the size of one map cell in overview pixels (stride x overview/scene scale); each overview
    pixel takes the cell it falls in, so the overlay lies exactly where the GeoTIFF does. Cells outside
    ``mask`` (no valid tile) leave the scene visible.
    """
    h, w = base.shape[:2]
    rows = np.minimum((np.arange(h) / cell).astype(np.int64), layer.shape[0] - 1)
    cols = np.minimum((np.arange(w) / cell).astype(np.int64), layer.shape[1] - 1)
    up = layer[rows[:, None], cols[None, :]].astype(np.float32)
    blend = base.astype(np.float32) * (1 - alpha) + up * alpha
    if mask is not None:
        keep = ~mask[rows[:, None], cols[None, :]]
        blend[keep] = base[keep]
    out: npt.NDArray[np.uint8] = np.clip(blend, 0, 255).astype(np.uint8)
    return out


def png_bytes(rgb: npt.NDArray[np.uint8]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_png(path: str | Path, rgb: npt.NDArray[np.uint8]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(rgb))
    return path
