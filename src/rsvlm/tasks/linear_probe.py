"""Linear probe and k-shot few-shot classification on frozen image features.

The classifier is scikit-learn's multinomial logistic regression on standardised features; the protocol
is fixed and seeded so two runs give the same numbers: for k-shot, k training images per class are drawn
with each seed and the score is averaged over seeds; the test set never changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError
from rsvlm.tasks.metrics import classification_report

PROTOCOL = "linear-probe/1"
"""StandardScaler + LogisticRegression(C, lbfgs, max_iter=1000); k-shot draws per seed; mean over seeds."""


MAX_SEED = 2**32 - 1


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` → ``(1, 2, 3)``; anything else is a one-line error saying what a seed list is."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise RsvlmError(f"seeds {text!r}: expected comma-separated whole numbers, e.g. 1,2,3") from None
    check_protocol(None, seeds, 1.0)
    return seeds


def check_protocol(shots: int | None, seeds: tuple[int, ...], c: float) -> None:
    """Refuse settings the protocol cannot run (before any slow work), each as one line saying the range."""
    import math

    if shots is not None and (isinstance(shots, bool) or shots < 1):
        raise RsvlmError(f"shots must be at least 1 image per class (omit it for the full probe), got {shots}")
    if not seeds:
        raise RsvlmError("at least one seed is needed, e.g. 1,2,3")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise RsvlmError(f"seed {bad[0]} is out of range: seeds are whole numbers from 0 to {MAX_SEED}")
    if len(set(seeds)) != len(seeds):
        repeated = next(s for s in seeds if seeds.count(s) > 1)
        raise RsvlmError(f"seed {repeated} is given twice: a repeated draw would count twice in the mean")
    if not (math.isfinite(c) and c > 0):
        raise RsvlmError(f"C (inverse regularisation) must be a positive number, got {c}")


def stratified_split(
    labels: npt.NDArray[np.integer], test_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Train and test indices with the same class proportions (every class keeps at least one of each)."""
    if not 0 < test_fraction < 1:  # also refuses NaN
        raise RsvlmError(f"test fraction must lie strictly between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = min(len(idx) - 1, max(1, round(len(idx) * test_fraction))) if len(idx) > 1 else 0
        test.extend(idx[:n_test].tolist())
        train.extend(idx[n_test:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(test), dtype=np.int64)


def _fit_predict(
    train_x: npt.NDArray[np.float32],
    train_y: npt.NDArray[np.integer],
    test_x: npt.NDArray[np.float32],
    n_classes: int,
    c: float,
    seed: int,
) -> npt.NDArray[np.float64]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    clf.fit(scaler.transform(train_x), train_y)
    scores = np.full((len(test_x), n_classes), -np.inf)
    scores[:, clf.classes_] = clf.predict_log_proba(scaler.transform(test_x))
    return scores


def evaluate_linear_probe(
    train_x: npt.NDArray[np.float32],
    train_y: npt.NDArray[np.integer],
    test_x: npt.NDArray[np.float32],
    test_y: npt.NDArray[np.integer],
    class_names: list[str],
    *,
    shots: int | None = None,
    seeds: tuple[int, ...] = (1, 2, 3),
    c: float = 1.0,
) -> dict[str, Any]:
    """Full linear probe (``shots=None``, one fit) or k-shot (``shots=k``, one draw and fit per seed)."""
    check_protocol(shots, seeds, c)
    n_classes = len(class_names)
    present = len(np.unique(np.asarray(train_y)))
    if present < 2 or len(test_y) == 0:
        raise RsvlmError(
            f"a linear probe needs training images of at least 2 classes and a test image; "
            f"got {present} class(es), {len(train_y)} training and {len(test_y)} test images"
        )
    runs: list[dict[str, Any]] = []
    for seed in seeds if shots is not None else seeds[:1]:
        if shots is None:
            idx = np.arange(len(train_y))
        else:
            rng = np.random.default_rng(seed)
            picked = []
            for cls in range(n_classes):
                pool = np.flatnonzero(train_y == cls)
                if len(pool) < shots:
                    raise RsvlmError(f"class {class_names[cls]!r} has {len(pool)} training images, fewer than {shots}")
                picked.extend(rng.choice(pool, shots, replace=False).tolist())
            idx = np.array(sorted(picked))
        scores = _fit_predict(train_x[idx], train_y[idx], test_x, n_classes, c, seed)
        runs.append(classification_report(scores, np.asarray(test_y), class_names))
    top1 = [float(r["top1"]) for r in runs]
    report = dict(runs[0])
    report.update(
        task="linear-probe" if shots is None else "few-shot",
        protocol=PROTOCOL,
        shots=shots,
        seeds=list(seeds) if shots is not None else [seeds[0]],
        top1=float(np.mean(top1)),
        top1_std=float(np.std(top1)),
        top5=float(np.mean([float(r["top5"]) for r in runs])),
        n_train=int(len(train_y) if shots is None else shots * n_classes),
    )
    return report
