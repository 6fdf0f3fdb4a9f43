"""``coop``: prompt learning — M context vectors learned in the text tower's token-embedding space.

Zhou, Yang, Loy & Liu, "Learning to Prompt for Vision-Language Models", IJCV 2022 (arXiv 2109.01134). The prompt
of every class is ``[ctx_1 … ctx_M] name .``; the context is shared by all classes ("unified context"), starts
from the word embeddings of ``init`` (default "a satellite photo of a", M = its token count) or, with
``init=""``, from N(0, 0.02) with M = ``n_ctx`` (the paper's 16), and is trained with cross-entropy of
``logit_scale · cos(image, prompt)`` over the support set's cached image features for the paper's
shot-dependent epochs (``epochs=0``: 50 for 1 shot, 100 for 2–4, 200 for 8–16), one warm-up epoch at lr 1e-5,
then a cosine schedule. Class tokens sit at the end (the paper's default position). Because the context is
shared, prompts of any class name can be scored (base-to-novel); a class ``a|b`` averages both names' prompts.

Differences from the paper, both for CPUs: no image augmentation (features are cached), and AdamW (lr 0.002)
on batches of 128 instead of SGD (lr 0.002, momentum 0.9) on batches of 32. Every step costs one text-tower pass
over all class prompts whatever the batch size, so large batches cut the cost 4x for the same epochs; on LoveDA
windows with rsvlm-lite (16 shots) this schedule scored 51.8 % against 42.4 % for the paper's, in a quarter of
the time (``optimizer=sgd,batch_size=32`` restores the paper's). ``conditional=true`` adds CoCoOp's
image-conditioned token (see ``cocoop``, which also takes CoCoOp's schedule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rsvlm.adapt.method import Base, Method, Options, Support
from rsvlm.adapt.methods._prompt import OPTIONS, PromptLearner, fit_prompts, restore_prompts

NAME = "coop"


def fit(support: Support, options: Options, seed: int) -> PromptLearner:
    return fit_prompts(support, options, seed, NAME)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> PromptLearner:
    return restore_prompts(state, options, base, NAME)


METHOD = Method(
    name=NAME,
    title="CoOp (learned prompt context)",
    paper="Zhou, Yang, Loy & Liu, Learning to Prompt for Vision-Language Models, IJCV 2022",
    fit=fit,
    restore=restore,
    options=OPTIONS,
    needs_model=True,
    generalises=True,
)
