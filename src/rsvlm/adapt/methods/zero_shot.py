"""``zero-shot``: the baseline every method is measured against; nothing is learnt.

CLIP's zero-shot classifier (Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021): the class whose prompt-ensemble text embedding is closest to the image wins, with the
model's own temperature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Method, Options, Support, zero_shot_logits

if TYPE_CHECKING:
    from rsvlm.models.protocols import ContrastiveModel


@dataclass
class ZeroShot:
    logit_scale: float

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {}

    def logits(self, features: F32, classes: ClassSet) -> F32:
        return zero_shot_logits(features, classes, self.logit_scale)

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        return base


def fit(support: Support, options: Options, seed: int) -> ZeroShot:
    return ZeroShot(support.logit_scale)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> ZeroShot:
    return ZeroShot(base.logit_scale)


METHOD = Method(
    name="zero-shot",
    title="Zero-shot (prompt ensemble)",
    paper="Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021",
    fit=fit,
    restore=restore,
    generalises=True,
    trains=False,
)
