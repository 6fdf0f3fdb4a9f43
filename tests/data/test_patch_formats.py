"""Windowed scene readers on the real shared data: LoveDA patches, Sen1Floods11 water / land patches, RSVQA-LR
rural / urban images. Labels, splits and crops are checked against the source files read independently here."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsvlm.data.dataset import Dataset
from rsvlm.data.formats.loveda_patches import LoveDAPatchesDataset
from rsvlm.data.formats.sen1floods11 import Sen1Floods11Dataset
from rsvlm.data.registry import detect_format, open_dataset
from rsvlm.data.sample import Sample
from rsvlm.errors import AnnotationError, DataError
from tests.clihelp import assert_one_line_error, rsvlm

pytestmark = pytest.mark.shared

LOVEDA = "segmentation/loveda"
FLOOD = "flood/sen1floods11"
CHIP = "Spain_7370579"


def _counts(dataset: Dataset) -> dict[tuple[str | None, str | None], int]:
    return dict(Counter((r.split, r.label) for r in dataset.records))


def _window(record: Sample) -> tuple[int, int, int, int]:
    col, row, width, height = record.meta["window"]
    return col, row, width, height


def _spread(records: list[Sample]) -> list[Sample]:
    """Up to 12 records spread over the list, each label represented."""
    picked = {r.label: r for r in records}
    picked.update({r.id: r for r in records[:: max(1, len(records) // 8)]})
    return list(picked.values())


def test_loveda_patches_counts_split_by_tile_and_majority_labels(shared_data: Path) -> None:
    root = shared_data / LOVEDA
    assert detect_format(root) == "loveda-patches"
    ds = open_dataset(root)
    assert _counts(ds) == {
        ("train", "agriculture"): 938,
        ("train", "background"): 93,
        ("train", "forest"): 856,
        ("train", "water"): 25,
        ("test", "agriculture"): 132,
        ("test", "background"): 47,
        ("test", "forest"): 11,
        ("test", "water"): 66,
    }
    assert ds.class_names == {
        "agriculture": "agricultural land",
        "background": "other land",
        "forest": "forest",
        "water": "water",
    }
    assert any("building (7 train, 0 test), road (3 train, 0 test)" in n for n in ds.notes)
    tiles = {split: {r.meta["tile"] for r in ds.records if r.split == split} for split in ("train", "test")}
    assert tiles == {"train": {"0", "2"}, "test": {"1"}}
    # test windows tile tile 1 without overlap (16 x 16 of 64 px), train windows step half a patch
    assert {_window(r)[:2] for r in ds.records if r.split == "test"} == {
        (c, r) for r in range(0, 1024, 64) for c in range(0, 1024, 64)
    }
    assert {_window(r)[0] % 32 for r in ds.records if r.split == "train"} == {0}
    assert any(_window(r)[0] % 64 == 32 for r in ds.records if r.split == "train")
    masks = {k: np.asarray(Image.open(root / "masks" / f"{k}.png")) for k in ("0", "1", "2")}
    names = ["no-data", "background", "building", "road", "water", "barren", "forest", "agriculture"]
    for record in _spread(ds.records):
        col, row, w, h = _window(record)
        window = masks[record.meta["tile"]][row : row + h, col : col + w]
        counts = np.bincount(window.ravel(), minlength=8)
        assert record.label == names[int(np.argmax(counts[1:])) + 1]
        assert record.meta["majority_share"] == pytest.approx(counts[1:].max() / counts[1:].sum(), abs=1e-4)
        assert record.meta["labelled_share"] == pytest.approx(1.0)  # these tiles have no no-data pixels


def test_loveda_crop_is_the_window_and_keys_differ(shared_data: Path) -> None:
    ds = open_dataset(shared_data / LOVEDA, format="loveda-patches", split="test")
    tile = np.asarray(Image.open(shared_data / LOVEDA / "images" / "1.png").convert("RGB"))
    for record in _spread(ds.records):
        col, row, w, h = _window(record)
        crop = ds.load_image(record)
        assert crop.bands == ("red", "green", "blue") and crop.data.dtype == np.uint8
        np.testing.assert_array_equal(crop.to_hwc(), tile[row : row + h, col : col + w])
        assert ds[ds.records.index(record)].image is not None
    keys = [ds.content_key(r) for r in ds.records]
    assert len(set(keys)) == len(keys) == 256
    again = open_dataset(shared_data / LOVEDA, format="loveda-patches", split="test")
    assert [again.content_key(r) for r in again.records[:5]] == keys[:5]  # stable across openings


def test_loveda_patch_size_and_tiles_are_settable(shared_data: Path) -> None:
    ds = LoveDAPatchesDataset(shared_data / LOVEDA, patch=128, test_tiles=["2"], min_train=0)
    assert {_window(r)[2:] for r in ds.records} == {(128, 128)}
    assert {r.meta["tile"] for r in ds.records if r.split == "test"} == {"2"}
    assert sum(r.split == "test" for r in ds.records) == 64  # 8 x 8 windows, none dropped
    with pytest.raises(DataError, match="test tile"):
        LoveDAPatchesDataset(shared_data / LOVEDA, test_tiles=["9"])


def test_sen1floods11_counts_checkerboard_split_and_water_labels(shared_data: Path) -> None:
    import rasterio

    root = shared_data / FLOOD
    assert detect_format(root) == "sen1floods11"
    ds = open_dataset(root)
    assert _counts(ds) == {
        ("train", "not-water"): 151,
        ("train", "water"): 49,
        ("test", "not-water"): 96,
        ("test", "water"): 32,
    }
    assert ds.class_names == {"not-water": "land", "water": "water"}
    test_blocks = {tuple(r.meta["block"]) for r in ds.records if r.split == "test"}
    assert all((bi + bj) % 2 == 1 for bi, bj in test_blocks)
    for record in ds.records:  # every train window stays >= 16 px from every test block
        col, row, w, h = _window(record)
        bi, bj = record.meta["block"]
        inset = min(col - 128 * bj, row - 128 * bi, 128 * (bj + 1) - col - w, 128 * (bi + 1) - row - h)
        assert inset >= (16 if record.split == "train" else 0)
        assert (bi + bj) % 2 == (0 if record.split == "train" else 1)
    with rasterio.open(root / "Labels" / f"{CHIP}_LabelHand.tif") as src:
        labels = src.read(1)
    for record in _spread(ds.records):
        col, row, w, h = _window(record)
        window = labels[row : row + h, col : col + w]
        water, dry = int((window == 1).sum()), int((window == 0).sum())
        assert record.label == ("water" if water > dry else "not-water")
        assert record.meta["majority_share"] == pytest.approx(max(water, dry) / (water + dry), abs=1e-4)


def test_sen1floods11_rgb_is_stretched_over_the_whole_chip_and_ms_gives_raw_bands(shared_data: Path) -> None:
    import rasterio
    from rasterio.windows import Window

    root = shared_data / FLOOD
    rgb = open_dataset(root, format="sen1floods11", split="test")
    ms = open_dataset(root, format="sen1floods11-ms", split="test")
    assert [r.id for r in rgb.records] == [r.id for r in ms.records]
    with rasterio.open(root / "S2" / f"{CHIP}_S2Hand.tif") as src:
        chip = src.read().astype(np.float64)
        raw_window = {r.id: src.read(window=Window(*_window(r))) for r in _spread(ms.records)}
    lo, hi = np.percentile(chip[[3, 2, 1]].reshape(3, -1), [2, 98], axis=1)  # B4, B3, B2 over the whole chip
    for record in _spread(rgb.records):
        col, row, w, h = _window(record)
        image = rgb.load_image(record)
        assert image.bands == ("red", "green", "blue") and image.data.dtype == np.uint8
        expected = np.clip(
            (chip[[3, 2, 1], row : row + h, col : col + w] - lo[:, None, None]) / (hi - lo)[:, None, None], 0, 1
        )
        # float32 (reader) and float64 (here) arithmetic may round a value on a .5 boundary differently
        assert np.abs(image.data.astype(int) - np.rint(expected * 255)).max() <= 1
        bands = ms.load_image(record)
        assert bands.band_count == 13 and bands.data.dtype == np.int16 and bands.nodata == 0
        np.testing.assert_array_equal(bands.data, raw_window[record.id])
        assert bands.geo is not None and bands.geo.crs == "EPSG:4326"
    per_window = []  # what a per-window stretch would give instead: other colours for the same pixels
    for record in _spread(rgb.records):
        window = chip[[3, 2, 1], record.meta["window"][1] :, record.meta["window"][0] :][:, :32, :32].reshape(3, -1)
        per_window.append(np.percentile(window, [2, 98], axis=1))
    assert any(np.abs(p - np.stack([lo, hi])).max() > 50 for p in per_window)
    keys = [rgb.content_key(r) for r in rgb.records]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {ms.content_key(r) for r in ms.records}  # one window rendered two ways: two entries


def test_sen1floods11_settings_are_checked(shared_data: Path) -> None:
    ds = Sen1Floods11Dataset(shared_data / FLOOD, patch=64, block=256, gap=0, split="test")
    assert {_window(r)[2:] for r in ds.records} == {(64, 64)}
    with pytest.raises(DataError, match="block >= patch"):
        Sen1Floods11Dataset(shared_data / FLOOD, patch=64, block=64, gap=16)


def test_rsvqa_scene_labels_come_from_rural_urban_answers(shared_data: Path) -> None:
    root = shared_data / "rsvqa" / "lr"
    assert detect_format(root) == "rsvqa"  # the question reader keeps the folder
    ds = open_dataset(root, format="rsvqa-scene")
    answers = {a["question_id"]: a["answer"] for a in json.loads((root / "LR_answers.json").read_text())["answers"]}
    questions = json.loads((root / "LR_questions.json").read_text())["questions"]
    expected = {q["img_id"]: answers[q["id"]] for q in questions if q["type"] == "rural_urban"}
    assert {r.meta["image_id"]: r.label for r in ds.records} == expected
    assert {r.image_path for r in ds.records} == {root / "images" / f"{i}.png" for i in expected}
    assert _counts(ds) == {("train", "rural"): 14, ("test", "rural"): 14, ("train", "urban"): 11, ("test", "urban"): 11}
    train = {r.image_path for r in ds.records if r.split == "train"}
    assert not train & {r.image_path for r in ds.records if r.split == "test"}
    assert ds.class_names == {"rural": "rural area", "urban": "urban area"}
    with pytest.raises(DataError, match="no rural_urban questions"):
        open_dataset(shared_data / "rsvqa" / "hr", format="rsvqa-scene")


def test_data_info_through_the_cli(shared_data: Path) -> None:
    result = rsvlm("data", "info", shared_data / FLOOD, "--format", "sen1floods11", "--split", "test", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == "sen1floods11" and info["samples"] == 128 and info["images"] == 1
    assert info["classes"] == {"not-water": 96, "water": 32}
    assert info["image_sizes"] == [{"width": 512, "height": 512, "bands": 13, "dtype": "int16", "count": 1}]
    listed = rsvlm("data", "formats")
    for name in ("loveda-patches", "sen1floods11", "sen1floods11-ms", "rsvqa-scene"):
        assert name in listed.stdout
    assert_one_line_error(
        rsvlm("data", "info", shared_data / "rsvqa" / "hr", "--format", "rsvqa-scene", "--no-images"),
        "no rural_urban questions",
    )


def test_loveda_detection_leaves_ordinary_folders_and_rejects_bad_masks(tmp_path: Path) -> None:
    # a scene folder whose classes happen to be called images and masks stays a scene folder
    for cls in ("images", "masks"):
        (tmp_path / "scenes" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "scenes" / cls / "a.png")
    assert detect_format(tmp_path / "scenes") == "scene-folder"
    bad = tmp_path / "bad"
    for folder in ("images", "masks"):
        (bad / folder).mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(bad / "images" / "0.png")
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(bad / "masks" / "0.png")
    assert detect_format(bad) != "loveda-patches"
    with pytest.raises(AnnotationError, match="mask value 9 is not a LoveDA class index"):
        open_dataset(bad, format="loveda-patches")


def test_windows_reach_the_models_through_embed_records(shared_data: Path, tmp_path: Path) -> None:
    """rsvlm-lite embeds the RGB composite of each window; a 13-band spectral-adapter model takes the raw bands
    of the same windows and, before its adapter trains (it starts as the same composite), sees the same scene."""
    from rsvlm.features.cache import FeatureCache
    from rsvlm.models.lite import load_lite, packaged_weights
    from rsvlm.models.spectral import SpectralAdapter, SpectralContrastiveModel
    from rsvlm.pipeline import embed_records, model_cache_key

    lite = load_lite(packaged_weights("rsvlm-lite"))
    rgb = open_dataset(shared_data / FLOOD, format="sen1floods11", split="test")
    ms = open_dataset(shared_data / FLOOD, format="sen1floods11-ms", split="test")
    records = rgb.records[::16]
    first = embed_records(lite, rgb, records, cache_dir=tmp_path)
    assert len({tuple(np.round(v, 4)) for v in first}) == len(records)  # every window its own embedding
    cache = FeatureCache(tmp_path, model_cache_key(lite), lite.embed_dim)
    assert all(cache.get(rgb.content_key(r)) is not None for r in records)
    np.testing.assert_array_equal(embed_records(lite, rgb, records, cache_dir=tmp_path), first)
    assert isinstance(ms, Sen1Floods11Dataset)
    stats = next(iter(ms.stats.values()))
    spectral = SpectralContrastiveModel(lite, SpectralAdapter(13, (3, 2, 1), list(stats.lo), list(stats.hi)))
    bands = embed_records(spectral, ms, ms.records[::16], use_cache=False)
    # the composite is rounded to 8 bits and resized by Pillow on the RGB path, in float on the spectral one
    assert float((bands * first).sum(axis=1).min()) > 0.9
