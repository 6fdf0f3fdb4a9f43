from __future__ import annotations

import shutil
from pathlib import Path

from rsvlm.data.formats.scene_folder import SceneFolderDataset
from rsvlm.data.formats.voc import VocDataset
from rsvlm.data.info import dataset_summary


def test_summary_counts_and_sizes(fixtures: Path) -> None:
    summary = dataset_summary(VocDataset(fixtures / "voc"))
    assert summary["samples"] == 2 and summary["images"] == 2
    assert summary["box_labels"] == {"Tree": 3, "ship": 1}
    assert summary["splits"]["all"] == {
        "images": 2,
        "samples": 2,
        "boxes": 4,
        "unmatched_items": 1,
        "unmatched_annotations": 1,
    }
    sizes = {(s["width"], s["height"]): s["count"] for s in summary["image_sizes"]}
    assert sizes == {(60, 40): 1, (40, 40): 1}
    assert summary["unmatched"] == [
        {
            "split": "all",
            "reason": "image not found",
            "items": 1,
            "annotations": 1,
            "examples": ["tile_c.png"],
        }
    ]


def test_unreadable_images_are_listed_not_fatal(fixtures: Path, tmp_path: Path) -> None:
    root = tmp_path / "scenes"
    shutil.copytree(fixtures / "scene_folder", root)
    shutil.copy(fixtures / "broken/corrupt.jpg", root / "Airport/airport_9.jpg")
    shutil.copy(fixtures / "broken/truncated.jpg", root / "BareLand/bareland_9.jpg")
    ds = SceneFolderDataset(root)
    quick = dataset_summary(ds)
    assert [Path(u["path"]).name for u in quick["unreadable"]] == ["airport_9.jpg"]  # header-only
    full = dataset_summary(ds, verify=True)
    assert sorted(Path(u["path"]).name for u in full["unreadable"]) == ["airport_9.jpg", "bareland_9.jpg"]
    assert full["images"] == 9


def test_progress_is_reported(fixtures: Path) -> None:
    seen: list[tuple[int, int]] = []
    dataset_summary(SceneFolderDataset(fixtures / "scene_folder"), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (7, 7)
