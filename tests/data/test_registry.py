from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.data.registry import FORMATS, detect_format, format_class, open_dataset
from rsvlm.errors import AnnotationError, FormatError


def test_every_format_resolves_and_declares_itself() -> None:
    for name in FORMATS:
        cls = format_class(name)
        assert cls.format_name == name
        assert cls.description


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("scene_folder", "scene-folder"),
        ("scene_split", "scene-folder"),
        ("scene_prefix", "scene-prefix"),
        ("rsicd", "rsicd-precomp"),
        ("caption_json", "caption-json"),
        ("rsvqa", "rsvqa"),
        ("voc", "voc"),
        ("llava", "llava"),
        ("llava/instruct.json", "llava"),
        ("voc/tile_b.xml", "voc"),
    ],
)
def test_detection(fixtures: Path, folder: str, expected: str) -> None:
    assert detect_format(fixtures / folder) == expected


def test_unknown_and_missing(fixtures: Path, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="unknown dataset format 'nope'"):
        format_class("nope")
    with pytest.raises(FormatError, match="not found"):
        detect_format(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="name one with --format"):
        detect_format(tmp_path / "empty")
    with pytest.raises(AnnotationError, match=r"truncated\.json: malformed JSON"):
        detect_format(fixtures / "broken/truncated.json")


def test_open_dataset_with_explicit_format(fixtures: Path) -> None:
    ds = open_dataset(fixtures / "scene_folder", format="scene-folder", class_names={"Airport": "airfield"})
    assert ds.class_names["Airport"] == "airfield"


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("aid", "scene-folder"),
        ("rsicd", "rsicd-precomp"),
        ("rsvqa/lr", "rsvqa"),
        ("rsvqa/hr", "rsvqa"),
        ("neon_trees", "voc"),
    ],
)
def test_detection_on_real_data(shared_data: Path, folder: str, expected: str) -> None:
    assert detect_format(shared_data / folder) == expected
