"""GeoParquet embedding interchange: an index exported, read by geopandas, imported back and searched the same;
foreign files in Major TOM's, Clay's and Earth Index's layouts imported; bad files refused in one line.

The index is built by the real rsvlm-lite from the shipped sample images and the sample Sentinel-2 crop (tiled, so
its entries have footprints and an acquisition time); the foreign files are written here with pyarrow/geopandas in
the column layouts those projects publish."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rsvlm import samples
from rsvlm.errors import DataError, RsvlmError
from rsvlm.index.archive import open_archive
from rsvlm.index.build import build_index
from rsvlm.index.interchange import export_geoparquet, import_geoparquet
from rsvlm.index.search import SearchQuery
from rsvlm.index.sources import SourceOptions
from rsvlm.index.store import IndexStore
from rsvlm.models.protocols import ContrastiveModel

PHOTOS = ("beach", "farmland", "port", "trees")
TILES = 4  # the 128 px sample crop in 64 px tiles
SCORE_TOL = 1e-6  # the same unit vectors, re-normalised once on import: scores agree to float32 rounding
GEO = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": {"encoding": "WKB"}}}


def _utc(when: str) -> datetime:
    return datetime.fromisoformat(when).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def lite() -> ContrastiveModel:
    from rsvlm.models.openclip import load_contrastive

    return load_contrastive("rsvlm-lite")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, lite: ContrastiveModel) -> Path:
    """Four photos (one then removed: exports must skip tombstoned rows) and four georeferenced, dated tiles."""
    import rasterio

    from rsvlm.index.maintain import remove_paths

    root = tmp_path_factory.mktemp("interchange")
    (root / "photos").mkdir()
    for name in PHOTOS:
        shutil.copy(samples.path(name), root / "photos" / f"{name}.jpg")
    scene = root / "coast.tif"
    shutil.copy(samples.path("coast"), scene)
    with rasterio.open(scene, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2019:07:14 15:49:31")
    out = root / "index"
    report = build_index(out, [root / "photos", scene], lite, options=SourceOptions(tile=64))
    assert report.added == len(PHOTOS) + TILES
    remove_paths(out, [root / "photos" / "trees.jpg"])
    return out


@pytest.fixture(scope="module")
def exported(built: Path) -> Path:
    out = built.parent / "exported" / "emb.parquet"
    assert export_geoparquet(built, out) == len(PHOTOS) - 1 + TILES
    return out


def test_export_is_geoparquet_with_embeddings_place_time_and_model(built: Path, exported: Path) -> None:
    import geopandas as gpd

    store = IndexStore.open(built)
    frame = gpd.read_parquet(exported)
    assert frame.crs.to_string() == "OGC:CRS84" and len(frame) == len(PHOTOS) - 1 + TILES
    assert set(frame["id"]) == store.keys() and not any(k.endswith("trees.jpg") for k in frame["id"])
    assert pq.read_schema(exported).field("embedding").type == pa.list_(pa.float32(), store.dim)
    assert (frame["source_model"] == "rsvlm-lite").all()
    tiles, photos = frame[frame["kind"] == "tile"], frame[frame["kind"] == "image"]
    assert len(tiles) == TILES and tiles.geometry.notna().all() and photos.geometry.isna().all()
    assert (tiles["datetime"] == _utc("2019-07-14T15:49:31")).all() and str(tiles["datetime"].dt.tz) == "UTC"
    assert photos["datetime"].isna().all()
    assert sorted(tiles["window"]) == ["0,0,64,64", "0,64,64,64", "64,0,64,64", "64,64,64,64"]
    assert tiles["crs"].str.startswith("EPSG:").all() and tiles["footprint"].str.startswith("POLYGON").all()

    ids, vectors = zip(*store.iter_vectors(), strict=True)
    stored = dict(zip(np.concatenate(ids).tolist(), np.concatenate(vectors), strict=True))
    for rsvlm_id, vector in zip(frame["rsvlm_id"], frame["embedding"], strict=True):
        assert np.array_equal(np.asarray(vector, np.float32), stored[rsvlm_id])  # the stored float32s, bit for bit

    meta = pq.read_schema(exported).metadata
    ours, emb, geo = (json.loads(meta[k]) for k in (b"rsvlm:embeddings", b"emb", b"geo"))
    assert ours["model"] == store.model and ours["normalised"] is True and ours["dim"] == store.dim
    assert emb["model"]["id"] == "rsvlm-lite" and emb["embedding_dim"] == store.dim
    assert emb["start_datetime"].startswith("2019-07-14T15:49:31")
    column = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and column["geometry_types"] == ["Polygon"] and "crs" not in column
    assert column["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert np.allclose(column["bbox"], tiles.geometry.union_all().bounds, atol=1e-12)
    west, south, east, north = column["bbox"]  # geopandas filters on the bbox covering column
    inside = gpd.read_parquet(exported, bbox=(west, south, (west + east) / 2, (south + north) / 2))
    assert 1 <= len(inside) < TILES and (inside["kind"] == "tile").all()


def test_import_of_an_export_searches_the_same_and_is_idempotent(
    built: Path, exported: Path, lite: ContrastiveModel, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    report = import_geoparquet(exported, copy, model=None)
    assert (report.added, report.already, report.count) == (len(PHOTOS) - 1 + TILES, 0, len(PHOTOS) - 1 + TILES)
    assert IndexStore.open(copy).model == IndexStore.open(built).model  # the file named its model: text works
    original, imported = open_archive(built), open_archive(copy)
    box = tuple(open_archive(built).info()["bounds"])
    for query in (
        SearchQuery(text="a sandy beach by the sea", k=7),
        SearchQuery(text="farmland", k=3),
        SearchQuery(text="the sea", k=7, bbox=box),
        SearchQuery(text="a coast", k=7, time=(_utc("2019-01-01"), None)),
    ):
        a, b = original.search(query, lite), imported.search(query, lite)
        assert [f"emb.parquet#{h.key}" for h in a.hits] == [h.key for h in b.hits], query
        assert np.allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=SCORE_TOL, rtol=0)
        for x, y in zip(a.hits, b.hits, strict=True):
            assert (y.kind, y.path, y.window, y.datetime, y.crs) == ("external", x.path, x.window, x.datetime, x.crs)
            assert y.geometry == x.geometry and y.footprint == x.footprint
    assert len(imported.search(SearchQuery(text="the sea", k=7, bbox=box), lite).hits) == TILES

    parts = sorted(p.name for p in IndexStore.open(copy).parts())
    again = import_geoparquet(exported, copy, model=lite)  # the same model, asserted: accepted, nothing added
    assert (again.added, again.already, again.count) == (0, len(PHOTOS) - 1 + TILES, len(PHOTOS) - 1 + TILES)
    assert sorted(p.name for p in IndexStore.open(copy).parts()) == parts

    from rsvlm.models.lite import load_lite, packaged_weights

    other = load_lite(packaged_weights("rsvlm-lite"), "rsvlm-lite-copy")  # same weights, another identity
    with pytest.raises(RsvlmError, match=r"made by rsvlm-lite .*import it without --model"):
        import_geoparquet(exported, tmp_path / "other", model=other)


def _major_tom(path: Path, rows: int, dim: int = 48) -> tuple[list[str], np.ndarray]:
    """Major TOM's embedding layout (``Core-*-SigLIP`` and kin), written as geopandas writes it."""
    import shapely

    rng = np.random.default_rng(21)
    vectors = rng.normal(size=(rows, dim)).astype(np.float32) * rng.uniform(0.5, 9, (rows, 1)).astype(np.float32)
    ids = [hashlib.sha256(f"chip {i}".encode()).hexdigest() for i in range(rows)]
    lon = 10.0 + 0.05 * np.arange(rows)
    boxes = [shapely.box(x - 0.01, 44.99, x + 0.01, 45.01) for x in lon]
    table = pa.table(
        {
            "unique_id": ids,
            "embedding": pa.array(list(vectors), pa.list_(pa.float32())),
            "timestamp": [f"2023{1 + i % 4:02d}19T161811" for i in range(rows)],
            "product_id": ["S2A_MSIL2A_20230119T161811_N0509_R111_T32TNR_20230119T190838"] * rows,
            "grid_cell": [f"500U_{i}R" for i in range(rows)],
            "geometry": pa.array(shapely.to_wkb(boxes).tolist(), pa.binary()),
            "centre_lat": pa.array([45.0] * rows, pa.float32()),
            "centre_lon": pa.array(lon, pa.float32()),
            "utm_footprint": [f"POLYGON (({500000 + i} 5000000, 1 1, 1 0, {500000 + i} 5000000))" for i in range(rows)],
            "utm_crs": ["EPSG:32632"] * rows,
            "pixel_bbox": [[0, 0, 224, 224]] * rows,
        }
    )
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(GEO)}), path)
    return ids, vectors


def test_major_tom_file_imports_for_vector_search_only(tmp_path: Path, lite: ContrastiveModel) -> None:
    file, index = tmp_path / "part_00001-00050.parquet", tmp_path / "index"
    ids, vectors = _major_tom(file, 12)
    report = import_geoparquet(file, index, model=None)
    assert (report.added, report.count) == (12, 12)
    model = IndexStore.open(index).model
    assert (model["name"], model["preprocess_id"], model["embed_dim"]) == (
        "external:part_00001-00050",
        "precomputed",
        48,
    )

    archive = open_archive(index)
    found = archive.search(SearchQuery(vector=5 * vectors[3], k=3), None)  # scale does not matter: unit vectors
    top = found.hits[0]
    assert top.key == f"{file.name}#{ids[3]}" and abs(top.score - 1) < SCORE_TOL
    assert (top.kind, top.window, top.crs) == ("external", (0, 0, 224, 224), "EPSG:32632")
    assert top.footprint is not None and top.footprint.startswith("POLYGON ((500003 5000000")
    assert top.datetime == "2023-04-19T16:18:11+00:00"  # Major TOM's compact timestamp, read as UTC
    near = archive.search(SearchQuery(vector=vectors[0], k=12, bbox=(9.9, 44.9, 10.07, 45.1)), None)
    assert sorted(h.key for h in near.hits) == sorted(f"{file.name}#{i}" for i in ids[:2])
    april = archive.search(SearchQuery(vector=vectors[0], k=12, time=(_utc("2023-04-01"), _utc("2023-04-30"))), None)
    assert sorted(h.key for h in april.hits) == sorted(f"{file.name}#{ids[i]}" for i in range(3, 12, 4))

    for model_given in (lite, None):  # text needs the model the vectors came from, which no one named
        with pytest.raises(RsvlmError) as caught:
            archive.search(SearchQuery(text="a forest", k=3), model_given)
        assert "\n" not in str(caught.value)
        assert "external:part_00001-00050" in str(caught.value) if model_given else "model" in str(caught.value)
    with pytest.raises(RsvlmError, match="imported as an embedding"):
        archive.thumbnail(top.id)

    _major_tom(file, 16)  # the same file, grown: a resumed import adds only the new rows
    again = import_geoparquet(file, index, model=None)
    assert (again.added, again.already, again.count) == (4, 12, 16)
    with pytest.raises(DataError, match="'embedding' holds 48-d vectors, rsvlm-lite makes 512-d"):
        import_geoparquet(file, tmp_path / "asserted", model=lite)
    assert not (tmp_path / "asserted" / "index.json").exists()


def test_clay_layout_in_utm_with_geoarrow_polygons_and_a_model(tmp_path: Path, lite: ContrastiveModel) -> None:
    """Clay v0's columns (index, date, embeddings), projected polygons in GeoArrow's native encoding, and vectors
    asserted to be rsvlm-lite's: reprojected to WGS84, footprint kept in UTM, text search allowed."""
    import datetime

    import geopandas as gpd
    import pyproj
    import shapely

    rng = np.random.default_rng(3)
    boxes = [shapely.box(500000 + 640 * i, 4600000, 500640 + 640 * i, 4600640) for i in range(5)]
    frame = gpd.GeoDataFrame(
        {
            "index": np.arange(5),
            "date": [datetime.date(2022, 6, 10 + i) for i in range(5)],
            "embeddings": list(rng.normal(size=(5, 512)).astype(np.float32)),
            "source_url": [f"s3://clay/31TCJ/claytile_{i}.tif" for i in range(5)],
        },
        geometry=boxes,
        crs="EPSG:32631",
    )
    file = tmp_path / "31TCJ_20220610_20220614_v001.gpq"
    frame.to_parquet(file, geometry_encoding="geoarrow")
    assert json.loads(pq.read_schema(file).metadata[b"geo"])["columns"]["geometry"]["encoding"] == "polygon"

    report = import_geoparquet(file, tmp_path / "index", model=lite)
    assert report.added == 5 and IndexStore.open(tmp_path / "index").model["name"] == "rsvlm-lite"
    archive = open_archive(tmp_path / "index")
    hits = {h.key: h for h in archive.search(SearchQuery(text="a forest", k=5), lite).hits}
    assert len(hits) == 5  # the asserted model answers text queries
    hit = hits[f"{file.name}#2"]
    to_wgs84 = pyproj.Transformer.from_crs("EPSG:32631", "OGC:CRS84", always_xy=True)
    expected = shapely.transform(boxes[2], lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))
    assert hit.geometry is not None
    assert shapely.equals_exact(shapely.geometry.shape(hit.geometry), expected, tolerance=1e-9)
    assert hit.crs == "EPSG:32631" and hit.footprint is not None
    assert shapely.equals_exact(shapely.from_wkt(hit.footprint), boxes[2], tolerance=1e-6)
    assert (hit.path, hit.datetime) == ("s3://clay/31TCJ/claytile_2.tif", "2022-06-12T00:00:00+00:00")


def test_points_and_the_emb_model_name_earth_index_style(tmp_path: Path) -> None:
    """Only centre coordinates: points, found by a bbox filter; the ``emb`` metadata names the embedding space, so a
    second file of the same space joins the index and a differently named one is refused."""
    rng = np.random.default_rng(5)

    def write(path: Path, first: int, model_id: str) -> None:
        table = pa.table(
            {
                "chip_id": [f"17SNB_{i}" for i in range(first, first + 4)],
                "vector": pa.array(list(rng.normal(size=(4, 16))), pa.list_(pa.float64())),
                "lat": [36.0 + 0.1 * i for i in range(first, first + 4)],
                "lon": [-78.0] * 4,
            }
        )
        emb = {"version": "0.0.1", "model": {"id": model_id, "source": "https://github.com/zhu-xlab/softcon"}}
        pq.write_table(table.replace_schema_metadata({"emb": json.dumps(emb)}), path)

    index = tmp_path / "index"
    write(tmp_path / "a.parquet", 0, "dinov2_vits14_softcon")
    write(tmp_path / "b.parquet", 4, "dinov2_vits14_softcon")
    for name in ("a.parquet", "b.parquet"):
        import_geoparquet(tmp_path / name, index, model=None)
    assert IndexStore.open(index).model["name"] == "external:dinov2_vits14_softcon"
    archive = open_archive(index)
    assert len(archive) == 8
    near = archive.search(SearchQuery(vector=np.ones(16, np.float32), k=8, bbox=(-78.1, 36.25, -77.9, 36.55)), None)
    assert sorted(h.key for h in near.hits) == ["a.parquet#17SNB_3", "b.parquet#17SNB_4", "b.parquet#17SNB_5"]
    assert near.hits[0].geometry is not None and near.hits[0].geometry["type"] == "Point"
    write(tmp_path / "c.parquet", 8, "another_model")
    with pytest.raises(RsvlmError, match=r"external:dinov2_vits14_softcon.*external:another_model"):
        import_geoparquet(tmp_path / "c.parquet", index, model=None)


def _bad(path: Path, case: str) -> None:
    rows = 5
    if case == "not parquet":
        path.write_text("id,embedding\n1,0.5\n")
        return
    columns: dict[str, Any] = {"id": [f"c{i}" for i in range(rows)]}
    vectors = np.ones((rows, 4), np.float32)
    if case == "no embedding column":
        columns["features_v2"] = list(vectors)
    elif case == "mixed dims":
        columns["embedding"] = pa.array([[1.0] * (4 if i < 3 else 5) for i in range(rows)], pa.list_(pa.float32()))
    elif case == "NaN":
        vectors[[1, 3], 2] = np.nan
        columns["embedding"] = list(vectors)
    elif case == "zeros":
        vectors[4] = 0
        columns["embedding"] = list(vectors)
    elif case == "bad time":
        columns.update(embedding=list(vectors), timestamp=["2023-01-01", "yesterday", None, "2023-01-03", ""])
    pq.write_table(pa.table(columns), path)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("not parquet", ("is not a Parquet file", "give a GeoParquet file of embeddings")),
        ("no embedding column", ("has no embedding column", "embedding, embeddings, vector", "--embedding-column")),
        ("mixed dims", ("column 'embedding' mixes vector sizes (4 and 5 values)", "from one model")),
        ("NaN", ("2 of 5 rows of column 'embedding' hold NaN or infinite values (first: row 1)", "drop or recompute")),
        ("zeros", ("1 of 5 rows of column 'embedding' are all zeros (first: row 4)", "drop or recompute")),
        ("bad time", ("column 'timestamp' holds 'yesterday', not a time", "--time-column none")),
    ],
)
def test_bad_files_are_refused_in_one_line_before_any_index_is_made(
    tmp_path: Path, case: str, fragments: tuple[str, ...]
) -> None:
    file = tmp_path / "bad.parquet"
    _bad(file, case)
    with pytest.raises(DataError) as caught:
        import_geoparquet(file, tmp_path / "index", model=None)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(file)), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not (tmp_path / "index").exists()


def test_cli_commands_export_and_import(built: Path, tmp_path: Path) -> None:
    import typer

    from rsvlm.cli.index_io import export_command, import_command

    app = typer.Typer()
    app.command("export")(export_command)
    app.command("import")(import_command)
    out = tmp_path / "again.parquet"
    result = CliRunner().invoke(app, ["export", str(built), str(out)])
    assert result.exit_code == 0, result.output
    assert f"{len(PHOTOS) - 1 + TILES} embeddings" in result.output
    result = CliRunner().invoke(app, ["import", str(out), "--out", str(tmp_path / "index"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert (report["added"], report["count"], report["file"]) == (len(PHOTOS) - 1 + TILES,) * 2 + (str(out),)
    result = CliRunner().invoke(app, ["import", str(out), "--out", str(tmp_path / "index")])
    assert result.exit_code == 0 and "rsvlm-lite: text, image and vector search" in result.output, result.output
    assert f"imported 0 from {out}, already there {len(PHOTOS) - 1 + TILES}" in result.output
    with pytest.raises(DataError, match="is not an rsvlm index"):
        export_geoparquet(tmp_path / "mistyped", tmp_path / "x.parquet")
    assert not (tmp_path / "mistyped").exists() and not (tmp_path / "x.parquet").exists()
