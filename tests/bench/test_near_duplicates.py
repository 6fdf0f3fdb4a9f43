"""Near-duplicate detection (``rsvlm.bench.near_duplicates``) on synthetic and real AID images."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from rsvlm.bench.near_duplicates import (
    Match,
    _variants,
    features,
    find_near_duplicates,
    match_thumbnails,
    split_by_copies,
    thumbnails,
)
from rsvlm.errors import RsvlmError

# How each test image was made from its training image, with the name the detector must report.
DIHEDRAL: list[tuple[bool, int, str]] = [
    (False, 0, "identity"),
    (False, 1, "rot90"),
    (False, 2, "rot180"),
    (False, 3, "rot270"),
    (True, 0, "flip-h"),
    (True, 1, "flip-h+rot90"),
    (True, 2, "flip-v"),
    (True, 3, "flip-h+rot270"),
]


def dihedral(img: Image.Image, flip: bool, turns: int) -> Image.Image:
    """A left-right flip, then ``turns`` quarter turns counter-clockwise (Pillow's ROTATE_90)."""
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for _ in range(turns):
        img = img.transpose(Image.Transpose.ROTATE_90)
    return img


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert(img.mode)


def synthetic(seed: int, size: int = 150) -> Image.Image:
    """A textured RGB 'scene': smoothed noise at two scales, so every image is distinct and none is symmetric."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(6))
    fine = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    grey = np.asarray(coarse, dtype=np.float32) * 2 + np.asarray(fine, dtype=np.float32)
    grey = (grey - grey.min()) / (grey.max() - grey.min()) * 255
    rgb = np.stack([grey, grey * 0.8 + 20, 255 - grey * 0.5], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def chw(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy()


# -- near duplicates, synthetic --------------------------------------------------------------------------------


def test_every_flip_and_turn_is_named_like_pillow() -> None:
    source = synthetic(0)
    train = [chw(synthetic(seed)) for seed in range(1, 6)] + [chw(source)]
    test = [chw(jpeg(dihedral(source, flip, turns).resize((97, 97)), 40)) for flip, turns, _ in DIHEDRAL]
    matches = find_near_duplicates(train, test)
    assert [(m.test, m.train, m.transform) for m in matches] == [(str(i), "5", d[2]) for i, d in enumerate(DIHEDRAL)]
    assert all(m.correlation > 0.97 and m.detail > 0.9 for m in matches)


def test_smoothing_commutes_with_flips_and_turns() -> None:
    thumbs = np.random.default_rng(0).random((3, 32 * 32)).astype(np.float32)
    for a, b in zip(features(_variants(thumbs)), features(thumbs), strict=True):
        np.testing.assert_allclose(a, _variants(b), atol=1e-5)


# Scores of the same pair computed in another order (np.matmul over a whole chunk or einsum over gathered pairs,
# other chunk sizes; BLAS picks its kernel by shape, CPU and thread count) differ in their last bits: 1 ulp
# between chunk sizes on some CPUs, and at most 4.3e-7 (3.6 ulp at 1) from the float64 value over all 192,000
# pairs of the test below. Compare scores with 2e-6 near 1 (rtol + atol), ids exactly: _far_from_every_cut
# shows that rounding this small cannot change which pairs pass or which one is best.
RTOL, ATOL = 1e-6, 1e-6
MARGIN = 1e-5  # how far (float64) every score must stay from a cut for the ids to be stable: 20x the rounding


def assert_same_matches(
    got: list[tuple[int, int, float, float, int]], expected: list[tuple[int, int, float, float, int]]
) -> None:
    """Same (test, train, variant) in the same order; correlation and detail equal up to float rounding."""
    assert [(m[0], m[1], m[4]) for m in got] == [(m[0], m[1], m[4]) for m in expected]
    np.testing.assert_allclose([m[2:4] for m in got], [m[2:4] for m in expected], rtol=RTOL, atol=ATOL)


def _far_from_every_cut(
    train: npt.NDArray[np.float32],
    test: npt.NDArray[np.float32],
    thresholds: tuple[float, ...],
    detail_threshold: float,
) -> None:
    """In float64, no correlation lies within MARGIN of a threshold, every matched test image's best pair leads
    the runner-up by more, and no detail score near a match lies within MARGIN of its threshold."""
    (train_smooth, train_detail), (test_smooth, test_detail) = features(train), features(test)
    smooth = _variants(test_smooth).astype(np.float64) @ train_smooth.T.astype(np.float64)  # row: image * 8 + variant
    detail = _variants(test_detail).astype(np.float64) @ train_detail.T.astype(np.float64)
    for threshold in thresholds:
        assert np.abs(smooth - threshold).min() > MARGIN, threshold
    ranked = np.sort(smooth.reshape(len(test), -1), axis=1)
    matched = ranked[:, -1] >= min(thresholds)
    assert (ranked[matched, -1] - ranked[matched, -2]).min() > MARGIN
    assert np.abs(detail[smooth >= min(thresholds) - MARGIN] - detail_threshold).min() > MARGIN


def test_prefilter_is_exact() -> None:
    """The prefilter and any chunk size give the brute-force matches: same pairs, same scores up to rounding."""
    rng = np.random.default_rng(1)
    train = rng.random((300, 32 * 32)).astype(np.float32)
    # Turned copies blended with fresh noise: correlations spread over the whole range the thresholds cut.
    mix = np.linspace(0.0, 1.0, 80, dtype=np.float32)[:, None]
    test = mix * _variants(train[:80])[3::8] + (1 - mix) * rng.random((80, 32 * 32)).astype(np.float32)
    thresholds = (0.6, 0.9, 0.99)
    _far_from_every_cut(train, test, thresholds, detail_threshold=0.0)
    for threshold in thresholds:
        slow = match_thumbnails(train, test, threshold=threshold, detail_threshold=0.0, prefilter=False)
        assert len(slow) > 3
        # chunk_mb 0.1 and 0.07: 10 and 7 test images per chunk (the last one ragged), each chunk choosing the
        # dense or the gathered product on its own
        for prefilter, chunk_mb in [(True, 64), (True, 0.1), (True, 0.07), (False, 0.1), (False, 0.07)]:
            got = match_thumbnails(
                train, test, threshold=threshold, detail_threshold=0.0, prefilter=prefilter, chunk_mb=chunk_mb
            )
            assert_same_matches(got, slow)


def test_files_arrays_and_cache_agree(tmp_path: Path) -> None:
    img = synthetic(3)
    path = tmp_path / "a.jpg"
    img.save(path, quality=95)
    decoded = Image.open(path).convert("RGB")
    from_file = thumbnails([path])
    cache = tmp_path / "cache"
    cold = thumbnails([path], cache_dir=cache)
    (tmp_path / "b.jpg").write_bytes(path.read_bytes())  # same content, another name: a cache hit
    warm = thumbnails([tmp_path / "b.jpg"], cache_dir=cache)
    assert len(list(cache.rglob("*.emb"))) == 1
    np.testing.assert_array_equal(cold, from_file)
    np.testing.assert_array_equal(warm, from_file)
    smooth_file, _ = features(from_file)
    smooth_array, _ = features(thumbnails([chw(decoded)]))
    assert float(smooth_file[0] @ smooth_array[0]) > 0.999


def test_flat_images_match_nothing() -> None:
    flat = np.full((3, 64, 64), 128, dtype=np.uint8)
    assert find_near_duplicates([flat, chw(synthetic(4))], [flat, flat * 0.5]) == []
    smooth, detail = features(thumbnails([flat]))
    assert not smooth.any() and not detail.any()


def test_unreadable_file_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(RsvlmError, match=r"bad\.jpg: cannot decode"):
        thumbnails([bad])


def test_split_by_copies_keeps_order() -> None:
    matches = [Match("c", "x", 0.99, "identity", 0.9), Match("a", "y", 0.97, "rot90", 0.8)]
    assert split_by_copies(["a", "b", "c", "d"], matches) == (["b", "d"], ["a", "c"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: find_near_duplicates([np.zeros((8, 8))], [np.zeros((8, 8))], train_ids=["a", "b"]), "train_ids"),
        (lambda: find_near_duplicates([np.zeros((8, 8))], [np.zeros((8, 8))], threshold=0.2), "threshold"),
        (lambda: thumbnails([np.zeros((2, 2, 2, 2))]), "shape"),
        (lambda: thumbnails([np.zeros((64, 64, 3))]), r"transpose\(2, 0, 1\)"),
        (lambda: thumbnails([np.zeros((8, 8))], size=20), "multiple of 8"),
    ],
)
def test_user_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(RsvlmError, match=message):
        call()


# -- near duplicates, real AID images --------------------------------------------------------------------------

CLASSES = ("Airport", "Beach", "Bridge", "Farmland", "Forest", "Meadow")


def _aid(root: Path, cls: str, numbers: range | list[int]) -> list[Path]:
    return [root / "aid" / cls / f"{cls.lower()}_{k}.jpg" for k in numbers]


def _copy(img: Image.Image, k: int) -> Image.Image:
    """Copy k of the real-data test: a flip/turn, resized and re-encoded, with an extra edit for some k."""
    flip, turns, _ = DIHEDRAL[k % 8]
    if k in (3, 10, 17):
        img = img.crop((2, 2, 148, 148))  # a 2-pixel border crop
    img = dihedral(img, flip, turns)
    if k == 5:
        return jpeg(img.resize((300, 300), Image.Resampling.BICUBIC), 60)  # upsampled
    if k == 6:
        return jpeg(img.resize((120, 90), Image.Resampling.BILINEAR), 40)  # another aspect ratio
    if k == 7:
        img = ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(1.15)).enhance(0.85)
    if k == 8:
        img = img.convert("L")
    return jpeg(img.resize((97, 97), Image.Resampling.BILINEAR), 40)


@pytest.mark.shared
def test_real_aid_copies_are_found_and_distinct_images_are_not(shared_data: Path, tmp_path: Path) -> None:
    train = [p for cls in CLASSES for p in _aid(shared_data, cls, range(1, 11))]  # 60 images, 10 per class
    copied = train[::3]  # 20 of them
    copies = []
    for k, source in enumerate(copied):
        copies.append(tmp_path / f"copy_{k}.jpg")
        _copy(Image.open(source).convert("RGB"), k).save(copies[-1], quality=95)
    others = [p for cls in CLASSES for p in _aid(shared_data, cls, range(101, 104))] + _aid(
        shared_data, "Airport", [104, 105]
    )
    test = copies + others
    test_ids = [f"copy-{k}" for k in range(20)] + [p.stem for p in others]
    matches = find_near_duplicates(train, test, train_ids=[p.stem for p in train], test_ids=test_ids)

    expected = [(f"copy-{k}", copied[k].stem, DIHEDRAL[k % 8][2]) for k in range(20)]
    assert [(m.test, m.train, m.transform) for m in matches] == expected
    assert min(m.correlation for m in matches) >= 0.95
    free, with_copies = split_by_copies(test_ids, matches)
    assert free == [p.stem for p in others] and len(with_copies) == 20

    # The distinct images are far from every training image under every flip and turn, on both scores.
    train_smooth, train_detail = features(thumbnails(train))
    other_smooth, other_detail = features(thumbnails(others))
    smooth = float((_variants(other_smooth) @ train_smooth.T).max())
    detail = float((_variants(other_detail) @ train_detail.T).max())
    assert smooth < 0.9, smooth  # measured 0.87 (forest against forest)
    assert detail < 0.5, detail  # measured 0.33


@pytest.mark.shared
def test_detail_check_rejects_beaches_that_share_only_a_layout(shared_data: Path) -> None:
    train = _aid(shared_data, "Beach", range(1, 41))
    # Beaches share a layout (sand | sea) under some flip or turn: smoothed correlations run high between
    # different scenes, and the detail check is what keeps them apart.
    loose = find_near_duplicates(train, _aid(shared_data, "Beach", range(300, 341)), threshold=0.9, detail_threshold=-1)
    strict = find_near_duplicates(train, _aid(shared_data, "Beach", range(300, 341)), threshold=0.9)
    assert len(loose) > len(strict)
    assert all(m.detail < 0.75 for m in loose if m not in strict)
