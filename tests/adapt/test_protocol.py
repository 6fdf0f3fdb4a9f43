"""The few-shot protocol (fewshot/1) on synthetic features and on the released WHU-RS19 embeddings: one split, the same
draws for every method, scored on disjoint test images; deterministic; shot counts a class cannot supply are skipped
and reported; methods that need the model are listed as skipped; base-to-novel halves the classes by name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rsvlm.adapt.method import ClassSet
from rsvlm.adapt.methods import METHODS
from rsvlm.adapt.protocol import (
    PROTOCOL,
    LabelledSet,
    from_embeddings,
    make_settings,
    parse_set_options,
    parse_shots,
    run_protocol,
    split_classes,
    train_test_split,
)
from rsvlm.errors import RsvlmError

QUICK = {"tip-adapter-f": {"epochs": 3}, "clip-adapter": {"epochs": 5}}
FEATURES_ONLY = ["zero-shot", "prototype", "linear-probe", "tip-adapter", "tip-adapter-f", "clip-adapter"]


def _normalise(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def _synthetic(per_class: tuple[int, ...] = (20, 20, 20, 20), dim: int = 16, seed: int = 0) -> LabelledSet:
    """Class clusters whose text embeddings point only roughly at them (zero-shot is imperfect)."""
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.normal(size=(len(per_class), dim)))
    labels = np.repeat(np.arange(len(per_class)), per_class).astype(np.int64)
    feats = _normalise(centres[labels] + 0.4 * rng.normal(size=(len(labels), dim)))
    texts = _normalise(centres + 0.5 * rng.normal(size=centres.shape))
    names = ["delta", "alpha", "charlie", "bravo"][: len(per_class)]
    return LabelledSet(feats, labels, ClassSet(names, texts), 100.0, source="synthetic")


def _quick(methods: list[str]) -> dict[str, dict[str, int]]:
    return {m: o for m, o in QUICK.items() if m in methods}


def _without_times(result: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(result)
    out.pop("fit_seconds")
    for row in out["rows"]:
        row.pop("fit_seconds", None)
    return out


def test_same_inputs_give_the_same_numbers_and_every_method_sees_the_same_draws() -> None:
    data = _synthetic()
    settings = make_settings(FEATURES_ONLY, (1, 4), (1, 2), QUICK, base_to_novel=True, transductive=True)
    first = run_protocol(data, settings)
    assert _without_times(run_protocol(data, settings)) == _without_times(first)
    assert first["protocol"] == PROTOCOL and first["shots"] == [1, 4] and first["seeds"] == [1, 2]
    zero = [r for r in first["rows"] if r["method"] == "zero-shot"]
    assert [(r["shots"], r["transductive"]) for r in zero] == [(0, False), (0, True)]  # scored once, not per seed
    trained = [r for r in first["rows"] if r["method"] == "tip-adapter" and not r["transductive"]]
    assert [r["shots"] for r in trained] == [1, 4] and [s["seed"] for s in trained[0]["per_seed"]] == [1, 2]
    assert trained[0]["top1"] == pytest.approx(np.mean([s["top1"] for s in trained[0]["per_seed"]]))
    assert trained[0]["top1_std"] == pytest.approx(np.std([s["top1"] for s in trained[0]["per_seed"]]))
    assert set(first["fit_seconds"]) == set(FEATURES_ONLY)
    assert first["best"]["4"]["top1"] >= max(
        r["top1"] for r in first["rows"] if r["shots"] == 4 and not r["transductive"]
    )
    assert first["majority"]["top1"] == pytest.approx(25.0)  # balanced classes: one in four


def test_train_and_test_are_disjoint_and_the_datas_own_split_is_used() -> None:
    labels = np.repeat(np.arange(3), 10).astype(np.int64)
    train, test, how = train_test_split(labels)
    assert not set(train) & set(test) and len(train) + len(test) == 30 and "stratified" in how
    assert all(np.sum(labels[test] == c) == 5 for c in range(3))  # stratified halves
    splits = ["train", "test", "val"] * 10
    train, test, how = train_test_split(labels, splits)
    assert how.startswith("the data's own split") and set(train) == set(range(0, 30, 3))
    assert set(test) == set(range(1, 30, 3))  # val images are in neither


def test_shots_a_class_cannot_supply_are_skipped_and_reported() -> None:
    data = _synthetic(per_class=(20, 20, 6, 20))  # the third class has 3 train images after the 50/50 split
    result = run_protocol(data, make_settings(["zero-shot", "prototype"], (1, 2, 4, 8), (1,)))
    assert result["shots"] == [1, 2]
    assert [s["shots"] for s in result["skipped_shots"]] == [4, 8]
    assert "class 'charlie' has 3 training image(s), fewer than 4" in result["skipped_shots"][0]["reason"]
    with pytest.raises(RsvlmError, match="no shot count can be drawn from the train split: class 'charlie'"):
        run_protocol(data, make_settings(["prototype"], (8,), (1,)))


def test_methods_that_need_the_model_are_listed_as_skipped_on_embeddings() -> None:
    needs_model = sorted(m for m, method in METHODS.items() if method.needs_model)
    assert needs_model, "the registry should hold prompt-learning / LoRA methods"
    result = run_protocol(_synthetic(), make_settings(["zero-shot", *needs_model], (1,), (1,)))
    assert [s["method"] for s in result["skipped"]] == needs_model
    assert all("needs the model" in s["reason"] for s in result["skipped"])
    assert {r["method"] for r in result["rows"]} == {"zero-shot"}
    with pytest.raises(RsvlmError, match="none of the methods can run here"):
        run_protocol(_synthetic(), make_settings(needs_model, (1,), (1,)))


def test_base_to_novel_halves_the_classes_in_name_order() -> None:
    assert split_classes(["delta", "alpha", "charlie", "bravo", "echo"]) == ([1, 2, 3], [0, 4])
    data = _synthetic()
    methods = ["zero-shot", "clip-adapter", "tip-adapter"]
    result = run_protocol(data, make_settings(methods, (1, 4), (1,), _quick(methods),
                                              base_to_novel=True))  # fmt: skip
    b2n = result["base_to_novel"]
    assert b2n["base_classes"] == ["alpha", "bravo"] and b2n["novel_classes"] == ["delta", "charlie"]  # index order
    assert b2n["shots"] == 4
    assert [r["method"] for r in b2n["rows"]] == ["zero-shot", "clip-adapter"]
    assert b2n["not_measured"] == [{"method": "tip-adapter", "reason": "scores only the classes it was trained on"}]
    for row in b2n["rows"]:
        assert row["hm"] == pytest.approx(2 * row["base"] * row["novel"] / (row["base"] + row["novel"]))


def test_settings_are_checked_before_any_work() -> None:
    assert parse_shots("16,1, 4") == (1, 4, 16)
    for bad, message in (("0,1", "not a whole number"), ("1,1", "given twice"), ("a", "comma-separated")):
        with pytest.raises(RsvlmError, match=message):
            parse_shots(bad)
    assert parse_set_options(["tip-adapter-f.epochs=5", "tip-adapter-f.lr=0.01"]) == {
        "tip-adapter-f": {"epochs": 5, "lr": 0.01}
    }
    with pytest.raises(RsvlmError, match=r"expected METHOD\.KEY=VALUE"):
        parse_set_options(["epochs=5"])
    with pytest.raises(RsvlmError, match="unknown adaptation method 'nope'"):
        make_settings(["nope"])
    with pytest.raises(RsvlmError, match="unknown option"):
        make_settings(["tip-adapter"], options={"tip-adapter": {"epochs": 3}})
    with pytest.raises(RsvlmError, match="not among the compared methods"):
        make_settings(["zero-shot"], options={"tip-adapter": {"alpha": 2.0}})
    with pytest.raises(RsvlmError, match="seed 1 is given twice"):
        make_settings(["zero-shot"], seeds=(1, 1))
    assert make_settings().methods[0] == "zero-shot" and set(make_settings().methods) == set(METHODS)


@pytest.mark.shared
def test_golden_clip_embeddings_few_shot_beats_zero_shot(shared_data: Path) -> None:
    data = from_embeddings(shared_data / "golden/whurs19/results/WHURS19/CLIP/ViT-B-32")
    assert data.source == "CLIP/ViT-B-32" and len(data.labels) == 1005
    settings = make_settings(["zero-shot", "tip-adapter", "linear-probe"], (1, 16), (1,))
    result = run_protocol(data, settings)
    assert result["n_train"] + result["n_test"] == 1005 and result["split"].startswith("stratified")
    top1 = {(r["method"], r["shots"]): r["top1"] for r in result["rows"]}
    assert top1[("zero-shot", 0)] == pytest.approx(80.838, abs=0.01)  # the published 81.29 is on all 1005 images
    assert top1[("tip-adapter", 1)] >= top1[("zero-shot", 0)] - 1.0  # a cache blended with zero-shot cannot fall far
    assert result["best"]["16"]["top1"] >= top1[("zero-shot", 0)] + 5.0
