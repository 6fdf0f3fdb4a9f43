from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.data.formats.rsicd_precomp import RsicdPrecompDataset
from rsvlm.data.registry import detect_format
from rsvlm.errors import AnnotationError, DataError


def test_both_alignments_and_unmatched(fixtures: Path) -> None:
    root = fixtures / "rsicd"
    assert detect_format(root) == "rsicd-precomp"
    ds = RsicdPrecompDataset(root, images=fixtures / "rsicd_images")
    train = [r for r in ds.records if r.split == "train"]
    test = [r for r in ds.records if r.split == "test"]
    assert [r.id for r in train] == ["airport_1", "airport_2"]
    assert train[1].captions == tuple(f"caption {j} of airport_2.jpg ." for j in range(5))
    assert [r.id for r in test] == ["airport_3", "beach_7"]
    assert test[1].captions == tuple(f"test caption {i} ." for i in range(5, 10))
    assert test[1].image_path is not None and test[1].image_path.parent.name == "Beach"
    assert sorted((u.split, u.name, u.annotations) for u in ds.unmatched) == [
        ("test", "00009.jpg", 5),
        ("train", "00001.jpg", 5),
    ]


def test_split_filter(fixtures: Path) -> None:
    ds = RsicdPrecompDataset(fixtures / "rsicd", images=fixtures / "rsicd_images", split="test")
    assert len(ds) == 2 and [u.split for u in ds.unmatched] == ["test"]
    with pytest.raises(DataError, match="no split 'val'"):
        RsicdPrecompDataset(fixtures / "rsicd", images=fixtures / "rsicd_images", split="val")


def test_errors(fixtures: Path) -> None:
    with pytest.raises(DataError, match="pass --images"):
        RsicdPrecompDataset(fixtures / "rsicd")
    with pytest.raises(AnnotationError, match="3 captions cannot be aligned with the 2 names"):
        RsicdPrecompDataset(fixtures / "broken/rsicd_misaligned", images=fixtures / "rsicd_images")


def test_real_rsicd_pairs_with_aid(shared_data: Path) -> None:
    ds = RsicdPrecompDataset(shared_data / "rsicd", images=shared_data / "aid")
    counts = {}
    for split in ("train", "test"):
        records = [r for r in ds.records if r.split == split]
        missing = [u for u in ds.unmatched if u.split == split]
        counts[split] = (
            len(records),
            sum(len(r.captions) for r in records),
            len(missing),
            sum(u.annotations for u in missing),
        )
    assert counts["test"] == (1027, 5135, 66, 330)
    assert counts["train"] == (8973, 44865, 855, 4275)
    assert all(len(r.captions) == 5 for r in ds.records)
    assert all(u.name[0].isdigit() for u in ds.unmatched)  # only RSICD's numeric images are absent
    first_test = next(r for r in ds.records if r.split == "test")
    assert first_test.id == "airport_348" and first_test.captions[0] == "the airport is very large ."
