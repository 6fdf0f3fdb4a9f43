"""``rsvlm demo`` as a user runs it: a real scene in, a self-contained report.html and GeoTIFFs out; bad inputs give
one line and exit code 2 before any model loads."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from rsvlm.cli.main import app
from rsvlm.data.bands import PRESETS
from rsvlm.data.raster import Window
from tests.clihelp import run_main
from tests.geo.test_outputs import write_s2_window


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 x 64 px of the real 13-band Sentinel-2 scene: 9 tiles of 32 px every 16 px."""
    return write_s2_window(tmp_path_factory.mktemp("input") / "s2_small.tif", Window(900, 700, 64, 64))


def _img_sources(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*?\bsrc=[\"']([^\"']*)", page)


def test_demo_writes_a_self_contained_report(small_scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--input", str(small_scene), "--out", str(out), "--no-chat", "--tile", "32", "--stride", "16"]
    result = CliRunner().invoke(app, [*args, "--query", "water"])
    assert result.exit_code == 0, result.output
    report = out / "report.html"
    assert report.is_file() and f"report: {report}" in result.stdout
    page = report.read_text(encoding="utf-8")
    sources = _img_sources(page)
    assert len(sources) >= 4  # composite, land cover, the query's heatmap, picked tiles
    assert all(s.startswith("data:image/") for s in sources), [s[:40] for s in sources]
    assert "“water”" in page and "best match for &#x27;water&#x27;" in page
    assert "Scene: s2_small" in page and "32 px every 16 px: 9 scored, 0 skipped" in page
    assert "(no chat model)" in page and "Tree counts" not in page
    assert "your input (its licence is yours to check)" in page  # a user's own scene: no source claimed

    folder = out / "s2_small"  # fileio.slug keeps "_"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["queries"] == ["water"] and summary["tiles_scored"] == 9
    assert len(summary["classes"]) == 10  # the default land-cover classes
    assert summary["notes"] == []  # real Sentinel-2 optical bands: in the model's domain, nothing to warn of
    assert summary["settings"]["max_tiles"] == 200_000  # the default tile budget
    assert "Note: " not in page
    with rasterio.open(folder / "query_water.tif") as src, rasterio.open(small_scene) as scene:
        assert src.crs == scene.crs and (src.width, src.height) == (4, 4)
        assert src.transform == scene.transform @ Affine.scale(16)  # same origin, 16 x larger cells
    for link in re.findall(r"<a href=\"([^\"]+)\"", page):
        assert (out / link).is_file(), link  # file links are relative to the report


def test_missing_input_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, err = run_main(monkeypatch, capsys, "demo", "--input", tmp_path / "nope.tif", "--out", out, "--no-chat")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and "nope.tif: no such file or folder" in lines[0]
    assert not out.exists()  # nothing written, no model loaded


def test_unknown_band_preset_names_the_known_ones(
    small_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("demo", "--input", small_scene, "--out", tmp_path / "out", "--no-chat", "--bands", "sentinel3")
    code, err = run_main(monkeypatch, capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "unknown band preset 'sentinel3'" in lines[0], err
    assert all(name in lines[0] for name in PRESETS)


def test_one_class_is_refused(
    small_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("demo", "--input", small_scene, "--out", tmp_path / "out", "--classes", "forest, ", "--no-chat")
    code, err = run_main(monkeypatch, capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: classes 'forest, ': "), err
    assert "landcover, aid, water-land" in lines[0]  # the presets it could have named
    assert not (tmp_path / "out").exists()


def _boxes_centred_in_image(xml: Path) -> int:
    root = ET.parse(xml).getroot()
    width, height = (int(root.findtext(f"size/{k}") or 0) for k in ("width", "height"))
    inside = 0
    for box in root.iter("bndbox"):
        x1, y1, x2, y2 = (float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        inside += 0 <= (x1 + x2) / 2 < width and 0 <= (y1 + y2) / 2 < height
    return inside


@pytest.mark.shared
def test_demo_counts_trees_on_the_held_out_neon_image(small_scene: Path, shared_data: Path, tmp_path: Path) -> None:
    neon = shared_data / "neon_trees"
    out = tmp_path / "demo"
    args = ["demo", "--input", str(small_scene), "--out", str(out), "--no-chat", "--tile", "32", "--stride", "32"]
    result = CliRunner().invoke(app, [*args, "--query", "water", "--neon", str(neon)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Tree counts: NEON OSBS_029 (held-out region)" in page
    assert all(s.startswith("data:image/") for s in _img_sources(page))

    counts = json.loads((out / "neon-trees" / "tree_counts.json").read_text(encoding="utf-8"))
    tiles = counts["tiles"]
    corners = {(c, r) for c in range(0, 400, 100) for r in range(0, 400, 100)}
    assert len(tiles) == 16 and {(t["col"], t["row"]) for t in tiles} == corners
    expected = _boxes_centred_in_image(neon / "OSBS_029.xml")
    assert expected == 61 and sum(t["true"] for t in tiles) == expected
    assert all(t["head"] >= 0 and t["chat"] is None for t in tiles)
    assert set(counts["metrics"]) >= {"regression head"} and counts["metrics"]["regression head"]["n"] == 16
    assert f"Totals: annotated {expected}," in page

    geojson = json.loads((out / "neon-trees" / "tree_counts.geojson").read_text(encoding="utf-8"))
    assert len(geojson["features"]) == 16
    with rasterio.open(out / "neon-trees" / "tree_counts.tif") as src, rasterio.open(neon / "OSBS_029.tif") as img:
        assert src.crs == img.crs and (src.width, src.height) == (4, 4)
        assert src.transform == img.transform @ Affine.scale(100)


def test_demo_report_states_the_source_and_licence_of_shipped_imagery(tmp_path: Path) -> None:
    """A newcomer's first report says where its imagery comes from (issue 19: real imagery, sources stated)."""
    from rsvlm import samples

    out = tmp_path / "demo"
    coast = samples.path("coast")
    args = ["demo", "--input", str(coast), "--out", str(out), "--no-chat", "--tile", "32", "--stride", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "contains modified copernicus sentinel data" in page.lower() and "(rsvlm sample image)" in page
