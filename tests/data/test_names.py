from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.data.names import class_name_map, load_name_map, readable
from rsvlm.errors import AnnotationError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("footballfield", "football field"),
        ("railwaystation", "railway station"),
        ("BareLand", "bare land"),
        ("DenseResidential", "dense residential"),
        ("basketball_court", "basketball court"),
        ("Beach", "beach"),
        ("SeaLake", "sea or lake"),
        ("storage-tanks", "storage tanks"),
        ("RGBImage", "rgb image"),
    ],
)
def test_readable(raw: str, expected: str) -> None:
    assert readable(raw) == expected


def test_overrides_win() -> None:
    assert class_name_map(["Center", "Beach"], {"Center": "city centre"}) == {
        "Center": "city centre",
        "Beach": "beach",
    }


def test_load_name_map_formats(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"Center": "city centre"}')
    (tmp_path / "m.txt").write_text("# comment\nCenter\tcity centre\nPond=small lake\n")
    assert load_name_map(tmp_path / "m.json") == {"Center": "city centre"}
    assert load_name_map(tmp_path / "m.txt") == {"Center": "city centre", "Pond": "small lake"}
    (tmp_path / "bad.txt").write_text("Center city centre\n")
    with pytest.raises(AnnotationError, match="line 1"):
        load_name_map(tmp_path / "bad.txt")
    with pytest.raises(AnnotationError, match="not found"):
        load_name_map(tmp_path / "absent.txt")


def test_whurs19_readable_names_match_the_published_prompts(shared_data: Path) -> None:
    """The golden WHU-RS19 prompts used these readable names; our rules must produce the same ones."""
    folder = shared_data / "golden/whurs19/datasets/WHURS19"
    raw = (folder / "classes.txt").read_text().split("\n")
    published = (folder / "class_changes.txt").read_text().split("\n")
    pairs = [(r.strip(), p.strip()) for r, p in zip(raw, published, strict=True) if r.strip()]
    assert len(pairs) == 19
    assert [readable(r) for r, _ in pairs] == [p for _, p in pairs]
