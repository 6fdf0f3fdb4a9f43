"""The CLI as a user runs it: a real subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def rsvlm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsvlm", *map(str, args)], capture_output=True, text=True, timeout=300)


def info_json(*args: str | Path) -> dict[str, Any]:
    result = rsvlm("data", "info", *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_help_lists_commands_and_stays_light() -> None:
    result = rsvlm("--help")
    assert result.returncode == 0 and "data" in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rsvlm.cli.main; print(sorted(m for m in ('torch', 'rasterio', "
            "'transformers', 'open_clip', 'numpy', 'PIL') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"  # heavy libraries are imported lazily


def test_version() -> None:
    result = rsvlm("--version")
    assert result.returncode == 0 and result.stdout.startswith("rsvlm ")


def test_formats_listed() -> None:
    result = rsvlm("data", "formats")
    assert result.returncode == 0
    assert {"rsvqa", "rsicd-precomp", "caption-json", "llava", "voc", "scene-folder", "scene-prefix"} <= {
        line.split()[0] for line in result.stdout.splitlines()
    }


@pytest.mark.parametrize(
    ("path", "args", "fragment"),
    [
        ("broken/corrupt.jpg", (), "corrupt.jpg: "),
        ("broken/truncated.jpg", ("--verify",), "truncated.jpg: cannot decode image"),
        ("broken/truncated.json", (), "truncated.json: malformed JSON"),
        ("broken/rsvqa_truncated", (), "LR_questions.json: malformed JSON"),
        ("broken/xxe.xml", (), "xxe.xml: unsafe XML refused"),
        ("broken/bomb.png", (), "bomb.png: refused as a likely decompression bomb"),
        ("does/not/exist", (), "exist: not found"),
        ("scene_folder", ("--format", "nope"), "unknown dataset format 'nope'"),
    ],
)
def test_bad_input_gives_one_line_error(fixtures: Path, path: str, args: tuple[str, ...], fragment: str) -> None:
    result = rsvlm("data", "info", fixtures / path, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_usage_error_is_not_a_traceback() -> None:
    result = rsvlm("data", "info", "--no-such-flag")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "No such option" in result.stderr
    missing = rsvlm("data", "info")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "Missing argument" in missing.stderr


def test_table_output_on_fixture(fixtures: Path) -> None:
    result = rsvlm("data", "info", fixtures / "rsicd", "--images", fixtures / "rsicd_images")
    assert result.returncode == 0, result.stderr
    assert "rsicd-precomp" in result.stdout and "00009.jpg" in result.stdout


def test_raster_info_json(fixtures: Path) -> None:
    info = info_json(fixtures / "rasters/s2_4band.tif")
    assert info["format"] == "raster" and info["band_count"] == 4 and info["crs"] == "EPSG:32631"
    nan = info_json(fixtures / "rasters/float.tif")
    assert nan["nodata"] == "nan"  # valid JSON, not a bare NaN


def test_aid_acceptance(shared_data: Path) -> None:
    info = info_json(shared_data / "aid")
    assert (info["format"], info["images"], len(info["classes"])) == ("scene-folder", 10_000, 30)
    assert info["image_sizes"] == [{"width": 150, "height": 150, "bands": 3, "dtype": "uint8", "count": 10_000}]


def test_rsicd_acceptance(shared_data: Path) -> None:
    info = info_json(shared_data / "rsicd", "--images", shared_data / "aid")
    test, train = info["splits"]["test"], info["splits"]["train"]
    assert (test["images"], test["captions"], test["unmatched_items"], test["unmatched_annotations"]) == (
        1027,
        5135,
        66,
        330,
    )
    assert (train["images"], train["captions"], train["unmatched_items"], train["unmatched_annotations"]) == (
        8973,
        44865,
        855,
        4275,
    )


def test_rsvqa_lr_acceptance(shared_data: Path) -> None:
    info = info_json(shared_data / "rsvqa/lr")
    assert (info["images"], info["samples"]) == (50, 5005)
    assert info["question_types"] == {"comp": 1993, "count": 1471, "presence": 1491, "rural_urban": 50}


def test_neon_acceptance(shared_data: Path) -> None:
    info = info_json(shared_data / "neon_trees")
    assert info["format"] == "voc" and info["images"] == 3
    assert info["splits"]["all"]["boxes"] == 279 + 61 + 37
