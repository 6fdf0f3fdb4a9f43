"""What an index holds: one ``Entry`` per image file, dataset record or scene tile, and how to read its pixels.

An entry is metadata only (path, window, footprint, time, bands, label) and is cheap to make for millions of
tiles; its ``Loader`` reads the pixels when the entry is embedded, inside a Dask worker if need be, so loaders are
small picklable objects shared by all entries of one source. ``key`` is the entry's identity across runs: an index
never holds two entries with one key, which is what makes builds resumable and ``rsvlm index add`` idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rsvlm.data.raster import Window

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.protocols import ContrastiveModel

KINDS = ("image", "record", "tile", "external")
"""``image``: a whole image file; ``record``: a labelled dataset's sample; ``tile``: a window of a whole scene;
``external``: an embedding imported from elsewhere (no pixels rsvlm can read)."""


@dataclass(frozen=True)
class Entry:
    """One row of the index, without its embedding."""

    key: str
    """Identity across runs: the resolved path, plus ``#col,row,width,height`` for a window or ``#id`` for a record."""
    path: str
    kind: str
    source: str
    """The path the user named when adding it (a folder, a scene, a catalog), so ``rsvlm index remove`` can name it."""
    window: Window | None = None
    crs: str | None = None
    footprint: str | None = None
    """WKT polygon in ``crs`` (the source's own CRS), exact for GIS work in that CRS."""
    geometry: bytes | None = None
    """WKB in WGS84 longitude/latitude (a footprint polygon; a point for an imported chip known by its centre): what
    bbox and polygon filters and GeoParquet readers use."""
    datetime: datetime | None = None
    """Acquisition time (UTC) where the source says it: STAC, GeoTIFF tags, or the product name."""
    bands: tuple[str, ...] = ()
    label: str | None = None


class Loader(Protocol):
    """Reads the pixels of its source's entries as the model's ``preprocess`` takes them; None for an entry with too
    little data to embed (a scene tile that is mostly nodata), which the index then leaves out."""

    def load(self, entry: Entry, model: ContrastiveModel) -> RasterImage | None: ...


@dataclass(frozen=True)
class FileLoader:
    """A whole image file (JPEG, PNG, a GeoTIFF chip …). Photographs go to the model as they are; a multispectral
    chip goes whole to a spectral model, else as its sensor's RGB composite stretched between the chip's own 2nd and
    98th percentiles (a chip has no larger scene to take limits from)."""

    def load(self, entry: Entry, model: ContrastiveModel) -> RasterImage:
        from rsvlm.data.raster import read_image

        return model_ready(read_image(Path(entry.path)), model, Path(entry.path))


def model_ready(image: RasterImage, model: ContrastiveModel, path: Path | None = None) -> RasterImage:
    """What ``model.preprocess`` takes from a whole image (see ``FileLoader``); ``path`` names the sensor's RGB bands
    (its band preset), else the first three bands are red, green, blue."""
    if (image.dtype == "uint8" and image.band_count in (1, 3, 4)) or model.in_bands == image.band_count:
        return image
    from rsvlm.data.bands import band_stats
    from rsvlm.geo.maps import model_image

    rgb = (0, 1, 2) if image.band_count >= 3 else (0, 0, 0)
    if path is not None:
        from rsvlm.geo.source import open_scene

        rgb = open_scene(path).rgb
    return model_image(model, image, rgb, band_stats(image))


@dataclass(frozen=True)
class RecordLoader:
    """A labelled dataset's records, read through its reader (so windowed samples are cropped)."""

    dataset: Any
    records: dict[str, Any] = field(repr=False, compare=False)
    """Record by entry key."""

    def load(self, entry: Entry, model: ContrastiveModel) -> RasterImage:
        image: RasterImage = self.dataset.load_image(self.records[entry.key])
        return image


@dataclass
class SceneLoader:
    """Windows of one whole scene, stretched to RGB with the scene's own limits (as scene maps do), or all bands
    for a spectral model."""

    scene: Any
    """A ``rsvlm.geo.source.Scene`` (picklable: it reopens its files lazily)."""
    stats: Any
    """The scene's ``BandStats`` (stretch limits), computed once from its overview."""
    min_valid: float = 0.5
    """Tiles with a smaller share of valid pixels are left out, as scene maps skip them."""

    def load(self, entry: Entry, model: ContrastiveModel) -> RasterImage | None:
        from rsvlm.geo.maps import model_image

        if entry.window is None:
            raise ValueError(f"scene entry {entry.key} has no window")
        image, valid = self.scene.read(entry.window)
        if valid.mean() < self.min_valid:
            return None
        return model_image(model, image, self.scene.rgb, self.stats)


def window_key(path: Path | str, window: Window) -> str:
    return f"{path}#{window.col},{window.row},{window.width},{window.height}"


_TAG_TIME = re.compile(r"^(\d{4})[:-](\d{2})[:-](\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2}))?")
_NAME_TIMES = (
    re.compile(r"(?<!\d)(20\d{2}|19[789]\d)(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?!\d)"),  # Sentinel-2: 20200101T103421
    re.compile(r"_(20\d{2}|19[789]\d)(\d{2})(\d{2})_(?:\d{8}_)?\d{2}_T\d"),  # Landsat C2: _20200101_20200113_02_T1
)


def parse_time_tag(value: str) -> datetime | None:
    """A TIFF ``DATETIME``/``ACQUISITIONDATETIME`` tag (``2020:01:31 10:42:11``, ISO dates) as UTC, else None."""
    match = _TAG_TIME.match(value.strip())
    if match is None:
        return None
    y, mo, d, h, mi, s = (int(p) if p is not None else 0 for p in match.groups())
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None


def time_from_name(name: str) -> datetime | None:
    """The acquisition time in a Sentinel-2 or Landsat Collection-2 product or band file name, else None."""
    for pattern in _NAME_TIMES:
        match = pattern.search(name)
        if match is not None:
            found = [int(p) for p in match.groups()] + [0, 0, 0]
            try:
                return datetime(found[0], found[1], found[2], found[3], found[4], found[5], tzinfo=UTC)
            except ValueError:
                return None
    return None


def raster_time(tags: dict[str, str], name: str) -> datetime | None:
    """Acquisition time from a raster's tags, else its file or folder name."""
    for tag in ("ACQUISITIONDATETIME", "ACQUISITION_DATETIME", "DATETIME_ORIGINAL", "TIFFTAG_DATETIME", "DATETIME"):
        if tag in tags:
            found = parse_time_tag(tags[tag])
            if found is not None:
                return found
    return time_from_name(name)
