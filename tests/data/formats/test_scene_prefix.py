from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.data.formats.scene_prefix import ScenePrefixDataset, class_of
from rsvlm.data.registry import detect_format


@pytest.mark.parametrize(
    ("stem", "cls"),
    [
        ("airport_01", "airport"),
        ("Beach-01", "beach"),
        ("agricultural00", "agricultural"),
        ("footballField_1", "footballfield"),
        ("park 12", "park"),
        ("notes", None),
        ("123", None),
    ],
)
def test_class_of(stem: str, cls: str | None) -> None:
    assert class_of(stem) == cls


def test_prefix_folder(fixtures: Path) -> None:
    root = fixtures / "scene_prefix"
    assert detect_format(root) == "scene-prefix"
    ds = ScenePrefixDataset(root)
    assert len(ds) == 6
    assert ds.class_names["footballfield"] == "football field"
    assert sorted({r.label or "" for r in ds.records}) == [
        "agricultural",
        "airport",
        "beach",
        "footballfield",
    ]
    assert [(u.name, u.reason) for u in ds.unmatched] == [("notes.jpg", "no class prefix followed by a number")]
