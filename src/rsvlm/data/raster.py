"""Reading pixels and their georeference from any raster file rsvlm meets.

Two back-ends, chosen by what each does best: Pillow decodes small JPEG/PNG scene chips quickly and
reads only the header when asked for the size; rasterio (GDAL) handles GeoTIFF/COG/JPEG2000 with any band
count, dtype, nodata and CRS, and reads windows without loading the whole raster. A windowed read
always goes through rasterio, which streams scanlines even for PNG and JPEG.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.data.sample import Affine6, GeoInfo, RasterImage
from rsvlm.errors import ImageReadError

if TYPE_CHECKING:
    from PIL import Image as PILImage

PIL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
RASTERIO_SUFFIXES = frozenset({".tif", ".tiff", ".jp2", ".j2k", ".img", ".vrt", ".nc", ".hdf"})
IMAGE_SUFFIXES = PIL_SUFFIXES | RASTERIO_SUFFIXES

DEFAULT_MAX_PIXELS = 20_000 * 20_000
"""Largest width x height read in one piece (400 Mpx); bigger rasters must be read by windows/tiles.

The limit protects against decompression bombs (a tiny file that claims gigapixels) and against loading
a whole satellite scene into memory by mistake.
"""

DEFAULT_MAX_BYTES = 2 * 1024**3
"""Most memory one read may take (2 GiB): bands x height x width x bytes per sample.

Pixels alone are no bound: a 76 KB sparse TIFF of 19,999² px (under the pixel limit) with 200 bands asks for
74.5 GiB. 2 GiB holds a 20,000² RGB byte image or a 10,980² four-band 16-bit Sentinel-2 stack.
"""
STRIP_BYTES = 256 * 1024**2
"""Most memory one strip of ``verify_raster`` may take."""

_MODE_BANDS: dict[str, tuple[str, ...]] = {
    "1": ("gray",),
    "L": ("gray",),
    "LA": ("gray", "alpha"),
    "I": ("gray",),
    "I;16": ("gray",),
    "I;16L": ("gray",),
    "I;16B": ("gray",),
    "F": ("gray",),
    "RGB": ("red", "green", "blue"),
    "RGBA": ("red", "green", "blue", "alpha"),
}
_MODE_DTYPE: dict[str, str] = {
    "I": "int32",
    "I;16": "uint16",
    "I;16L": "uint16",
    "I;16B": "uint16",
    "F": "float32",
}

_COLORINTERP_NAMES = {"red": "red", "green": "green", "blue": "blue", "gray": "gray", "alpha": "alpha"}


@dataclass(frozen=True)
class Window:
    """A pixel rectangle of a raster: column and row offsets of the top-left corner, then size."""

    col: int
    row: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.col < 0 or self.row < 0:
            raise ValueError(f"invalid window {self}: offsets must be >= 0 and sizes > 0")


@dataclass(frozen=True)
class RasterInfo:
    """What a raster header says, read without decoding pixels."""

    path: Path
    width: int
    height: int
    bands: tuple[str, ...]
    dtype: str
    nodata: float | None
    geo: GeoInfo | None
    driver: str

    @property
    def band_count(self) -> int:
        return len(self.bands)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _missing(path: Path) -> ImageReadError:
    return ImageReadError(path, "file not found", "check the path")


def _use_pillow(path: Path) -> bool:
    return path.suffix.lower() in PIL_SUFFIXES


def _open_pillow(path: Path) -> PILImage.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            path,
            f"refused as a likely decompression bomb: {exc}".split(", could be")[0],
            "check where it came from",
        ) from None
    except FileNotFoundError:
        raise _missing(path) from None
    except UnidentifiedImageError:
        raise ImageReadError(
            path, "not a readable image (corrupt or not really a JPEG/PNG)", "replace the file"
        ) from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open image: {exc}", "check the file is complete") from None


def _pillow_layout(img: PILImage.Image) -> tuple[str, tuple[str, ...], str]:
    """Mode to convert to, band names and numpy dtype for a Pillow image."""
    mode = img.mode
    if mode in ("P", "PA"):
        mode = "RGBA" if "transparency" in img.info or mode == "PA" else "RGB"
    elif mode == "1":
        mode = "L"
    elif mode not in _MODE_BANDS:
        mode = "RGB"  # CMYK, YCbCr, LAB, HSV: give the model RGB
    return mode, _MODE_BANDS[mode], _MODE_DTYPE.get(mode, "uint8")


def _check_size(
    path: Path,
    width: int,
    height: int,
    max_pixels: int | None,
    *,
    bands: int = 1,
    dtype: str = "uint8",
    max_bytes: int | None = None,
) -> None:
    """Refuse a read over the pixel or the byte limit before anything is decoded or allocated."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            path,
            f"{width}x{height} pixels is over the {max_pixels:,}-pixel limit for a whole-image read",
            "read it by windows or tiles, or raise max_pixels if you trust the file",
        )
    need = width * height * bands * np.dtype(dtype).itemsize
    if max_bytes is not None and need > max_bytes:
        raise ImageReadError(
            path,
            f"reading {width}x{height} px x {bands} bands of {dtype} at once needs {_size(need)}, over the "
            f"{_size(max_bytes)} limit for one read",
            "read it by windows (read_image(..., window=Window(...))) or as a tiled scene "
            "(rsvlm demo --input FILE), or raise max_bytes if you trust the file",
        )


def _size(n: int) -> str:
    """Bytes for people: ``74.5 GiB``, ``512.0 MiB``."""
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


def window_geo(crs: str | None, transform: Affine6, col: int, row: int, width: int, height: int) -> GeoInfo:
    """Georeference of a pixel window: the transform moved to its top-left corner, its resolution and bounds."""
    a, b, c, d, e, f = transform
    c, f = a * col + b * row + c, d * col + e * row + f
    xs = [c, a * width + c, b * height + c, a * width + b * height + c]
    ys = [f, d * width + f, e * height + f, d * width + e * height + f]
    return GeoInfo(
        crs=crs,
        transform=(a, b, c, d, e, f),
        resolution=(math.hypot(a, d), math.hypot(b, e)),
        bounds=(min(xs), min(ys), max(xs), max(ys)),
    )


def _geo_from_rasterio(src: Any, window: Window | None = None) -> GeoInfo | None:
    t = src.transform
    if src.crs is None and t.is_identity:
        return None  # not georeferenced: GDAL reports an identity transform
    col, row, width, height = (
        (0, 0, src.width, src.height) if window is None else (window.col, window.row, window.width, window.height)
    )
    crs = src.crs.to_string() if src.crs is not None else None
    return window_geo(crs, (t.a, t.b, t.c, t.d, t.e, t.f), col, row, width, height)


def _band_names(src: Any) -> tuple[str, ...]:
    """Band descriptions when the file has them, else colour names when unambiguous, else b1..bn."""
    if all(src.descriptions):
        names = [str(d) for d in src.descriptions]
    else:
        names = [_COLORINTERP_NAMES.get(c.name, "") for c in src.colorinterp]
    if not all(names) or len(set(names)) != len(names):
        names = [f"b{i}" for i in range(1, src.count + 1)]
    return tuple(names)


def _rasterio_error(path: Path, exc: Exception) -> ImageReadError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ImageReadError(path, f"cannot read raster: {reason}", "check the file is a complete, supported raster")


def _open_rasterio(path: Path) -> Any:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    if not path.exists():
        raise _missing(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioError as exc:
        raise _rasterio_error(path, exc) from None


def inspect_raster(path: str | Path) -> RasterInfo:
    """Size, bands, dtype and georeference of a raster from its header alone."""
    path = Path(path)
    if _use_pillow(path):
        with _open_pillow(path) as img:
            _, bands, dtype = _pillow_layout(img)
            return RasterInfo(path, img.width, img.height, bands, dtype, None, None, str(img.format))
    with _open_rasterio(path) as src:
        return RasterInfo(
            path=path,
            width=src.width,
            height=src.height,
            bands=_band_names(src),
            dtype=str(src.dtypes[0]),
            nodata=None if src.nodata is None else float(src.nodata),
            geo=_geo_from_rasterio(src),
            driver=str(src.driver),
        )


def read_image(
    path: str | Path,
    *,
    window: Window | None = None,
    bands: list[int] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> RasterImage:
    """Read a whole image, or one window of it, as ``(bands, height, width)`` in the file's dtype.

    ``bands`` are 1-based band indexes as in GDAL. ``max_pixels`` bounds the pixels and ``max_bytes`` the memory
    (bands x pixels x bytes per sample) of one call; both are checked from the header, before decoding.
    """
    path = Path(path)
    if window is None and bands is None and _use_pillow(path):
        return _read_pillow(path, max_pixels, max_bytes)
    return _read_rasterio(path, window, bands, max_pixels, max_bytes)


def _read_pillow(path: Path, max_pixels: int | None, max_bytes: int | None) -> RasterImage:
    from PIL import Image

    with _open_pillow(path) as img:
        mode, bands, dtype = _pillow_layout(img)
        _check_size(path, img.width, img.height, max_pixels, bands=len(bands), dtype=dtype, max_bytes=max_bytes)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
                converted = img if img.mode == mode else img.convert(mode)
                array = np.asarray(converted, dtype=dtype)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageReadError(path, f"cannot decode image: {exc}", "the file is corrupt or truncated") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return RasterImage(np.ascontiguousarray(np.moveaxis(array, -1, 0)), bands)


def _read_rasterio(
    path: Path, window: Window | None, bands: list[int] | None, max_pixels: int | None, max_bytes: int | None
) -> RasterImage:
    from rasterio.errors import RasterioError
    from rasterio.windows import Window as RioWindow

    with _open_rasterio(path) as src:
        all_names = _band_names(src)
        indexes = bands if bands is not None else list(range(1, src.count + 1))
        bad = [i for i in indexes if not 1 <= i <= src.count]
        if bad:
            raise ImageReadError(path, f"band index {bad[0]} out of range 1..{src.count}", "pick existing bands")
        rio_window = None
        width, height = src.width, src.height
        if window is not None:
            if window.col + window.width > src.width or window.row + window.height > src.height:
                raise ImageReadError(
                    path,
                    f"window {window} extends past the {src.width}x{src.height} raster",
                    "clip the window",
                )
            rio_window = RioWindow(window.col, window.row, window.width, window.height)
            width, height = window.width, window.height
        dtype = max((src.dtypes[i - 1] for i in indexes), key=lambda d: np.dtype(d).itemsize)
        _check_size(path, width, height, max_pixels, bands=len(indexes), dtype=dtype, max_bytes=max_bytes)
        try:
            data = src.read(indexes, window=rio_window)
        except RasterioError as exc:
            raise _rasterio_error(path, exc) from None
        nodata = None if src.nodata is None else float(src.nodata)
        geo = _geo_from_rasterio(src, window)
    return RasterImage(data, tuple(all_names[i - 1] for i in indexes), nodata=nodata, geo=geo)


def verify_raster(path: str | Path, *, strip_rows: int = 1024) -> None:
    """Decode every pixel once, in strips, so truncated or corrupt files fail here and not mid-training.

    Strips hold at most ``strip_rows`` rows and ``STRIP_BYTES`` of memory, so a wide many-band file is
    checked a few rows at a time instead of in one huge read.
    """
    path = Path(path)
    info = inspect_raster(path)
    if _use_pillow(path) and info.width * info.height <= DEFAULT_MAX_PIXELS:
        read_image(path)
        return
    row_bytes = info.width * info.band_count * np.dtype(info.dtype).itemsize
    rows = max(1, min(strip_rows, STRIP_BYTES // max(row_bytes, 1)))
    for row in range(0, info.height, rows):
        window = Window(0, row, info.width, min(rows, info.height - row))
        read_image(path, window=window, max_pixels=None, max_bytes=None)
