"""``lora``: low-rank adaptation of the text tower, trained on the cached support features.

Zanella & Ben Ayed, "Low-Rank Few-Shot Adaptation of Vision-Language Models" (CLIP-LoRA), CVPR Workshops 2024,
applying Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022, through ``peft``. As
CLIP-LoRA: rank 2, α 1, dropout 0.25 on the query/key/value projections of every block (``blocks`` limits it
to the last ones; MiniLM's query/key/value for rsvlm-lite), AdamW with weight decay 0.01 and a cosine schedule.
Only the text tower is tuned here, so the image features stay the base model's (no images are needed and cached
features are reused); ``lora-image`` tunes the image tower as well, which is CLIP-LoRA's own setting. Each step
prompts every class with one template drawn from the support set's; scoring averages all of them (CLIP-LoRA
uses one template, ``template="a photo of a {}."`` reproduces that). Because the classifier is the tuned text
tower, any class name can be scored (base-to-novel).

Difference from the paper, for CPUs: its 500 × shots iterations of batch 32 at lr 2e-4 (8,000 text-tower
passes over all classes at 16 shots) become CoOp's epochs (``epochs=0``: 50/100/200 by shots) of batch 128 at
lr 1e-3; on LoveDA windows with rsvlm-lite (16 shots, 200 steps) lr 2e-4 reached 29.0 %, lr 1e-3 50.0 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rsvlm.adapt.method import Base, Method, Options, Support
from rsvlm.adapt.methods._lora import OPTIONS, LoraFitted, fit_lora, restore_lora

NAME = "lora"


def fit(support: Support, options: Options, seed: int) -> LoraFitted:
    return fit_lora(support, options, seed, NAME)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> LoraFitted:
    return restore_lora(state, options, base, NAME)


METHOD = Method(
    name=NAME,
    title="LoRA on the text tower (CLIP-LoRA)",
    paper="Zanella & Ben Ayed, Low-Rank Few-Shot Adaptation of Vision-Language Models, CVPRW 2024",
    fit=fit,
    restore=restore,
    options=OPTIONS,
    needs_model=True,
    generalises=True,
)
