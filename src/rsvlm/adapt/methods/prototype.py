"""``prototype``: nearest class mean (NCM) on normalised image features, optionally pulled toward the class text.

Prototypical classification (Snell et al., "Prototypical Networks for Few-shot Learning", NeurIPS 2017) on
frozen CLIP features: a class prototype is the re-normalised mean of its support embeddings; an image goes to the
prototype with the highest cosine. ``text_weight`` λ mixes in the zero-shot class embedding,
``normalise((1 − λ)·mean + λ·text)``, which keeps 1-shot prototypes from being one arbitrary image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Method, Options, Support, check_same_classes

if TYPE_CHECKING:
    from rsvlm.models.protocols import ContrastiveModel


def _normalise(x: npt.NDArray[np.floating]) -> F32:
    out: F32 = (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
    return out


@dataclass
class Prototypes:
    prototypes: F32
    trained: list[str]
    logit_scale: float

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"prototypes": self.prototypes}

    def logits(self, features: F32, classes: ClassSet) -> F32:
        check_same_classes(METHOD.name, self.trained, classes)
        out: F32 = (self.logit_scale * features @ self.prototypes.T).astype(np.float32)
        return out

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        return base


def fit(support: Support, options: Options, seed: int) -> Prototypes:
    n_classes = len(support.classes.names)
    means = np.stack(
        [support.features[support.labels == c].mean(axis=0) if (support.labels == c).any() else
         np.zeros(support.features.shape[1], np.float32) for c in range(n_classes)]
    )  # fmt: skip
    lam = float(options["text_weight"])
    protos = _normalise((1.0 - lam) * _normalise(means) + lam * support.classes.text_weights)
    return Prototypes(protos, list(support.classes.names), support.logit_scale)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> Prototypes:
    return Prototypes(np.asarray(state["prototypes"], np.float32), list(base.classes.names), base.logit_scale)


METHOD = Method(
    name="prototype",
    title="Prototype / nearest class mean",
    paper="Snell, Swersky & Zemel, Prototypical Networks for Few-shot Learning, NeurIPS 2017",
    fit=fit,
    restore=restore,
    options={"text_weight": ("float", 0.0)},
)
