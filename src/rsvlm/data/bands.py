"""Band presets of common sensors, and the RGB composite every RGB-trained model sees.

A multispectral product rarely says which band is red: a Sentinel-2 folder has ``*_B04.jp2``, a Landsat
stack has six unnamed bands. A preset names the bands in file order and says which three make the
natural-colour composite, so ``--bands sentinel2-l1c`` is enough for rsvlm to read any such product.

The composite is stretched per band between scene-wide limits (2nd/98th percentile of the valid pixels of
a decimated whole-scene read), never per tile: per-tile stretching would give every tile its own colours
and make a map's tiles incomparable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage

STRETCH_PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class BandPreset:
    """A sensor product: band names in file order, natural-colour bands, and ground sampling per band."""

    name: str
    description: str
    bands: tuple[str, ...]
    rgb: tuple[str, str, str]
    resolution_m: tuple[float, ...]
    """Pixel size of each band as the product delivers it (what band files are checked against)."""
    wavelength_nm: tuple[float, ...]
    """Centre wavelength of each band (thermal bands too), for readers and spectral indices."""

    @property
    def rgb_index(self) -> tuple[int, int, int]:
        r, g, b = (self.bands.index(name) for name in self.rgb)
        return r, g, b

    def index(self, band: str) -> int:
        """Position of a band given as ``B4``, ``b04``, ``SR_B4`` or ``red`` (for the ``rgb`` preset)."""
        found = band if band in self.bands else band_from_filename(band, self)
        if found is None:
            raise RsvlmError(f"band {band!r} is not in preset {self.name} (bands: {', '.join(self.bands)})")
        return self.bands.index(found)


# Centre wavelengths: ESA Sentinel-2 MSI user guide (S2A), USGS Landsat 8/9 OLI/TIRS and Landsat 7 ETM+ band
# designations. Landsat 7's six-band stack is the usual reflective subset (thermal B6 and pan B8 left out).
_S2_ALL = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_S2_RES = (60.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 10.0, 20.0, 60.0, 60.0, 20.0, 20.0)
_S2_NM = (442.7, 492.4, 559.8, 664.6, 704.1, 740.5, 782.8, 832.8, 864.7, 945.1, 1373.5, 1613.7, 2202.4)
_L2A = tuple(i for i, b in enumerate(_S2_ALL) if b != "B10")
_OLI = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11")  # Landsat 8 and 9 use one table
_OLI_RES = (30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 15.0, 30.0, 30.0, 30.0)  # TIRS senses 100 m, ships 30 m
_OLI_NM = (443.0, 482.0, 561.5, 654.5, 865.0, 1608.5, 2200.5, 589.5, 1373.5, 10895.0, 12005.0)

PRESETS: dict[str, BandPreset] = {
    p.name: p
    for p in (
        BandPreset(
            "sentinel2-l1c",
            "Sentinel-2 MSI Level-1C top-of-atmosphere reflectance x 10000, 13 bands",
            _S2_ALL,
            ("B04", "B03", "B02"),
            _S2_RES,
            _S2_NM,
        ),
        BandPreset(
            "sentinel2-l2a",
            "Sentinel-2 MSI Level-2A surface reflectance x 10000, 12 bands (no cirrus B10)",
            tuple(_S2_ALL[i] for i in _L2A),
            ("B04", "B03", "B02"),
            tuple(_S2_RES[i] for i in _L2A),
            tuple(_S2_NM[i] for i in _L2A),
        ),
        BandPreset(
            "landsat8",
            "Landsat 8 OLI/TIRS, 11 bands (B8 panchromatic at 15 m, B10/B11 thermal)",
            _OLI,
            ("B4", "B3", "B2"),
            _OLI_RES,
            _OLI_NM,
        ),
        BandPreset(
            "landsat9",
            "Landsat 9 OLI-2/TIRS-2, 11 bands (same designations as Landsat 8)",
            _OLI,
            ("B4", "B3", "B2"),
            _OLI_RES,
            _OLI_NM,
        ),
        BandPreset(
            "landsat7",
            "Landsat 7 ETM+ reflective bands 1-5 and 7 (the usual 6-band stack)",
            ("B1", "B2", "B3", "B4", "B5", "B7"),
            ("B3", "B2", "B1"),
            (30.0,) * 6,
            (483.0, 560.0, 662.0, 835.0, 1648.0, 2206.0),
        ),
        BandPreset(
            "rgb",
            "Three-band natural colour (photographs, aerial RGB)",
            ("red", "green", "blue"),
            ("red", "green", "blue"),
            (0.0, 0.0, 0.0),
            (650.0, 550.0, 470.0),
        ),
    )
}

_BAND_RE = re.compile(r"(?:^|[_\-.])(B\d{1,2}A?)(?:$|[_\-.])", re.IGNORECASE)


def get_preset(name: str) -> BandPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise RsvlmError(f"unknown band preset {name!r} (known: {', '.join(PRESETS)})") from None


def band_from_filename(stem: str, preset: BandPreset) -> str | None:
    """The preset band a name refers to: ``T18SUJ_20180807_B8A`` → ``B8A``, ``SR_B4``/``b04`` → ``B4`` (Landsat).

    Sentinel-2 writes two digits and Landsat one, so both spellings are tried against the preset.
    """
    for match in _BAND_RE.finditer(f"_{stem}_"):
        token = match.group(1).upper()
        for candidate in (token, _two_digit(token), _one_digit(token)):
            if candidate in preset.bands:
                return candidate
    return None


def _two_digit(token: str) -> str:
    digits = token[1:].rstrip("A")
    return f"B{int(digits):02d}{'A' if token.endswith('A') else ''}" if digits.isdigit() else token


def _one_digit(token: str) -> str:
    digits = token[1:].rstrip("A")
    return f"B{int(digits)}{'A' if token.endswith('A') else ''}" if digits.isdigit() else token


def data_mask(image: RasterImage) -> npt.NDArray[np.bool_]:
    """True where a pixel holds data: NOT every band equals nodata (and no band is NaN).

    Scenes need this gentler rule than "any band equals nodata": 8-bit aerial imagery often declares
    nodata = 255 (the NEON tiles do), and a pixel saturated in one band is data, not a hole. A real
    nodata area (outside the swath, a masked region) has the nodata value in every band.
    """
    data = image.data
    mask = np.ones(data.shape[1:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        mask &= ~np.isnan(data).any(axis=0)
    if image.nodata is not None and not np.isnan(image.nodata):
        mask &= ~(data == image.nodata).all(axis=0)
    return mask


@dataclass(frozen=True)
class BandStats:
    """Per-band stretch limits for a whole scene: value ``lo`` maps to 0, ``hi`` to 1."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def as_arrays(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        return np.asarray(self.lo, dtype=np.float32), np.asarray(self.hi, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"lo": list(self.lo), "hi": list(self.hi)}


def band_stats(image: RasterImage, percentiles: tuple[float, float] = STRETCH_PERCENTILES) -> BandStats:
    """Percentile limits of the valid pixels of each band (give it a decimated whole-scene read)."""
    valid = data_mask(image)
    lo: list[float] = []
    hi: list[float] = []
    for band in image.data:
        keep = valid if image.nodata is None or np.isnan(image.nodata) else valid & (band != image.nodata)
        values = band[keep].astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            lo.append(0.0)
            hi.append(1.0)
            continue
        low, high = np.percentile(values, percentiles)
        if high <= low:  # a constant band: keep it mid-grey instead of dividing by zero
            low, high = float(low) - 0.5, float(low) + 0.5
        lo.append(float(low))
        hi.append(float(high))
    return BandStats(tuple(lo), tuple(hi))


def stretch(
    data: npt.NDArray[Any], stats: BandStats, bands: tuple[int, ...], valid: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float32]:
    """``(len(bands), H, W)`` float32 in [0, 1]; nodata pixels are 0 (black)."""
    lo, hi = stats.as_arrays()
    idx = list(bands)
    out: npt.NDArray[np.float32] = (data[idx].astype(np.float32) - lo[idx, None, None]) / (
        hi[idx, None, None] - lo[idx, None, None]
    )
    out = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    if valid is not None:
        out[:, ~valid] = 0.0
    return out


def rgb_composite(image: RasterImage, rgb: tuple[int, int, int], stats: BandStats) -> RasterImage:
    """The 8-bit natural-colour composite of an N-band image, stretched with scene-wide ``stats``.

    Returns a three-band uint8 ``RasterImage`` with the input's georeference; nodata stays nodata (0).
    """
    from rsvlm.data.sample import RasterImage

    if max(rgb) >= image.band_count:
        raise RsvlmError(f"composite bands {rgb} need at least {max(rgb) + 1} bands; the image has {image.band_count}")
    valid = data_mask(image)
    if image.dtype == np.uint8 and _is_identity(stats, rgb):
        data = image.data[list(rgb)].copy()
        data[:, ~valid] = 0
    else:
        data = np.rint(stretch(image.data, stats, rgb, valid) * 255.0).astype(np.uint8)
    return RasterImage(data, ("red", "green", "blue"), nodata=None, geo=image.geo)


def identity_stats(count: int) -> BandStats:
    """Limits that leave 8-bit data untouched (0 → 0, 255 → 255)."""
    return BandStats((0.0,) * count, (255.0,) * count)


def _is_identity(stats: BandStats, rgb: tuple[int, int, int]) -> bool:
    return all(stats.lo[i] == 0.0 and stats.hi[i] == 255.0 for i in rgb)
