"""Classification and retrieval metrics, as plain functions over score matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def topk_accuracy(scores: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], k: int) -> float:
    """Percent of rows whose true label is among the k highest scores (ties broken by class index)."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(100.0 * np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(
    labels: npt.NDArray[np.integer], predictions: npt.NDArray[np.integer], n_classes: int
) -> npt.NDArray[np.int64]:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(matrix: npt.NDArray[np.int64], class_names: Sequence[str]) -> dict[str, float | None]:
    """Recall of each class in percent; None for a class with no test sample."""
    totals = matrix.sum(axis=1)
    return {
        name: (float(100.0 * matrix[i, i] / totals[i]) if totals[i] else None) for i, name in enumerate(class_names)
    }


def classification_report(
    scores: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], class_names: Sequence[str]
) -> dict[str, object]:
    """top-1, top-5, mean per-class accuracy, per-class accuracy and confusion matrix."""
    predictions = np.argmax(scores, axis=1)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    per_class = per_class_accuracy(matrix, class_names)
    present = [v for v in per_class.values() if v is not None]
    return {
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "mean_per_class": float(np.mean(present)) if present else None,
        "n": len(labels),
        "per_class": per_class,
        "confusion": matrix.tolist(),
    }


def retrieval_recalls(
    similarity: npt.NDArray[np.floating],
    text_to_image: npt.NDArray[np.integer],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Image-to-text and text-to-image recall@k for images with several captions each.

    ``similarity`` is (n_images, n_texts); ``text_to_image[j]`` is the image index caption j describes.
    I2T counts an image as found at k when ANY of its captions ranks in its top k (the standard protocol
    of RSICD/RSITMD papers); T2I asks whether a caption's own image ranks in its top k. ``mR`` is the mean
    of the six recalls.
    """
    n_images, n_texts = similarity.shape
    if text_to_image.shape != (n_texts,):
        raise ValueError(f"text_to_image must have {n_texts} entries, got {text_to_image.shape}")
    owner = text_to_image[None, :] == np.arange(n_images)[:, None]  # (images, texts)
    # rank of the best-ranked own caption for every image (0 = first)
    order = np.argsort(-similarity, axis=1, kind="stable")
    own_sorted = np.take_along_axis(owner, order, axis=1)
    i2t_rank = np.argmax(own_sorted, axis=1)
    order_t = np.argsort(-similarity.T, axis=1, kind="stable")
    t2i_rank = np.argmax(order_t == text_to_image[:, None], axis=1)
    result: dict[str, float] = {}
    for k in ks:
        result[f"i2t_r{k}"] = float(100.0 * np.mean(i2t_rank < k))
    for k in ks:
        result[f"t2i_r{k}"] = float(100.0 * np.mean(t2i_rank < k))
    result["mR"] = float(np.mean(list(result.values())))
    return result
