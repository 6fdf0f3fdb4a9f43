"""A scene to analyse: one raster of any band count, or a folder with one file per band.

Products such as Sentinel-2 ship one JPEG2000 per band at 10, 20 and 60 m. ``Scene`` puts every band on
the grid of the finest one (GDAL's warped VRT, bilinear), so a window read returns all bands aligned,
pixel for pixel, without ever resampling or loading a whole band. Reads go through windows only; a
whole-scene look (for stretch limits and overlays) is a decimated read whose size is capped.

A ``Scene`` is picklable (it reopens its files lazily), so tiles can be read inside Dask workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.bands import PRESETS, BandPreset, data_mask, get_preset
from rsvlm.data.raster import RASTERIO_SUFFIXES, Window, window_geo
from rsvlm.data.sample import Affine6, GeoInfo, RasterImage
from rsvlm.errors import DataError, RsvlmError
from rsvlm.geo.bandfolder import choose_preset, folder_notes

if TYPE_CHECKING:
    from collections.abc import Sequence

SCENE_SUFFIXES = RASTERIO_SUFFIXES | {".png", ".jpg", ".jpeg"}
BLOCK_CACHE_BYTES = 256 * 1024 * 1024
"""GDAL's block cache for scene reads. GDAL's default is 5 % of RAM (1.2 GB on a 24 GB machine), which a
whole-scene pass fills with blocks it never reads again; 256 MB holds several rows of 512-px blocks of a
wide multi-band scene, so reads stay fast and memory stays flat. A ``GDAL_CACHEMAX`` set by the user wins."""

OVERVIEW_BYTES = 256 * 1024 * 1024
"""Most memory a whole-scene look may take: 1,024² px of up to 128 bands of 16-bit data; more bands read smaller."""

DEFAULT_NODATA = {"sentinel2-l1c": 0.0, "sentinel2-l2a": 0.0, "landsat8": 0.0, "landsat9": 0.0, "landsat7": None}
"""Nodata when the file declares none: Sentinel-2 and Landsat Collection 2 products use 0 for no data."""


@dataclass
class Scene:
    """Band files (one multi-band file, or one file per band) read as one aligned N-band raster."""

    files: tuple[Path, ...]
    """One path per band for a band folder; a single path for a multi-band file."""
    band_names: tuple[str, ...]
    width: int
    height: int
    crs: str | None
    transform: Affine6
    dtype: str
    nodata: float | None
    preset: BandPreset | None
    rgb: tuple[int, int, int]
    notes: list[str] = field(default_factory=list)
    """Warnings found on opening (bands in another CRS, pixel sizes the preset does not expect …)."""
    _handles: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def band_count(self) -> int:
        return len(self.band_names)

    @property
    def name(self) -> str:
        return self.files[0].parent.name if len(self.files) > 1 else self.files[0].stem

    @property
    def path(self) -> Path:
        """What the user named: the raster file, or the band folder."""
        return self.files[0].parent if len(self.files) > 1 else self.files[0]

    @property
    def geo(self) -> GeoInfo:
        window = Window(0, 0, self.width, self.height)
        return _geo(self.crs, self.transform, window)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = []  # GDAL handles do not cross processes; each worker reopens the files
        return state

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles.clear()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> list[Any]:
        """Datasets to read from, in band order; bands on another grid come through a warped VRT."""
        if self._handles:
            return self._handles
        _cap_block_cache()
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        for path in self.files:
            try:
                src = rasterio.open(path)
            except rasterio.errors.RasterioIOError as exc:
                raise DataError(
                    path, f"cannot open band file: {exc}", "check the file exists and is a raster"
                ) from None
            same = src.width == self.width and src.height == self.height and tuple(src.transform)[:6] == self.transform
            if len(self.files) > 1 and not same:
                # Sentinel-2 JPEG2000s declare no nodata; without it the warper would blend the 0s of a nodata
                # area into the edge pixels next to it, giving wrong values that look valid.
                nodata = src.nodata if src.nodata is not None else self.nodata
                masking = {} if nodata is None else {"src_nodata": nodata, "nodata": nodata}
                vrt = WarpedVRT(
                    src,
                    crs=self.crs or src.crs,
                    transform=_affine(self.transform),
                    width=self.width,
                    height=self.height,
                    resampling=Resampling.bilinear,
                    **masking,
                )
                self._handles.append(_Owned(vrt, src))
            else:
                self._handles.append(src)
        return self._handles

    def read(self, window: Window, bands: Sequence[int] | None = None) -> tuple[RasterImage, npt.NDArray[np.bool_]]:
        """Pixels of ``window`` (0-based ``bands``, default all) and the mask of pixels that hold data.

        The part of the window past the scene's edge is padded (nodata, or 0 when the scene has none) and
        marked invalid in the mask, so edge tiles have the same size as the others.
        """
        from rasterio.windows import Window as RioWindow

        indexes = list(range(self.band_count)) if bands is None else list(bands)
        col0, row0 = max(window.col, 0), max(window.row, 0)
        col1, row1 = min(window.col + window.width, self.width), min(window.row + window.height, self.height)
        fill = self.nodata if self.nodata is not None and not math.isnan(self.nodata) else 0
        data = np.full((len(indexes), window.height, window.width), fill, dtype=self.dtype)
        valid = np.zeros((window.height, window.width), dtype=bool)
        if col1 > col0 and row1 > row0:
            inner = RioWindow(col0, row0, col1 - col0, row1 - row0)
            rows = slice(row0 - window.row, row1 - window.row)
            cols = slice(col0 - window.col, col1 - window.col)
            data[:, rows, cols] = self._read_bands(indexes, inner)
            valid[rows, cols] = True
        image = RasterImage(
            data,
            tuple(self.band_names[i] for i in indexes),
            nodata=self.nodata,
            geo=_geo(self.crs, self.transform, window),
        )
        return image, valid & data_mask(image)

    def _read_bands(self, indexes: list[int], window: Any, out_shape: tuple[int, int] | None = None) -> Any:
        from rasterio.enums import Resampling
        from rasterio.errors import RasterioError

        handles = self._open()
        try:
            if len(self.files) == 1:
                shape = None if out_shape is None else (len(indexes), *out_shape)
                return handles[0].read(
                    [i + 1 for i in indexes], window=window, out_shape=shape, resampling=Resampling.nearest
                )
            return np.stack(
                [handles[i].read(1, window=window, out_shape=out_shape, resampling=Resampling.nearest) for i in indexes]
            )
        except RasterioError as exc:
            raise DataError(
                self.files[0], f"cannot read pixels: {exc}", "the file may be corrupt or truncated"
            ) from None

    def overview(self, max_side: int = 1024, bands: Sequence[int] | None = None) -> RasterImage:
        """The whole scene decimated so its longer side is at most ``max_side`` pixels (nearest neighbour)."""
        from rasterio.windows import Window as RioWindow

        indexes = list(range(self.band_count)) if bands is None else list(bands)
        per_pixel = len(indexes) * np.dtype(self.dtype).itemsize
        max_side = max(1, min(max_side, math.isqrt(OVERVIEW_BYTES // per_pixel)))  # many bands: a smaller look
        scale = max(self.width, self.height) / max_side
        if scale < 1:
            scale = 1.0
        shape = (max(1, round(self.height / scale)), max(1, round(self.width / scale)))
        data = self._read_bands(indexes, RioWindow(0, 0, self.width, self.height), out_shape=shape)
        a, b, c, d, e, f = self.transform
        sx, sy = self.width / shape[1], self.height / shape[0]
        geo = GeoInfo(self.crs, (a * sx, b * sy, c, d * sx, e * sy, f), None, self.geo.bounds)
        return RasterImage(np.asarray(data), tuple(self.band_names[i] for i in indexes), nodata=self.nodata, geo=geo)

    def describe(self) -> str:
        preset = self.preset.name if self.preset else "none"
        rgb = ",".join(self.band_names[i] for i in self.rgb)
        return (
            f"{self.name}: {self.width}x{self.height} px, {self.band_count} bands ({', '.join(self.band_names)}), "
            f"{self.dtype}, preset {preset}, RGB = {rgb}, CRS {self.crs or 'none'}"
        )


def _cap_block_cache() -> None:
    import os

    from rasterio.env import set_gdal_config

    if "GDAL_CACHEMAX" not in os.environ:
        set_gdal_config("GDAL_CACHEMAX", BLOCK_CACHE_BYTES)


class _Owned:
    """A warped VRT that also closes the dataset it warps."""

    def __init__(self, vrt: Any, src: Any) -> None:
        self.vrt, self.src = vrt, src

    def read(self, *args: Any, **kwargs: Any) -> Any:
        return self.vrt.read(*args, **kwargs)

    def close(self) -> None:
        self.vrt.close()
        self.src.close()


def _affine(t: Affine6) -> Any:
    from affine import Affine

    return Affine(*t)


def _geo(crs: str | None, transform: Affine6, window: Window) -> GeoInfo:
    return window_geo(crs, transform, window.col, window.row, window.width, window.height)


def open_scene(path: str | Path, preset: str | None = None) -> Scene:
    """Open a raster file, or a folder holding one file per band, as a ``Scene``.

    ``preset`` names the sensor (``sentinel2-l1c``, ``landsat7`` …, see ``rsvlm.data.bands.PRESETS``); without
    it rsvlm guesses from the band count or the band file names and falls back to the first three bands
    as red, green, blue.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or folder", "check the path")
    chosen = get_preset(preset) if preset else None
    if path.is_dir():
        return _open_band_folder(path, chosen)
    return _open_file(path, chosen)


def _open_file(path: Path, preset: BandPreset | None) -> Scene:
    import rasterio

    try:
        with rasterio.open(path) as src:
            count, width, height = src.count, src.width, src.height
            crs = src.crs.to_string() if src.crs is not None else None
            transform: Affine6 = tuple(src.transform)[:6]
            dtype, nodata = str(src.dtypes[0]), src.nodata
            descriptions = [str(d) for d in src.descriptions if d]
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(path, f"cannot open raster: {exc}", "check it is a GeoTIFF/JPEG2000/PNG/JPEG file") from None
    if preset is None:
        preset = _guess_by_count(count, dtype)
    if preset is not None and len(preset.bands) != count:
        raise DataError(
            path,
            f"has {count} bands but preset {preset.name} has {len(preset.bands)} ({', '.join(preset.bands)})",
            "pick the preset of this product, or none to use the first three bands as RGB",
        )
    if preset is not None:
        names, rgb = preset.bands, preset.rgb_index
    else:
        names = tuple(descriptions) if len(descriptions) == count else tuple(f"b{i}" for i in range(1, count + 1))
        rgb = (0, 1, 2) if count >= 3 else (0, 0, 0)
    if nodata is None and preset is not None:
        nodata = DEFAULT_NODATA.get(preset.name)
    if crs is None and transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0):
        transform = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # plain image: pixel coordinates, y down
    return Scene((path,), names, width, height, crs, transform, dtype, nodata, preset, rgb)


def _guess_by_count(count: int, dtype: str) -> BandPreset | None:
    if count in (3, 4) and dtype == "uint8":
        return None  # a photograph: its first three bands are already RGB
    matches = [p for p in PRESETS.values() if len(p.bands) == count and p.name != "rgb"]
    return matches[0] if matches else None


def _open_band_folder(folder: Path, preset: BandPreset | None) -> Scene:
    import rasterio

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SCENE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(folder, "holds no raster files", "give a folder with one file per band, or a raster file")
    candidates = [preset] if preset else [p for p in PRESETS.values() if p.name != "rgb"]
    chosen, found, headers, notes = choose_preset(files, candidates)
    missing_rgb = [b for b in chosen.rgb if b not in found]
    if len(found) < 3 or missing_rgb:
        raise DataError(
            folder,
            f"no band files for {', '.join(missing_rgb) or 'three bands'} of preset {chosen.name}",
            "name band files like T33UUP_B04.jp2, or pass a multi-band raster",
        )
    names = tuple(b for b in chosen.bands if b in found)
    paths = tuple(found[b] for b in names)
    reference = _finest(chosen, chosen.rgb)
    notes += folder_notes(chosen, {b: found[b] for b in names}, reference, headers, guessed=preset is None)
    with rasterio.open(found[reference]) as ref:
        width, height = ref.width, ref.height
        crs = ref.crs.to_string() if ref.crs is not None else None
        transform: Affine6 = tuple(ref.transform)[:6]
        dtype, nodata = str(ref.dtypes[0]), ref.nodata
    if nodata is None:
        nodata = DEFAULT_NODATA.get(chosen.name)
    rgb = (names.index(chosen.rgb[0]), names.index(chosen.rgb[1]), names.index(chosen.rgb[2]))
    return Scene(paths, names, width, height, crs, transform, dtype, nodata, chosen, rgb, notes)


def _finest(preset: BandPreset, names: tuple[str, ...]) -> str:
    """The finest of the colour bands: the grid every other band is resampled to.

    Only the colour bands compete, so a panchromatic band (Landsat B8, 15 m) does not double the grid.
    """
    res = {b: preset.resolution_m[preset.bands.index(b)] for b in names}
    return min(names, key=lambda b: (res[b], names.index(b)))


def check_band_count(scene: Scene, expected: int, what: str) -> None:
    if scene.band_count != expected:
        raise RsvlmError(f"{scene.name} has {scene.band_count} bands but {what} expects {expected}")
