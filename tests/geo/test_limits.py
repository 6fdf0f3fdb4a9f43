"""Whole-scene runs bounded before any work: tile sizes checked against the scene, a tile budget with a flag to
raise it, and scenes that cannot give a map (all nodata, all NaN, 1x1) refused with one line.

The attacks are real GeoTIFFs written by rasterio and fed to the real ``rsvlm demo``: a sparse file of a few hundred
KB declaring 200,000² px (39 million tiles at the default 64-px tiles of a 10 m scene), ``--tile 100000`` on a
256-px image (a 27.9 GiB allocation before the fix), and scenes with no valid pixel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rsvlm.cli.main import app
from rsvlm.errors import DataError
from rsvlm.geo.maps import MapSettings, score_scene
from rsvlm.geo.source import open_scene
from rsvlm.geo.tiling import CELLS_PER_TILE, DEFAULT_MAX_TILES, plan_tiles
from tests.clihelp import assert_one_line_error, rsvlm, run_main
from tests.geo.rasters import textured, write_geotiff, write_sparse
from tests.geo.test_maps import TEXT_EMB, TEXTS, BrightnessModel

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def one_error_line(code: int, err: str, *fragments: str) -> str:
    """Exit code 2, no traceback, one ``error:`` line holding every fragment."""
    assert code == 2 and "Traceback" not in err, (code, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def small_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 x 256 px, 3 bands of uint16 at 10 m in UTM 33N: valid everywhere."""
    return write_geotiff(tmp_path_factory.mktemp("small") / "small.tif", textured(3, 256, 256, seed=1))


# --- the tile budget -----------------------------------------------------------------------------------------


def test_sparse_file_declaring_200000_px_is_refused_before_any_work(tmp_path: Path) -> None:
    big = write_sparse(tmp_path / "big.tif", 200_000, 200_000, 3, "uint16")
    assert big.stat().st_size < 2_000_000  # a small file claiming 40 gigapixels
    out = tmp_path / "out"
    result = rsvlm("demo", "--input", big, "--out", out, "--no-chat", env=OFFLINE, timeout=120)
    tile, stride = 64, 32  # the automatic ~640 m tile of a 10 m scene, half overlap
    per_side = math.ceil((200_000 - tile) / stride) + 1
    line = assert_one_line_error(
        result, str(big), f"plans {per_side**2:,} tiles", f"limit of {DEFAULT_MAX_TILES:,}", "--max-tiles"
    )
    assert per_side**2 == 39_050_001 and "64-px tiles every 32 px" in line
    assert "loading" not in result.stderr  # refused before the model loads
    assert not out.exists()  # and before anything is written


def test_max_tiles_flag_sets_the_limit(
    small_tif: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = ((256 - 32) // 16 + 1) ** 2  # 15 x 15 tiles of 32 px every 16 px
    args = ("demo", "--input", small_tif, "--out", tmp_path / "out", "--no-chat", "--tile", "32", "--stride", "16")
    code, err = run_main(monkeypatch, capsys, *args, "--max-tiles", str(planned - 1))
    one_error_line(code, err, f"plans {planned:,} tiles", f"limit of {planned - 1:,}", "--max-tiles N")
    code, err = run_main(monkeypatch, capsys, *args, "--max-tiles", "0")
    one_error_line(code, err, "--max-tiles 0 must be at least 1")
    assert not (tmp_path / "out").exists()


def test_help_states_the_default_budget() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.stdout.replace("│", " ").split())  # help wrapped in a box: one line of words
    assert result.exit_code == 0 and "--max-tiles" in text
    assert f"[default: {DEFAULT_MAX_TILES:,}]" in text


def test_python_api_max_tiles_is_inclusive_and_none_lifts_it(tmp_path: Path) -> None:
    data = np.full((3, 32, 64), 120, dtype=np.uint8)
    planned = 3 * 7  # 16-px tiles every 8 px over 32 x 64 px
    with open_scene(write_geotiff(tmp_path / "s.tif", data)) as scene:
        exact = score_scene(scene, BrightnessModel(), TEXT_EMB, TEXTS, MapSettings(16, 8, max_tiles=planned))
        assert exact.tiles_scored == planned
        with pytest.raises(DataError, match=f"plans {planned} tiles, over the limit of {planned - 1}"):
            score_scene(scene, BrightnessModel(), TEXT_EMB, TEXTS, MapSettings(16, 8, max_tiles=planned - 1))
        unlimited = score_scene(scene, BrightnessModel(), TEXT_EMB, TEXTS, MapSettings(16, 8, max_tiles=None))
    assert unlimited.tiles_scored == planned


def test_a_stride_far_under_the_tile_is_bounded_by_its_map_cells() -> None:
    # one 2048-px tile, but a map of 2048² cells (one per 1-px stride): GBs of map arrays for 13 texts
    with pytest.raises(DataError, match=r"makes a map of 4,194,304 cells, over the limit of 40,000") as info:
        plan_tiles("scene.tif", 2048, 2048, 3, 2048, 1, 10_000)
    assert "--stride" in str(info.value) and CELLS_PER_TILE * 10_000 == 40_000
    assert len(plan_tiles("scene.tif", 2048, 2048, 3, 2048, 1, None)) == 1  # no limit: allowed


def test_readme_scale_scenes_fit_the_default_budget() -> None:
    """The 20,000² benchmark scene (160-px tiles) and a whole Sentinel-2 granule at the demo's own tiles run."""
    assert len(plan_tiles("mosaic.tif", 20_000, 20_000, 3, 160, 160, DEFAULT_MAX_TILES)) == 15_625
    assert len(plan_tiles("T33UUP", 10_980, 10_980, 13, 64, 32, DEFAULT_MAX_TILES)) == 343**2


# --- tile and stride against the scene -----------------------------------------------------------------------


def test_tile_larger_than_the_scene_is_refused_without_allocating_it(small_tif: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = rsvlm("demo", "--input", small_tif, "--out", out, "--no-chat", "--tile", "100000", env=OFFLINE)
    assert_one_line_error(result, str(small_tif), "tile 100000 px is larger than the 256x256 px scene", "--tile 256")
    assert "loading" not in result.stderr and not out.exists()


@pytest.mark.parametrize(
    ("tile_args", "fragment"),
    [
        (("--tile", "0"), "tile 0 px and stride 0 px must be positive"),
        (("--tile", "-64"), "must be positive"),
        (("--tile", "64", "--stride", "48"), "stride 48 px does not divide tile 64 px"),
        (("--tile", "32", "--stride", "64"), "stride 64 px does not divide tile 32 px"),
        (("--stride", "0"), "must be positive"),
    ],
)
def test_bad_tile_or_stride_is_one_line(
    small_tif: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tile_args: tuple[str, ...],
    fragment: str,
) -> None:
    out = tmp_path / "out"
    code, err = run_main(monkeypatch, capsys, "demo", "--input", small_tif, "--out", out, "--no-chat", *tile_args)
    one_error_line(code, err, fragment)
    assert not out.exists()


def test_a_tile_over_the_memory_limit_is_refused() -> None:
    with pytest.raises(DataError, match=r"a 8192-px tile of 13 bands needs 3.2 GiB, over the 1 GiB limit"):
        plan_tiles("s2.tif", 10_980, 10_980, 13, 8192, 4096, None)


# --- scenes that cannot give a map ---------------------------------------------------------------------------


def test_all_nodata_scene_is_refused(tmp_path: Path) -> None:
    path = write_sparse(tmp_path / "empty.tif", 512, 512, 3, "uint16", nodata=0, block=256)  # reads as nodata
    out = tmp_path / "out"
    result = rsvlm("demo", "--input", path, "--out", out, "--no-chat", env=OFFLINE)
    assert_one_line_error(result, str(path), "holds no valid pixels", "512x512 px scene is nodata (0)")
    assert "loading" not in result.stderr and not out.exists()


def test_all_nan_float_scene_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_geotiff(tmp_path / "nan.tif", np.full((3, 96, 96), np.nan, dtype=np.float32))
    out = tmp_path / "out"
    code, err = run_main(monkeypatch, capsys, "demo", "--input", path, "--out", out, "--no-chat")
    one_error_line(code, err, str(path), "holds no valid pixels", "96x96 px scene is NaN")
    assert not out.exists()


def test_one_pixel_scene_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_geotiff(tmp_path / "dot.tif", np.full((3, 1, 1), 800, dtype=np.uint16))
    code, err = run_main(monkeypatch, capsys, "demo", "--input", path, "--out", tmp_path / "out", "--no-chat")
    one_error_line(code, err, str(path), "the 1x1 px scene is smaller than one 32-px tile")


def test_small_scene_names_the_largest_tile_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_geotiff(tmp_path / "strip.tif", textured(3, 20, 300, seed=2))
    code, err = run_main(monkeypatch, capsys, "demo", "--input", path, "--out", tmp_path / "out", "--no-chat")
    one_error_line(code, err, "300x20 px scene is smaller than one 32-px tile", "pass --tile 20 or less")


def test_scene_whose_every_tile_is_mostly_nodata_is_refused_after_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The overview sees valid pixels, but no tile reaches half valid: no map can be made, so no exit 0."""
    data = textured(3, 128, 128, seed=3)
    data[:, :, 1::2] = 0  # every other column is nodata: each tile is exactly 50 % valid ...
    data[:, 1::4, :] = 0  # ... and every fourth row too: 37.5 %
    path = write_geotiff(tmp_path / "combed.tif", data, nodata=0)
    args = ("demo", "--input", path, "--out", tmp_path / "out", "--no-chat", "--tile", "32")
    code, err = run_main(monkeypatch, capsys, *args)
    one_error_line(code, err, str(path), "no tile has 50% valid pixels: all 16 tiles of 32 px were skipped")
