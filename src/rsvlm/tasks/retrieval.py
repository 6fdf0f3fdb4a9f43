"""Image–text retrieval with several captions per image (RSICD, RSITMD, UCM/Sydney captions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.tasks.metrics import retrieval_recalls

PROTOCOL = "retrieval/1"
"""Cosine similarity of L2-normalised embeddings; I2T hit if any own caption is in the top k; T2I hit if
the caption's image is in the top k; R@1/5/10 and their mean mR, in percent."""


def evaluate_retrieval(
    images: npt.NDArray[np.float32], texts: npt.NDArray[np.float32], text_to_image: npt.NDArray[np.integer]
) -> dict[str, Any]:
    similarity = images @ texts.T
    return {
        "task": "retrieval",
        "protocol": PROTOCOL,
        "n_images": int(images.shape[0]),
        "n_texts": int(texts.shape[0]),
        "n": int(images.shape[0]),
        **retrieval_recalls(similarity, np.asarray(text_to_image)),
    }
