"""``lora-image``: low-rank adaptation of the image tower, or of both towers (CLIP-LoRA's setting).

Zanella & Ben Ayed, "Low-Rank Few-Shot Adaptation of Vision-Language Models" (CLIP-LoRA), CVPR Workshops 2024,
with Hu et al.'s LoRA (ICLR 2022) through ``peft``; hyper-parameters as ``lora``. ``towers=both`` (default)
tunes the query/key/value projections of both encoders, as the paper; ``towers=image`` only the image tower.
The support images are embedded by the tuned tower at every step, so this method needs them (not only their
features), and scoring needs images embedded by the tuned model (``Fitted.image_model``, whose ``weights_id``
is the base's plus a digest of the LoRA tensors). ResNet towers take LoRA on their pointwise convolutions and
attention pooling; rsvlm-lite's EfficientNet on the pointwise convolutions of its MBConv blocks and head.
Differences from the paper, for CPUs: no augmentation (random crops and flips are not applied), and a much
shorter schedule: every step embeds the support images with gradients, so ``epochs=0`` takes a tenth of CoOp's
epochs (20 at 8–16 shots) of batch 128 at lr 1e-3. On LoveDA windows with rsvlm-lite (16 shots of 4 classes,
one CPU thread) that is about a minute; 200 epochs took 11 minutes and raised accuracy from 35.7 % to 46.4 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from rsvlm.adapt.method import Base, Method, Options, Support
from rsvlm.adapt.methods._lora import OPTIONS, LoraFitted, fit_lora, restore_lora

NAME = "lora-image"


def fit(support: Support, options: Options, seed: int) -> LoraFitted:
    return fit_lora(support, options, seed, NAME)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> LoraFitted:
    return restore_lora(state, options, base, NAME)


METHOD = Method(
    name=NAME,
    title="LoRA on the image (and text) tower (CLIP-LoRA)",
    paper="Zanella & Ben Ayed, Low-Rank Few-Shot Adaptation of Vision-Language Models, CVPRW 2024",
    fit=fit,
    restore=restore,
    options={**OPTIONS, "towers": ("both|image", "both")},
    needs_model=True,
    needs_pixels=True,
    generalises=True,
)
