from __future__ import annotations

from pathlib import Path

import numpy as np

from rsvlm.data.formats.scene_folder import SceneFolderDataset
from rsvlm.data.registry import detect_format


def test_class_folders(fixtures: Path) -> None:
    root = fixtures / "scene_folder"
    assert detect_format(root) == "scene-folder"
    ds = SceneFolderDataset(root)
    assert len(ds) == 7  # README.txt is not an image
    assert ds.class_names == {
        "Airport": "airport",
        "BareLand": "bare land",
        "footballfield": "football field",
    }
    sample = ds[0]
    assert sample.label == "Airport" and sample.id == "Airport/airport_1"
    assert sample.image is not None and sample.image.data.shape == (3, 24, 32)
    assert ds.records[0].image is None  # records stay pixel-free
    assert ds.unmatched == []


def test_split_folders(fixtures: Path) -> None:
    ds = SceneFolderDataset(fixtures / "scene_split")
    assert ds.all_splits == ["test", "train"]
    assert len(ds) == 6
    test = SceneFolderDataset(fixtures / "scene_split", split="test")
    assert sorted(r.label or "" for r in test.records) == ["Forest", "River"]


def test_iteration_loads_pixels(fixtures: Path) -> None:
    ds = SceneFolderDataset(fixtures / "scene_folder")
    means = [float(np.mean(s.image.data)) for s in ds if s.image is not None]
    assert len(means) == 7 and all(0 < m < 255 for m in means)


def test_real_aid(shared_data: Path) -> None:
    ds = SceneFolderDataset(shared_data / "aid")
    assert len(ds) == 10_000
    assert len(ds.classes) == 30
    counts = {c: sum(r.label == c for r in ds.records) for c in ds.classes}
    assert min(counts.values()) == 220 and max(counts.values()) == 420
    assert ds.class_names["BaseballField"] == "baseball field"
    assert ds.class_names["StorageTanks"] == "storage tanks"
    image = ds[0].image
    assert image is not None and image.data.shape == (3, 150, 150)
