"""``tip-adapter``: the training-free cache model of Tip-Adapter.

Zhang, Zhang, Fang, Gao, Li, Dai, Qiao & Li, "Tip-Adapter: Training-free Adaption of CLIP for Few-shot
Classification", ECCV 2022. The support embeddings and their one-hot labels form a key-value cache whose logits
are blended with zero-shot logits (``rsvlm.adapt.methods._cache``); nothing is trained, so one shot cannot drag
the prediction far from zero-shot. The paper tunes α and β on a validation split; here, with two or more shots,
they are chosen by leave-one-out accuracy on the support set (``search``), else the paper's defaults α = 1,
β = 5.5 are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rsvlm.adapt.method import Base, Method, Options, Support
from rsvlm.adapt.methods._cache import CacheModel, chosen_alpha_beta, one_hot, restore_cache


def fit(support: Support, options: Options, seed: int) -> CacheModel:
    alpha, beta = chosen_alpha_beta(support, options)
    values = one_hot(support.labels, len(support.classes.names))
    return CacheModel(
        METHOD.name, support.features.copy(), values, alpha, beta, list(support.classes.names), support.logit_scale
    )


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> CacheModel:
    return restore_cache(METHOD.name, state, list(base.classes.names), base.logit_scale)


METHOD = Method(
    name="tip-adapter",
    title="Tip-Adapter (training-free cache)",
    paper="Zhang et al., Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification, ECCV 2022",
    fit=fit,
    restore=restore,
    options={"alpha": ("float", 1.0), "beta": ("float", 5.5), "search": ("bool", True)},
)
