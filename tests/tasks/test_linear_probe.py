"""The linear-probe protocol refuses settings it cannot run with one line, before any fitting."""

from __future__ import annotations

import numpy as np
import pytest

from rsvlm.errors import RsvlmError
from rsvlm.tasks.linear_probe import evaluate_linear_probe, parse_seeds, stratified_split


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 10)
    features = rng.normal(size=(20, 4)).astype(np.float32) + labels[:, None] * 3.0
    return features, labels


def test_a_valid_probe_still_runs() -> None:
    x, y = _data()
    train, test = stratified_split(y, 0.5, seed=0)
    report = evaluate_linear_probe(x[train], y[train], x[test], y[test], ["a", "b"], shots=2, seeds=(1, 2))
    assert report["task"] == "few-shot" and report["seeds"] == [1, 2] and 0.0 <= report["top1"] <= 100.0
    assert parse_seeds(" 3, 1 ,2 ") == (3, 1, 2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"shots": 0}, "shots must be at least 1"),
        ({"shots": -2}, "shots must be at least 1"),
        ({"seeds": ()}, "at least one seed"),
        ({"seeds": (1, 1)}, "seed 1 is given twice"),
        ({"seeds": (-5,)}, "seed -5 is out of range"),
        ({"seeds": (2**32,)}, "out of range"),
        ({"c": 0.0}, "must be a positive number"),
        ({"c": float("nan")}, "must be a positive number"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], fragment: str) -> None:
    x, y = _data()
    with pytest.raises(RsvlmError, match=fragment):
        evaluate_linear_probe(x, y, x, y, ["a", "b"], **kwargs)  # type: ignore[arg-type]


def test_bad_data_shapes() -> None:
    x, y = _data()
    with pytest.raises(RsvlmError, match="at least 2 classes"):
        evaluate_linear_probe(x[:10], y[:10], x, y, ["a", "b"])
    with pytest.raises(RsvlmError, match="0 test images"):
        evaluate_linear_probe(x, y, x[:0], y[:0], ["a", "b"])
    for fraction in (0.0, 1.0, float("nan")):
        with pytest.raises(RsvlmError, match="strictly between 0 and 1"):
            stratified_split(y, fraction, seed=0)


@pytest.mark.parametrize("text", ["a,b", "1.5", "1;2", ","])
def test_seed_lists(text: str) -> None:
    with pytest.raises(RsvlmError):
        parse_seeds(text)
