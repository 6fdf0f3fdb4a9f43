"""Index sources beyond plain files: STAC catalogs of local assets, Dask schedulers, thumbnails of every kind."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rsvlm import samples
from rsvlm.errors import DataError


@pytest.fixture(scope="module")
def lite() -> Any:
    from rsvlm.models.openclip import load_contrastive

    return load_contrastive("rsvlm-lite", None)


def _geotiff(path: Path, seed: int, west: float) -> Path:
    """A 64-px RGB GeoTIFF in UTM 18N of one of the sample photos (real pixels, made-up place)."""
    import rasterio
    from affine import Affine

    from rsvlm.data.raster import read_image

    pixels = read_image(samples.path(("beach", "farmland", "port")[seed])).data[:, :64, :64]
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 3, "dtype": "uint8", "crs": "EPSG:32618"}
    with rasterio.open(path, "w", transform=Affine(10, 0, west, 0, -10, 4_170_000), **profile) as dst:
        dst.write(pixels)
    return path


def _catalog(folder: Path, hrefs: list[str], times: list[datetime]) -> Path:
    import pystac

    catalog = pystac.Catalog(id="archive", description="two local scenes")
    for i, (href, when) in enumerate(zip(hrefs, times, strict=True)):
        item = pystac.Item(
            id=f"scene-{i}", geometry=None, bbox=None, datetime=when, properties={}
        )  # fmt: skip
        item.add_asset("visual", pystac.Asset(href=href, media_type=pystac.MediaType.GEOTIFF, roles=["visual"]))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


def test_a_stac_catalog_of_local_assets_is_indexed_with_its_times(lite: Any, tmp_path: Path) -> None:
    from rsvlm.index.archive import open_archive
    from rsvlm.index.build import build_index
    from rsvlm.index.search import SearchQuery, parse_time

    assets = [_geotiff(tmp_path / f"s{i}.tif", i, 440_000 + 1000 * i) for i in range(2)]
    times = [datetime(2020, 5, 1, 10, 30, tzinfo=UTC), datetime(2021, 7, 1, 10, 30, tzinfo=UTC)]
    catalog = _catalog(tmp_path / "stac", [str(a.resolve()) for a in assets], times)
    report = build_index(tmp_path / "index", [catalog], lite)
    assert report.added == 2
    archive = open_archive(tmp_path / "index")
    assert archive.info()["time"] == [times[0].isoformat(), times[1].isoformat()]
    hits = archive.search(SearchQuery(text="a beach", time=parse_time("2021-01-01/.."), k=5), lite).hits
    assert [Path(h.path).name for h in hits] == ["s1.tif"]
    assert hits[0].geometry is not None and hits[0].crs == "EPSG:32618"  # the asset's own footprint


def test_remote_stac_assets_are_refused_with_the_fix(lite: Any, tmp_path: Path) -> None:
    from rsvlm.index.build import build_index

    catalog = _catalog(tmp_path / "stac", ["https://example.org/scene.tif"], [datetime(2020, 1, 1, tzinfo=UTC)])
    with pytest.raises(DataError, match=r"not a local file.*download the assets"):
        build_index(tmp_path / "index", [catalog], lite)


def test_dask_threads_give_the_same_index(
    lite: Any, tmp_path: Path, photo_folder: Callable[[tuple[str, ...]], Path]
) -> None:
    from rsvlm.index.build import build_index
    from rsvlm.index.sources import SourceOptions
    from rsvlm.index.store import IndexStore

    photos = photo_folder(("beach", "farmland", "port", "trees"))
    options = SourceOptions(tile=32)
    sources = [photos, samples.path("coast")]
    build_index(tmp_path / "sync", sources, lite, options=options, part_rows=5)
    build_index(tmp_path / "dask", sources, lite, options=options, part_rows=5, scheduler="threads")

    def rows(folder: Path) -> dict[str, np.ndarray]:
        store = IndexStore.open(folder)
        keys = store.metadata(("id", "key")).column("key").to_pylist()
        vectors = np.concatenate([v for _, v in store.iter_vectors()])
        return dict(zip(keys, vectors, strict=True))

    sync, dask = rows(tmp_path / "sync"), rows(tmp_path / "dask")
    assert sync.keys() == dask.keys() and len(sync) == 4 + 16
    for key, vector in sync.items():  # same batches, but another thread: compare with a tolerance
        np.testing.assert_allclose(dask[key], vector, atol=1e-5)


def test_thumbnails_of_photos_and_scene_tiles(
    lite: Any, tmp_path: Path, photo_folder: Callable[[tuple[str, ...]], Path]
) -> None:
    from PIL import Image

    from rsvlm.index.archive import open_archive
    from rsvlm.index.build import build_index
    from rsvlm.index.sources import SourceOptions

    build_index(
        tmp_path / "index", [photo_folder(("port",)), samples.path("coast")], lite, options=SourceOptions(tile=64)
    )
    archive = open_archive(tmp_path / "index")
    for id_ in archive.ids.tolist():
        picture = Image.open(io.BytesIO(archive.thumbnail(int(id_), 48)))
        assert picture.format == "PNG" and max(picture.size) <= 48 and picture.mode == "RGB"
    tile = next(i for i in archive.ids.tolist() if archive.item(int(i)).kind == "tile")
    pixels = np.asarray(Image.open(io.BytesIO(archive.thumbnail(int(tile)))))
    assert pixels.shape == (64, 64, 3) and pixels.std() > 5  # a stretched 16-bit tile, not a flat grey square
    overview = Image.open(io.BytesIO(archive.scene_overview(0)))
    assert overview.size == (128, 128)
