"""A one-file-per-band folder: which sensor it is, and whether its files belong to one scene.

File names alone are ambiguous: ``B02``/``B03``/``B04``/``B08`` are Sentinel-2 names and, read as ``B2`` …, Landsat
names too. The pixel sizes settle it (Sentinel-2's colour bands are 10 m, Landsat's 30 m, Landsat's B8 is half
the others), so a preset whose resolutions fit the files wins a tie on names. Once chosen, bands in another
CRS, bands that only partly cover the scene and resolutions the preset does not expect give notes; a band
that lies wholly outside the scene (another scene's file in the folder) is refused: its pixels would be nodata
everywhere, or worse, silently mixed with the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsvlm.data.bands import BandPreset, band_from_filename
from rsvlm.errors import DataError

RES_TOLERANCE = 0.05
"""Relative difference under which two pixel sizes count as the same (JPEG2000 grids round to whole pixels)."""
PARTIAL_COVER = 0.9
"""A band covering less of the scene than this gets a note (the rest of it reads as nodata)."""


@dataclass(frozen=True)
class BandFile:
    """What one band file's header says about its grid."""

    path: Path
    crs: Any
    """A ``rasterio.crs.CRS`` or ``None``."""
    res: float
    bounds: tuple[float, float, float, float]
    metres: bool
    """True when the CRS is projected in metres, so ``res`` compares with a preset's ground sampling."""


def read_band_file(path: Path) -> BandFile:
    import rasterio

    try:
        with rasterio.open(path) as src:
            crs = src.crs
            metres = crs is not None and crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter")
            return BandFile(path, crs, abs(src.res[0]), tuple(src.bounds), metres)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(path, f"cannot open band file: {exc}", "remove it from the folder or replace it") from None


def choose_preset(
    files: Sequence[Path], candidates: Sequence[BandPreset]
) -> tuple[BandPreset, dict[str, Path], dict[Path, BandFile], list[str]]:
    """The preset naming most files; among equals, the one whose ground sampling fits the files.

    Returns the preset, its band → file map, the headers read on the way, and a note per band that more than
    one file names (the first in name order is used; two scenes' files in one folder look like this).
    """
    headers: dict[Path, BandFile] = {}

    def header(path: Path) -> BandFile:
        if path not in headers:
            headers[path] = read_band_file(path)
        return headers[path]

    best: tuple[float, BandPreset, dict[str, Path]] | None = None
    for cand in candidates:
        found: dict[str, Path] = {}
        for f in files:
            band = band_from_filename(f.stem, cand)
            if band is not None and band not in found:
                found[band] = f
        fits = [
            _same(header(p).res, cand.resolution_m[cand.bands.index(b)]) for b, p in found.items() if header(p).metres
        ]
        fit = sum(fits) / len(fits) if fits else 0.0
        score = len(found) + 0.5 * fit - 0.01 * (len(cand.bands) - len(found))
        if best is None or score > best[0]:
            best = (score, cand, found)
    assert best is not None
    _, chosen, found = best
    notes = []
    for band, used in found.items():
        others = [f.name for f in files if f != used and band_from_filename(f.stem, chosen) == band]
        if others:
            notes.append(
                f"more than one file for band {band}: using {used.name}, not {', '.join(others)}; "
                "check the folder holds a single scene"
            )
    return chosen, found, headers, notes


def folder_notes(
    preset: BandPreset, found: dict[str, Path], reference: str, headers: dict[Path, BandFile], guessed: bool
) -> list[str]:
    """Notes on a band folder whose files disagree; a band outside the reference band's footprint is refused."""
    ref = headers.get(found[reference]) or read_band_file(found[reference])
    bands = {b: headers.get(p) or read_band_file(p) for b, p in found.items()}
    notes: list[str] = []
    other_crs = [f"{b} ({h.crs})" for b, h in bands.items() if h.crs != ref.crs]
    if other_crs:
        notes.append(
            f"bands in another CRS than {reference} ({ref.crs}) are reprojected to it: {', '.join(other_crs)}; "
            "a product's bands share one CRS, so check the folder holds a single scene"
        )
    partial = []
    for band, h in bands.items():
        cover = _cover(h, ref)
        if cover is None:
            continue
        if cover <= 0.0:
            raise DataError(
                h.path,
                f"band {band} lies outside the scene of {reference} ({ref.path.name}): the folder mixes scenes",
                "keep the band files of one scene per folder",
            )
        if cover < PARTIAL_COVER:
            partial.append(f"{band} {cover:.0%}")
    if partial:
        notes.append(f"bands covering only part of the scene (the rest reads as nodata): {', '.join(partial)}")
    notes.extend(_resolution_notes(preset, bands, reference, ref, guessed))
    return notes


def _resolution_notes(
    preset: BandPreset, bands: dict[str, BandFile], reference: str, ref: BandFile, guessed: bool
) -> list[str]:
    """Pixel sizes that the preset does not expect, relative to the reference band (a resampled stack,
    every band at one size, is fine)."""
    comparable = {b: h for b, h in bands.items() if h.metres == ref.metres}
    if len({round(h.res, 6) for h in comparable.values()}) <= 1:
        return []
    ref_nominal = preset.resolution_m[preset.bands.index(reference)]
    unit = "m" if ref.metres else "units"
    wrong = []
    for band, h in comparable.items():
        expected = ref.res * preset.resolution_m[preset.bands.index(band)] / ref_nominal if ref_nominal else ref.res
        if not _same(h.res, expected):
            wrong.append(f"{band} {h.res:g} {unit} (expected {expected:g})")
    if not wrong:
        return []
    fix = "the preset was guessed from file names: name the sensor with --bands" if guessed else "check the files"
    return [f"band pixel sizes do not fit preset {preset.name}: {', '.join(wrong)}; {fix}"]


def _same(a: float, b: float) -> bool:
    return b > 0 and abs(a - b) <= RES_TOLERANCE * b


def _cover(band: BandFile, ref: BandFile) -> float | None:
    """Fraction of the reference band's footprint the band covers, in the reference CRS (None: unknown)."""
    if (band.crs is None) != (ref.crs is None):
        return None
    left, bottom, right, top = band.bounds
    if band.crs is not None and band.crs != ref.crs:
        from rasterio.warp import transform_bounds

        left, bottom, right, top = transform_bounds(band.crs, ref.crs, left, bottom, right, top)
    rl, rb, rr, rt = ref.bounds
    width = max(0.0, min(right, rr) - max(left, rl))
    height = max(0.0, min(top, rt) - max(bottom, rb))
    area = (rr - rl) * (rt - rb)
    return width * height / area if area > 0 else None
