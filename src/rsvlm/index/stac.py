"""STAC catalogs of local assets (pystac): each item's raster asset indexed as an image or a tiled scene.

Which asset: the one keyed or roled ``visual`` (a true-colour COG, what a person and an RGB model look at), else the
first with role ``data`` and a raster media type, else the first raster asset. The item's time (``datetime``, or
``start_datetime``) is the entry's time; its geometry is kept only as a fallback for assets without georeference.
Remote hrefs are refused with the fix: rsvlm reads local files only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.data.raster import is_image_file
from rsvlm.errors import DataError

if TYPE_CHECKING:
    from rsvlm.index.sources import Batch, SourceOptions

RASTER_TYPES = ("image/tiff", "image/jp2", "image/png", "image/jpeg")


def is_stac(path: Path) -> bool:
    """A STAC JSON file, or a folder holding ``catalog.json`` / ``collection.json``."""
    if path.is_dir():
        return (path / "catalog.json").is_file() or (path / "collection.json").is_file()
    if path.suffix.lower() != ".json":
        return False
    try:
        with path.open("rb") as f:
            head = json.loads(f.read(4 * 1024 * 1024))
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and "stac_version" in head


def stac_batches(path: Path, source: str, options: SourceOptions, batch: int) -> Iterator[Batch]:
    from rsvlm.index.items import FileLoader
    from rsvlm.index.sources import Batch, image_entry, raster_batches

    whole = []
    for item in _items(path):
        asset_path = _asset_path(item)
        when = item.datetime or _start(item)
        if _tiled(asset_path, options):
            for scene_batch in raster_batches(asset_path, source, options, batch):
                scene_batch.entries[:] = [replace(e, datetime=e.datetime or when) for e in scene_batch.entries]
                yield scene_batch
            continue
        entry = image_entry(asset_path, source, time=when)
        if entry.geometry is None and item.geometry is not None:
            entry = replace(entry, geometry=_wkb(item.geometry), crs=entry.crs or "EPSG:4326")
        whole.append(entry)
        if len(whole) == batch:
            yield Batch(FileLoader(), whole)
            whole = []
    if whole:
        yield Batch(FileLoader(), whole)


def _items(path: Path) -> Iterator[Any]:
    import pystac

    target = path
    if path.is_dir():
        target = path / "catalog.json" if (path / "catalog.json").is_file() else path / "collection.json"
    try:
        obj = pystac.read_file(str(target))
    except (pystac.STACError, OSError, ValueError, KeyError) as exc:
        raise DataError(target, f"cannot read this STAC file ({exc})", "check it is a STAC catalog or item") from None
    if isinstance(obj, pystac.Item):
        yield obj
        return
    if not isinstance(obj, pystac.Catalog):
        raise DataError(target, "is a STAC object without items", "give a catalog, collection or item")
    found = False
    for item in obj.get_items(recursive=True):
        found = True
        yield item
    if not found:
        raise DataError(target, "STAC catalog holds no items", "add items, or give the item files")


def _asset_path(item: Any) -> Path:
    assets = item.assets
    rasters = [
        (key, a) for key, a in assets.items()
        if (a.media_type or "").split(";")[0] in RASTER_TYPES or is_image_file(Path(a.href))
    ]  # fmt: skip
    if not rasters:
        raise DataError(Path(item.get_self_href() or item.id), f"STAC item {item.id} has no raster asset")
    chosen = next(
        (a for key, a in rasters if key == "visual" or "visual" in (a.roles or [])),
        next((a for _, a in rasters if "data" in (a.roles or [])), rasters[0][1]),
    )
    href = chosen.get_absolute_href() or chosen.href
    if "://" in href and not href.startswith("file://"):
        raise DataError(
            Path(item.get_self_href() or item.id),
            f"asset {href} of item {item.id} is not a local file",
            "download the assets and point the hrefs at local paths (rsvlm reads no network)",
        )
    local = Path(href.removeprefix("file://"))
    if not local.is_file():
        raise DataError(local, f"asset of STAC item {item.id} not found", "check the catalog's hrefs")
    return local


def _start(item: Any) -> Any:
    from pystac.utils import str_to_datetime

    value = item.properties.get("start_datetime")
    return str_to_datetime(value) if isinstance(value, str) else None


def _tiled(path: Path, options: SourceOptions) -> bool:
    from rsvlm.index.sources import _is_scene

    return _is_scene(path, options)


def _wkb(geometry: dict[str, Any]) -> bytes:
    import shapely

    wkb: bytes = shapely.to_wkb(shapely.geometry.shape(geometry))
    return wkb
