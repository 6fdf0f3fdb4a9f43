from __future__ import annotations

import numpy as np
import pytest

from rsvlm.tasks.metrics import classification_report, confusion_matrix, retrieval_recalls, topk_accuracy


def test_topk_and_confusion_by_hand() -> None:
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3], [0.4, 0.35, 0.25]])
    labels = np.array([0, 1, 1, 2])
    # predictions: 0, 2, 1, 0 -> 2 of 4 right
    assert topk_accuracy(scores, labels, 1) == 50.0
    # top-2: row1 {2,1} has 1; row3 {0,1} lacks 2 -> 3 of 4
    assert topk_accuracy(scores, labels, 2) == 75.0
    assert topk_accuracy(scores, labels, 5) == 100.0  # k larger than the class count
    matrix = confusion_matrix(labels, scores.argmax(1), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    report = classification_report(scores, labels, ["a", "b", "c"])
    assert report["per_class"] == {"a": 100.0, "b": 50.0, "c": 0.0}
    assert report["mean_per_class"] == pytest.approx(50.0)
    assert report["n"] == 4


def test_retrieval_recalls_by_hand() -> None:
    # 3 images, 5 captions: captions 0,1 -> image 0; 2,3 -> image 1; 4 -> image 2
    text_to_image = np.array([0, 0, 1, 1, 2])
    sim = np.array(
        [
            # image 0: best caption is 2 (wrong), then 1 (own) -> own rank 1
            [0.1, 0.5, 0.9, 0.2, 0.0],
            # image 1: own caption 3 ranks first -> rank 0
            [0.0, 0.1, 0.2, 0.8, 0.3],
            # image 2: own caption 4 ranks last of five -> rank 4
            [0.5, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    r = retrieval_recalls(sim, text_to_image, ks=(1, 2, 5))
    assert r["i2t_r1"] == pytest.approx(100 / 3)
    assert r["i2t_r2"] == pytest.approx(200 / 3)
    assert r["i2t_r5"] == 100.0
    # T2I: column-wise rank of the own image
    # caption0 col [0.1,0.0,0.5] -> own image 0 at rank 1; caption1 [0.5,0.1,0.4] -> rank 0
    # caption2 [0.9,0.2,0.3] -> own 1 at rank 2; caption3 [0.2,0.8,0.2] -> rank 0; caption4 [0,0.3,0.1] -> own 2 rank 1
    assert r["t2i_r1"] == pytest.approx(40.0)
    assert r["t2i_r2"] == pytest.approx(80.0)
    assert r["t2i_r5"] == 100.0
    assert r["mR"] == pytest.approx(np.mean([100 / 3, 200 / 3, 100, 40, 80, 100]))


def test_retrieval_shape_check() -> None:
    with pytest.raises(ValueError, match="text_to_image"):
        retrieval_recalls(np.zeros((2, 3)), np.array([0, 1]))
