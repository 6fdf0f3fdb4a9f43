"""The sample images that ship in the package: real imagery, small, permissively licensed, each file named in NOTICE,
and reachable from Python (``rsvlm.samples``) and the CLI (``rsvlm data samples``) in a clone without ../shared."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from rsvlm import samples
from rsvlm.data.raster import inspect_raster, read_image
from rsvlm.errors import RsvlmError
from tests.clihelp import assert_one_line_error, rsvlm

ROOT = Path(__file__).resolve().parents[1]
PERMISSIVE = {"public domain", "CC0 1.0 (NEON)", samples.SAMPLES[0].licence}
"""USGS (public domain), NEON (CC0) and Copernicus Sentinel data (free and open, attribution only)."""


def test_every_sample_is_a_real_image_of_useful_size() -> None:
    files = {p.name for p in samples.DATA.iterdir()} - {"NOTICE"}
    assert files == {s.file for s in samples.SAMPLES}  # nothing shipped that is not listed, nothing listed missing
    for sample in samples.SAMPLES:
        info = inspect_raster(sample.path)
        assert min(info.width, info.height) >= 128, sample.name  # not a 32x24 test fixture
        pixels = read_image(sample.path).data.astype(np.float64)
        assert pixels.std() > 10, sample.name  # real texture, not a flat or noise-free synthetic image


def test_samples_stay_small_and_permissive() -> None:
    total = sum(p.stat().st_size for p in samples.DATA.iterdir())
    assert total < 500 * 1024, total
    assert {s.licence for s in samples.SAMPLES} <= PERMISSIVE
    notice = samples.NOTICE.read_text(encoding="utf-8")
    for sample in samples.SAMPLES:
        assert sample.file in notice, sample.file  # every file's source and licence is written down
    for word in ("AID", "RSICD"):  # research-only sets must never ship
        assert word not in notice and all(word not in s.source for s in samples.SAMPLES)


def test_the_geotiff_sample_is_multispectral_and_georeferenced() -> None:
    info = inspect_raster(samples.path("coast"))
    assert info.band_count == 4 and info.dtype == "uint16"
    assert info.geo is not None and info.geo.crs == "EPSG:32618"


def test_package_data_ships_the_samples() -> None:
    """An installed (non-editable) rsvlm must carry the images: the pyproject glob has to match every file."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["rsvlm"]
    for path in samples.DATA.iterdir():
        relative = path.relative_to(ROOT / "src" / "rsvlm").as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), relative


def test_lookup_by_name() -> None:
    assert samples.path("beach") == samples.DATA / "beach.jpg"
    assert samples.paths("port", "trees") == [samples.DATA / "port.jpg", samples.DATA / "trees.jpg"]
    assert samples.paths() == [s.path for s in samples.SAMPLES]
    assert samples.photos() == [p for p in samples.paths() if p.name != "coast.tif"]
    with pytest.raises(RsvlmError, match=r"unknown sample 'airport' \(samples: farmland, beach"):
        samples.path("airport")


def test_cli_lists_samples_with_sources() -> None:
    listed = rsvlm("data", "samples", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == [s.name for s in samples.SAMPLES]
    assert all(Path(r["path"]).is_file() and r["source"] and r["licence"] for r in rows)
    table = rsvlm("data", "samples")
    assert "Copernicus" in table.stdout and "public domain" in table.stdout and str(samples.NOTICE) in table.stdout
    only = rsvlm("data", "samples", "--paths", "beach", "trees")
    assert only.stdout.splitlines() == [str(samples.path("beach")), str(samples.path("trees"))]


def test_cli_unknown_sample_is_one_line() -> None:
    assert_one_line_error(rsvlm("data", "samples", "airport"), "unknown sample 'airport'", "farmland")
