"""``cocoop``: CoOp's prompt context conditioned on each image.

Zhou, Yang, Loy & Liu, "Conditional Prompt Learning for Vision-Language Models", CVPR 2022 (arXiv 2203.05557).
A light meta-net ``Linear(D, D/16) → ReLU → Linear(D/16, W)`` maps the image feature x to a token π(x) that is
added to every context vector, ``ctx_m(x) = ctx_m + π(x)``, so each image is scored against its own prompts
(images × classes text forwards, batched). The paper's schedule: context initialised from a 4-word phrase
(here "a satellite photo of a"), batch 1, 10 epochs, lr 0.002; context and meta-net train, nothing else.
It is CoOp with ``conditional=true`` and these defaults (``coop`` shares the code), registered on its own so the
few-shot protocol compares both. Differences from the paper: no image augmentation (cached features), and AdamW
instead of SGD (on LoveDA windows with rsvlm-lite, 16 shots: 47.3 % against 39.3 % with ``optimizer=sgd``).
Cost: every epoch encodes images × classes prompts, about a hundred times a CoOp epoch at 16 shots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rsvlm.adapt.method import Base, Method, Options, Support
from rsvlm.adapt.methods._prompt import OPTIONS, PromptLearner, fit_prompts, restore_prompts

NAME = "cocoop"


def fit(support: Support, options: Options, seed: int) -> PromptLearner:
    return fit_prompts(support, options, seed, NAME)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> PromptLearner:
    return restore_prompts(state, options, base, NAME)


METHOD = Method(
    name=NAME,
    title="CoCoOp (image-conditioned prompt context)",
    paper="Zhou, Yang, Loy & Liu, Conditional Prompt Learning for Vision-Language Models, CVPR 2022",
    fit=fit,
    restore=restore,
    options={**OPTIONS, "conditional": ("bool", True), "epochs": ("int", 10), "batch_size": ("int", 1)},
    needs_model=True,
    generalises=True,
)
