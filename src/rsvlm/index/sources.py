"""Turning what the user names (image files, folders, labelled datasets, whole scenes, STAC catalogs) into entries.

- an image or raster no larger than ``WHOLE_MAX`` pixels a side, and not tiled on request, is one entry;
- a larger raster, a band folder, or any raster with ``--tile``, is a scene: one entry per tile window, with its
  footprint in the scene's CRS and in WGS84 (scenes also give the index an overview for the web app);
- a folder a dataset reader recognises (``rsvlm data formats``) gives one entry per record, with its label;
- a STAC catalog, collection or item (``rsvlm.index.stac``) gives its items' local raster assets, with their time;
- any other folder is walked for image files.
Nothing is read but headers (and one decimated look per scene), so enumerating millions of tiles is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.data.raster import Window, is_image_file
from rsvlm.errors import DataError, FormatError
from rsvlm.index.items import Entry, FileLoader, Loader, RecordLoader, SceneLoader, raster_time, window_key

if TYPE_CHECKING:
    from rsvlm.geo.source import Scene

WHOLE_MAX = 1024
"""Rasters up to this many pixels a side are indexed whole (chips, photographs); larger ones are tiled."""


@dataclass(frozen=True)
class SourceOptions:
    tile: int | None = None
    """Tile side in pixels for scenes (None: about 640 m on the ground, as scene maps choose)."""
    stride: int | None = None
    data_format: str | None = None
    images: Path | None = None
    split: str | None = None
    bands: str | None = None
    max_tiles: int | None = None


@dataclass
class SceneInfo:
    """A tiled scene, for the manifest and the web app's overview."""

    path: str
    width: int
    height: int
    crs: str | None
    bounds: list[float] | None
    """WGS84 W, S, E, N."""
    overview: Any = field(repr=False)
    """An 8-bit RGB (H, W, 3) array of the whole scene."""


@dataclass
class Batch:
    """Entries of one source with their loader; ``scene`` is set for a tiled scene."""

    loader: Loader
    entries: list[Entry]
    scene: SceneInfo | None = None


def iter_batches(paths: list[Path], options: SourceOptions, batch: int = 4096) -> Iterator[Batch]:
    """Every source's entries, in batches of at most ``batch`` entries (a scene's tiles come lazily)."""
    for path in paths:
        if not path.exists():
            raise DataError(path, "no such file or folder", "check the path")
    for path in paths:
        source = str(path)
        yield from _batches_of(path, source, options, batch)


def _batches_of(path: Path, source: str, options: SourceOptions, batch: int) -> Iterator[Batch]:
    from rsvlm.index.stac import is_stac, stac_batches

    if is_stac(path):
        yield from stac_batches(path, source, options, batch)
    elif path.is_file():
        yield from raster_batches(path, source, options, batch)
    elif options.data_format is not None or _is_dataset(path):
        yield from dataset_batches(path, source, options, batch)
    elif _is_band_folder(path):
        yield from scene_batches(path, source, options, batch)
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p) and not p.name.startswith("."))
        if not files:
            raise DataError(path, "holds no image files or dataset", "give image files, a dataset or a scene")
        whole: list[Entry] = []
        for file in files:
            if _is_scene(file, options):
                yield from scene_batches(file, source, options, batch)
            else:
                whole.append(image_entry(file, source))
                if len(whole) == batch:
                    yield Batch(FileLoader(), whole)
                    whole = []
        if whole:
            yield Batch(FileLoader(), whole)


def _is_dataset(path: Path) -> bool:
    from rsvlm.data.registry import detect_format

    try:
        return detect_format(path) != "scene-prefix"  # a flat folder of images is an archive, not a labelled set
    except FormatError:
        return False


def _is_band_folder(path: Path) -> bool:
    """A folder of single-band rasters (a Sentinel-2 product's band files), mapped as one scene."""
    from rsvlm.geo.source import open_scene

    rasters = [p for p in path.iterdir() if p.suffix.lower() in {".jp2", ".tif", ".tiff"}]
    if len(rasters) < 3:
        return False
    try:
        return open_scene(path).band_count >= 3
    except (DataError, FormatError):
        return False


def _is_scene(path: Path, options: SourceOptions) -> bool:
    """Tiled: a raster over ``WHOLE_MAX`` px a side, or a georeferenced one larger than an asked ``--tile``.
    Photographs and chips without a CRS stay whole: ``--tile`` is meant for the scenes among them."""
    from rsvlm.data.raster import inspect_raster

    info = inspect_raster(path)
    if max(info.width, info.height) > WHOLE_MAX:
        return True
    georeferenced = info.geo is not None and info.geo.crs is not None
    return options.tile is not None and georeferenced and min(info.width, info.height) > options.tile


def raster_batches(path: Path, source: str, options: SourceOptions, batch: int) -> Iterator[Batch]:
    if not is_image_file(path):
        raise DataError(path, "is not an image or raster file", "give JPEG/PNG/GeoTIFF/JPEG2000 files or folders")
    if _is_scene(path, options):
        yield from scene_batches(path, source, options, batch)
    else:
        yield Batch(FileLoader(), [image_entry(path, source)])


def image_entry(path: Path, source: str, *, time: datetime | None = None, label: str | None = None) -> Entry:
    """A whole image file: georeferenced ones get their footprint, all get a time where tags or the name say."""
    from rsvlm.data.raster import inspect_raster

    info = inspect_raster(path)
    footprint = geometry = None
    crs = info.geo.crs if info.geo is not None else None
    if info.geo is not None and info.geo.transform is not None and crs is not None:
        local, wgs84 = footprints(crs, info.geo.transform, [Window(0, 0, info.width, info.height)], info)
        footprint, geometry = local[0], wgs84[0]
    return Entry(
        key=str(path.resolve()), path=str(path.resolve()), kind="image", source=source, crs=crs,
        footprint=footprint, geometry=geometry, datetime=time or _file_time(path), bands=info.bands, label=label,
    )  # fmt: skip


def _file_time(path: Path) -> datetime | None:
    tags: dict[str, str] = {}
    if path.suffix.lower() in {".tif", ".tiff", ".jp2"}:
        import rasterio

        try:
            with rasterio.open(path) as src:
                tags = {k.upper(): v for k, v in src.tags().items()}
        except rasterio.errors.RasterioIOError:
            tags = {}
    return raster_time(tags, f"{path.parent.name}/{path.name}")


def footprints(
    crs: str, transform: tuple[float, ...], windows: list[Window], extent: Any
) -> tuple[list[str], list[bytes]]:
    """WKT footprints in ``crs`` and WKB footprints in WGS84 of pixel windows, clipped to the raster's extent."""
    import shapely
    from rasterio.warp import transform as warp

    a, b, c, d, e, f = transform
    cols0 = np.array([w.col for w in windows], dtype=np.float64)
    rows0 = np.array([w.row for w in windows], dtype=np.float64)
    cols1 = np.minimum(cols0 + [w.width for w in windows], extent.width)
    rows1 = np.minimum(rows0 + [w.height for w in windows], extent.height)
    cc = np.stack([cols0, cols1, cols1, cols0, cols0], axis=1)
    rr = np.stack([rows0, rows0, rows1, rows1, rows0], axis=1)
    xs, ys = a * cc + b * rr + c, d * cc + e * rr + f
    local = shapely.polygons(np.stack([xs, ys], axis=-1))
    lon, lat = warp(crs, "EPSG:4326", xs.ravel().tolist(), ys.ravel().tolist())
    lonlat = np.stack([np.asarray(lon).reshape(xs.shape), np.asarray(lat).reshape(xs.shape)], axis=-1)
    wgs84 = shapely.orient_polygons(shapely.polygons(lonlat))
    return list(shapely.to_wkt(local, rounding_precision=-1)), list(shapely.to_wkb(wgs84))


def dataset_batches(path: Path, source: str, options: SourceOptions, batch: int) -> Iterator[Batch]:
    """A labelled dataset's records (the chosen split, or all), each keyed by its file and record id."""
    from rsvlm.data.registry import open_dataset

    dataset = open_dataset(path, format=options.data_format, images=options.images, split=options.split)
    records = [r for r in dataset.records if r.image_path is not None]
    if not records:
        raise DataError(path, "has no records with images to index", "check --split, --format and --images")
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        entries = [
            Entry(
                key=f"{Path(r.image_path).resolve()}#{r.id}" if r.image_path is not None else r.id,
                path=str(Path(r.image_path).resolve()) if r.image_path is not None else "",
                kind="record",
                source=source,
                window=Window(*r.meta["window"]) if "window" in r.meta else None,
                label=r.label,
            )
            for r in chunk
        ]
        yield Batch(RecordLoader(dataset, {e.key: r for e, r in zip(entries, chunk, strict=True)}), entries)


def scene_batches(path: Path, source: str, options: SourceOptions, batch: int) -> Iterator[Batch]:
    """A whole scene's tile windows, footprints in its CRS and WGS84, and its overview for the manifest."""
    from rsvlm.geo.analyse import scene_overview
    from rsvlm.geo.maps import scene_stats
    from rsvlm.geo.planning import plan_settings
    from rsvlm.geo.source import open_scene
    from rsvlm.geo.tiling import plan_tiles

    scene = open_scene(path, options.bands)
    settings = plan_settings(scene, options.tile, options.stride, options.max_tiles)
    grid = plan_tiles(scene.path, scene.width, scene.height, scene.band_count, settings.tile, settings.stride, None)
    overview = scene_overview(scene)
    stats = scene_stats(scene, overview=overview)
    info = _scene_info(scene, overview, stats)
    loader = SceneLoader(scene, stats)
    time = _scene_time(scene)
    resolved = str(scene.path.resolve())
    first = True
    for tiles in grid.batches(batch):
        windows = [t.window for t in tiles]
        local: list[str | None] = [None] * len(windows)
        wgs84: list[bytes | None] = [None] * len(windows)
        if scene.crs is not None:
            local[:], wgs84[:] = footprints(scene.crs, scene.transform, windows, scene)
        entries = [
            Entry(
                key=window_key(resolved, w),
                path=resolved,
                kind="tile",
                source=source,
                window=w,
                crs=scene.crs,
                footprint=fp,
                geometry=g,
                datetime=time,
                bands=scene.band_names,
            )
            for w, fp, g in zip(windows, local, wgs84, strict=True)
        ]
        yield Batch(loader, entries, info if first else None)
        first = False


def _scene_info(scene: Scene, overview: Any, stats: Any) -> SceneInfo:
    from rsvlm.data.bands import rgb_composite

    rgb = rgb_composite(overview, scene.rgb, stats).to_hwc()
    bounds = None
    if scene.crs is not None:
        import shapely

        _, wgs84 = footprints(scene.crs, scene.transform, [Window(0, 0, scene.width, scene.height)], scene)
        bounds = [float(v) for v in shapely.from_wkb(wgs84[0]).bounds]
    return SceneInfo(str(scene.path.resolve()), scene.width, scene.height, scene.crs, bounds, rgb)


def _scene_time(scene: Scene) -> datetime | None:
    import rasterio

    try:
        with rasterio.open(scene.files[0]) as src:
            tags = {k.upper(): v for k, v in src.tags().items()}
    except rasterio.errors.RasterioIOError:
        tags = {}
    return raster_time(tags, f"{scene.path.parent.name}/{scene.path.name}")
