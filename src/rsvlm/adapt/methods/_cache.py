"""The cache model Tip-Adapter and Tip-Adapter-F share (Zhang et al., ECCV 2022).

Keys are the support set's image embeddings, values their one-hot labels. A query's affinity to each key is
``exp(−β (1 − cos))``; the cache logits ``A · L`` are added to CLIP's zero-shot logits with weight ``α``:

    logits = s · f Wᵀ + α · (s / 100) · exp(−β (1 − f Kᵀ)) L

``s`` is the model's temperature; the paper's ``α`` is relative to CLIP's ``s = 100``, so it is rescaled for models
with another temperature (rsvlm-lite learns its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, ClassSet, Options, Support, check_same_classes, zero_shot_logits

if TYPE_CHECKING:
    from rsvlm.models.protocols import ContrastiveModel

ALPHAS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
BETAS = (1.0, 2.0, 3.5, 5.5, 7.5, 10.0)


def one_hot(labels: npt.NDArray[np.int64], n_classes: int) -> F32:
    out = np.zeros((len(labels), n_classes), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def cache_logits(affinity_cos: F32, values: F32, beta: float) -> F32:
    out: F32 = (np.exp(-beta * (1.0 - affinity_cos)) @ values).astype(np.float32)
    return out


@dataclass
class CacheModel:
    name: str
    keys: F32
    values: F32
    alpha: float
    beta: float
    trained: list[str]
    logit_scale: float

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"keys": self.keys, "values": self.values, "alpha_beta": np.array([self.alpha, self.beta], np.float32)}

    def logits(self, features: F32, classes: ClassSet) -> F32:
        check_same_classes(self.name, self.trained, classes)
        zs = zero_shot_logits(features, classes, self.logit_scale)
        cache = cache_logits(features @ self.keys.T, self.values, self.beta)
        out: F32 = (zs + self.alpha * (self.logit_scale / 100.0) * cache).astype(np.float32)
        return out

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        return base


def restore_cache(name: str, state: Mapping[str, npt.NDArray[Any]], trained: list[str], scale: float) -> CacheModel:
    alpha, beta = (float(v) for v in np.asarray(state["alpha_beta"]).ravel()[:2])
    keys, values = np.asarray(state["keys"], np.float32), np.asarray(state["values"], np.float32)
    return CacheModel(name, keys, values, alpha, beta, trained, scale)


def chosen_alpha_beta(support: Support, options: Options) -> tuple[float, float]:
    """The options' (α, β), or with ``search`` and two or more shots the leave-one-out best of the grid."""
    alpha, beta = float(options["alpha"]), float(options["beta"])
    if options["search"] and support.shots >= 2:
        return search_alpha_beta(support.features, support.labels, support.classes, support.logit_scale, (alpha, beta))
    return alpha, beta


def search_alpha_beta(
    features: F32, labels: npt.NDArray[np.int64], classes: ClassSet, scale: float, default: tuple[float, float]
) -> tuple[float, float]:
    """(α, β) with the best leave-one-out accuracy on the support set itself: each example is scored with its
    own key left out of the cache, so no test image is ever looked at. Ties keep the paper's defaults."""
    n_classes = len(classes.names)
    values = one_hot(labels, n_classes)
    cos = features @ features.T
    zs = zero_shot_logits(features, classes, scale)
    best = (-1.0, default)
    candidates = [default] + [(a, b) for a in ALPHAS for b in BETAS if (a, b) != default]
    for alpha, beta in candidates:
        affinity = np.exp(-beta * (1.0 - cos))
        np.fill_diagonal(affinity, 0.0)
        scores = zs + alpha * (scale / 100.0) * (affinity @ values)
        accuracy = float((scores.argmax(axis=1) == labels).mean())
        if accuracy > best[0] + 1e-9:
            best = (accuracy, (alpha, beta))
    return best[1]
