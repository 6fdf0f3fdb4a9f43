"""Zero-shot scene classification: the class whose prompt embedding is closest to the image's wins."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.tasks.embeddings import AVERAGE, EmbeddingSet
from rsvlm.tasks.metrics import classification_report

PROTOCOL = "zeroshot/1"
"""Cosine similarity of L2-normalised float32 embeddings, argmax over classes; ties go to the lower index."""


def zeroshot_scores(images: npt.NDArray[np.float32], texts: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Cosine similarities (inputs are L2-normalised), shape (n_images, n_classes)."""
    scores: npt.NDArray[np.float32] = images @ texts.T
    return scores


def evaluate_zeroshot(
    embeddings: EmbeddingSet, template: str = AVERAGE, *, transductive: bool = False
) -> dict[str, Any]:
    """Zero-shot (optionally transductive) classification report for one template."""
    texts = embeddings.text_embeddings(template)
    scores = zeroshot_scores(embeddings.images, texts)
    if transductive:
        from rsvlm.tasks.transductive import transclip

        scores = transclip(embeddings.images, texts).probabilities
    report = classification_report(scores, embeddings.labels, embeddings.class_names)
    return {
        "task": "zeroshot",
        "protocol": PROTOCOL,
        "template": template,
        "transductive": transductive,
        **report,
    }


def evaluate_per_template(embeddings: EmbeddingSet, *, transductive: bool = False) -> dict[str, float]:
    """top-1 for every individual template."""
    return {t: float(evaluate_zeroshot(embeddings, t, transductive=transductive)["top1"]) for t in embeddings.templates}
