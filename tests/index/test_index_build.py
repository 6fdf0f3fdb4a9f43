"""`rsvlm index build/add/remove/info` and `rsvlm search` on the shipped sample images and a georeferenced scene."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rsvlm import samples
from tests.clihelp import assert_one_line_error, rsvlm

SAMPLES = ("beach", "farmland", "parking_lot", "port", "residential", "trees", "viaduct")


@pytest.fixture(scope="module")
def photos(photo_folder: Callable[[tuple[str, ...]], Path]) -> Path:
    return photo_folder(SAMPLES)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample Sentinel-2 crop with an acquisition time tag (UTM 18N, 128 px of 10 m)."""
    import rasterio

    path = tmp_path_factory.mktemp("scene") / "coast.tif"
    shutil.copy(samples.path("coast"), path)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2019:07:14 15:49:31")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, photos: Path, scene: Path) -> Path:
    out = tmp_path_factory.mktemp("idx") / "index"
    result = rsvlm("index", "build", photos, scene, "--tile", "32", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == len(SAMPLES) + 16 and report["scenes"] == 1, report
    return out


def test_build_holds_every_image_and_tile_with_footprints(built: Path, scene: Path) -> None:
    import geopandas as gpd
    import rasterio
    from rasterio.warp import transform_bounds

    frame = gpd.read_parquet(built / "metadata.parquet")
    assert len(frame) == len(SAMPLES) + 16
    assert frame.crs.to_string() == "OGC:CRS84"  # GeoParquet's default: WGS84, longitude first
    tiles = frame[frame["kind"] == "tile"]
    assert len(tiles) == 16 and tiles["key"].is_unique
    with rasterio.open(scene) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    union = tiles.geometry.union_all().bounds
    assert np.allclose(union, (west, south, east, north), atol=1e-6)
    assert (tiles["datetime"].dt.year == 2019).all()  # from the TIFF tag
    photos = frame[frame["kind"] == "image"]
    assert photos.geometry.isna().all() and photos["datetime"].isna().all()  # plain JPEGs: no place, no time


def test_text_search_finds_the_beach_and_writes_geojson_and_html(built: Path, tmp_path: Path) -> None:
    geojson, page = tmp_path / "hits.geojson", tmp_path / "hits.html"
    result = rsvlm("search", built, "a sandy beach by the sea", "--k", "3", "--json", "--out", geojson, "--html", page)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["exact"] is True and found["candidates"] == len(SAMPLES) + 16
    assert Path(found["hits"][0]["path"]).name == "beach.jpg"
    scores = [h["score"] for h in found["hits"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    collection = json.loads(geojson.read_text())
    assert [f["properties"]["id"] for f in collection["features"]] == [h["id"] for h in found["hits"]]
    html = page.read_text()
    assert html.count("<img") == 3 and "data:image/png;base64," in html and "http" not in html


def test_image_query_ranks_the_image_itself_first(built: Path) -> None:
    result = rsvlm("search", built, "--image", samples.path("port"), "--k", "2", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert Path(hits[0]["path"]).name == "port.jpg" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_place_and_time_filters(built: Path, tmp_path: Path) -> None:
    from rsvlm.index.archive import load_index_model, open_archive
    from rsvlm.index.search import SearchQuery, parse_time

    archive = open_archive(built)
    model = load_index_model(archive)
    west, south, east, north = archive.info()["bounds"]
    half = (west, south, (west + east) / 2, north)
    result = archive.search(SearchQuery(text="a river", bbox=half, k=50), model)
    assert 0 < result.candidates < 16 and result.exact
    for hit in result.hits:
        assert hit.geometry is not None
        xs = [p[0] for p in hit.geometry["coordinates"][0]]
        assert min(xs) <= half[2]
    polygon = tmp_path / "area.geojson"
    polygon.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [west, south],
                        [west + 1e-4, south],
                        [west + 1e-4, south + 1e-4],
                        [west, south + 1e-4],
                        [west, south],
                    ]
                ],
            }
        )
    )
    cli = rsvlm("search", built, "water", "--within", polygon, "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["candidates"] == 1  # only the bottom-left tile touches that corner
    in_2019 = archive.search(SearchQuery(text="water", time=parse_time("2019-07-14/2019-07-14"), k=50), model)
    assert in_2019.candidates == 16
    assert archive.search(SearchQuery(text="water", time=parse_time("2020-01-01/.."), k=5), model).hits == []


def test_bad_queries_are_one_line_errors(built: Path, tmp_path: Path) -> None:
    assert_one_line_error(rsvlm("search", built, "x", "--bbox", "10 50 5"), "--bbox", "W S E N")
    assert_one_line_error(rsvlm("search", built, "x", "--time", "2021-02-30/2022"), "--time", "not a date")
    assert_one_line_error(rsvlm("search", built), "give a text query or --image")
    assert_one_line_error(rsvlm("search", tmp_path, "x"), "not an rsvlm index", "rsvlm index build")
    other = rsvlm("search", built, "x", "--model", "openai-vit-b-32")
    assert_one_line_error(other, "index was built with rsvlm-lite")


def test_add_skips_what_is_there_and_remove_drops_entries(built: Path, tmp_path: Path, photos: Path) -> None:
    index = tmp_path / "copy"
    shutil.copytree(built, index)
    again = rsvlm("index", "add", index, photos, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["added"] == 0 and report["already"] == len(SAMPLES)
    removed = rsvlm("index", "remove", index, photos / "beach.jpg")
    assert removed.returncode == 0 and "removed 1 " in removed.stdout, removed.stderr
    hits = json.loads(rsvlm("search", index, "a sandy beach", "--k", "30", "--json").stdout)["hits"]
    assert "beach.jpg" not in {Path(h["path"]).name for h in hits} and len(hits) == len(SAMPLES) + 15
    readd = rsvlm("index", "add", index, photos / "beach.jpg", "--json")
    assert json.loads(readd.stdout)["added"] == 1  # a removed entry can come back, under a new id
    assert_one_line_error(rsvlm("index", "remove", index, tmp_path / "nothing.jpg"), "no entry of the index")


def test_a_killed_build_resumes_without_duplicates_or_losses(tmp_path: Path, photos: Path, scene: Path) -> None:
    index = tmp_path / "resumed"
    command = [sys.executable, "-m", "rsvlm", "index", "build", str(photos), str(scene), "--tile", "16",
               "--part-rows", "4", "--batch-size", "2", "--out", str(index)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((index / "parts").glob("*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = sorted(p.name for p in (index / "parts").glob("*.parquet"))
    assert len(before) >= 3, before
    finished = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    total = len(SAMPLES) + 64
    assert report["count"] == total and report["already"] + report["added"] == total and report["already"] > 0
    import geopandas as gpd

    frame = gpd.read_parquet(index / "metadata.parquet")
    assert frame["key"].is_unique and frame["id"].is_unique and len(frame) == total
    assert set(before) <= {p.name for p in (index / "parts").glob("*.parquet")}  # earlier parts kept as they were


def test_index_info_and_versioning(built: Path, tmp_path: Path) -> None:
    info = rsvlm("index", "info", built, "--json")
    details = json.loads(info.stdout)
    assert details["model"]["name"] == "rsvlm-lite" and details["vectors"]["kind"] == "flat"
    assert details["kinds"] == {"image": len(SAMPLES), "tile": 16} and details["time"][0].startswith("2019-07-14")
    assert_one_line_error(rsvlm("index", "add", tmp_path / "none", samples.path("beach")), "not an rsvlm index")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    result = rsvlm("index", "build", samples.path("beach"), "--out", tmp_path / "junk")
    assert_one_line_error(result, "not an rsvlm index", "choose a new --out")


def test_export_and_import_through_the_cli(built: Path, tmp_path: Path) -> None:
    import geopandas as gpd

    exported = tmp_path / "embeddings.parquet"
    result = rsvlm("index", "export", built, exported)
    assert result.returncode == 0, result.stderr
    frame = gpd.read_parquet(exported)
    assert len(frame) == len(SAMPLES) + 16 and len(frame["embedding"].iloc[0]) == 512
    copy = tmp_path / "imported"
    imported = rsvlm("index", "import", exported, "--out", copy, "--json")
    assert imported.returncode == 0, imported.stderr
    query = ("search", "--k", "5", "--json")
    first = json.loads(rsvlm(query[0], built, "a harbour", *query[1:]).stdout)["hits"]
    second = json.loads(rsvlm(query[0], copy, "a harbour", *query[1:]).stdout)["hits"]
    assert [h["path"] for h in first] == [h["path"] for h in second]
    assert np.allclose([h["score"] for h in first], [h["score"] for h in second], atol=1e-6)
