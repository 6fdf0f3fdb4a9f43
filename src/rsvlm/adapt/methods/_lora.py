"""LoRA on the text and/or image tower through peft, shared by ``lora`` and ``lora-image`` (papers cited there).

A tower is tuned as a copy (``TunableContrastive.tower_copy``: a frozen tree over the base model's own weight
storage), into which peft injects low-rank branches ``W x + (α/r) B A x`` on the layers the model names
(``lora_targets``). Only A and B train; the base model's outputs never change, and the tuned model
(``with_towers``) carries ``weights_id`` = base + ``lora-<digest of the LoRA tensors>``, so its image features
never mix with the base model's in a feature cache.

Training: cross-entropy of ``logit_scale · cos(image, class text)`` with AdamW and a cosine schedule. A tuned
text tower encodes the class prompts every step with one template drawn from the support set's templates (one
text pass per class per step, whatever the number of templates); it scores with their average, the zero-shot
classifier it starts from. An untuned text tower keeps the frozen class embeddings. A tuned image tower embeds the
support images (``Support.pixels``) every step; an untuned one uses the cached support features.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Options, Support, torch_seed
from rsvlm.adapt.methods._tower import (
    batches,
    check_epochs,
    frozen,
    optimiser,
    shot_epochs,
    template_text_features,
    tensor_digest,
    tunable,
)
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    import torch

    from rsvlm.models.protocols import ContrastiveModel, Tower, TunableContrastive

TEMPLATES_KEY = "templates"
"""The prompt templates a tuned text tower scores with, saved as UTF-8 JSON bytes among the tensors."""
PIXEL_BATCH = 64
IMAGE_EPOCH_DIVISOR = 10
"""A tuned image tower embeds every support image at every step: ``epochs=0`` takes a tenth of CoOp's epochs
(20 at 8–16 shots), which keeps it to minutes on CPUs."""


def chosen_towers(options: Options) -> tuple[Tower, ...]:
    which = str(options.get("towers", "text"))
    return ("text", "image") if which == "both" else ("image",) if which == "image" else ("text",)


def lora_towers(model: TunableContrastive, options: Options, method: str) -> dict[Tower, torch.nn.Module]:
    """Copies of the chosen towers with peft's LoRA layers injected (A random, B zero: the base at first)."""
    from peft import LoraConfig, inject_adapter_in_model

    rank, alpha, blocks = int(options["rank"]), int(options["alpha"]), int(options["blocks"])
    if rank < 1 or alpha <= 0 or not 0 <= float(options["dropout"]) < 1:
        raise RsvlmError(f"method {method}: rank must be >= 1, alpha > 0 and dropout in [0, 1)")
    out: dict[Tower, torch.nn.Module] = {}
    for tower in chosen_towers(options):
        targets = model.lora_targets(tower, blocks)
        if not targets:
            raise RsvlmError(f"method {method}: the {tower} tower of {model.name} takes no LoRA")
        copy = model.tower_copy(tower)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=float(options["dropout"]), target_modules=targets)
        inject_adapter_in_model(config, copy)
        out[tower] = copy
    return out


def lora_parameters(towers: Mapping[Tower, torch.nn.Module]) -> dict[str, torch.nn.Parameter]:
    return {f"{t}.{n}": p for t, m in towers.items() for n, p in m.named_parameters() if "lora_" in n}


class LoraFitted:
    """Tuned tower copies on one base model: scores with the tuned text tower and/or expects features from the
    tuned image tower."""

    def __init__(
        self,
        base: TunableContrastive,
        towers: dict[Tower, torch.nn.Module],
        templates: Sequence[str],
        logit_scale: float,
    ) -> None:
        for module in towers.values():
            module.eval()  # dropout off: scoring is deterministic
            module.requires_grad_(False)
        self.base, self.towers, self.templates, self.logit_scale = base, towers, list(templates), logit_scale
        self.tag = "lora-" + tensor_digest(self._lora_state())
        self.tuned = base.with_towers(towers, self.tag)
        self._text: dict[tuple[str, ...], F32] = {}

    def _lora_state(self) -> dict[str, npt.NDArray[Any]]:
        return {k: p.detach().numpy().copy() for k, p in lora_parameters(self.towers).items()}

    def state(self) -> dict[str, npt.NDArray[Any]]:
        out = self._lora_state()
        if "text" in self.towers:
            out[TEMPLATES_KEY] = np.frombuffer(json.dumps(self.templates).encode(), np.uint8).copy()
        return out

    def text_weights(self, classes: ClassSet) -> F32:
        """The class embeddings: the frozen ones, or the tuned text tower's template ensemble (cached)."""
        import torch

        if "text" not in self.towers:
            return classes.text_weights
        key = tuple(classes.names)
        if key not in self._text:
            with torch.no_grad():
                feats = template_text_features(self.tuned, list(classes.names), self.templates)
            self._text[key] = feats.numpy().astype(np.float32)
        return self._text[key]

    def logits(self, features: F32, classes: ClassSet) -> F32:
        out: F32 = (self.logit_scale * (features @ self.text_weights(classes).T)).astype(np.float32)
        return out

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        if "image" not in self.towers:
            return base
        if base.weights_id != self.base.weights_id:
            raise RsvlmError(f"this LoRA adapter tuned {self.base.name}'s image tower, not {base.name}'s")
        return self.tuned


def _support_pixels(support: Support, method: str) -> torch.Tensor:
    import torch

    if support.pixels is None:
        raise RsvlmError(f"method {method} tunes the image tower: it needs the support images, not only features")
    n = len(support.labels)
    return torch.cat([support.pixels(list(range(s, min(n, s + PIXEL_BATCH)))) for s in range(0, n, PIXEL_BATCH)])


def fit_lora(support: Support, options: Options, seed: int, method: str) -> LoraFitted:
    import torch

    from rsvlm.tasks.templates import load_templates

    model = tunable(support.model, method)
    generator = torch_seed(seed)
    towers = lora_towers(model, options, method)
    templates = [str(options["template"])] if options["template"] else list(support.templates) or load_templates()
    if any("{}" not in t for t in templates):
        raise RsvlmError(f"method {method}: template {options['template']!r} has no {{}} for the class name")
    pixels = _support_pixels(support, method) if "image" in towers else None
    tuned = model.with_towers(towers, "lora-training")
    names = list(support.classes.names)
    feats, labels = torch.from_numpy(support.features), torch.from_numpy(support.labels)
    text = torch.from_numpy(support.classes.text_weights)
    params = list(lora_parameters(towers).values())
    for p in params:
        p.requires_grad_(True)
    size = int(options["batch_size"])
    per_epoch = -(-len(labels) // max(1, size))
    auto = shot_epochs(support.shots) // (IMAGE_EPOCH_DIVISOR if pixels is not None else 1)
    epochs = check_epochs(int(options["epochs"])) or auto
    opt, sched = optimiser(params, "adamw", float(options["lr"]), 1e-2, epochs * per_epoch)
    with frozen(model.network):
        for _ in range(epochs):
            for idx in batches(len(labels), size, generator):
                image = feats[idx] if pixels is None else tuned.image_embeddings(pixels[idx])
                if "text" in towers:  # one template per step, drawn from the set (the ensemble scores)
                    pick = int(torch.randint(len(templates), (1,), generator=generator))
                    classes = template_text_features(tuned, names, templates[pick : pick + 1])
                else:
                    classes = text
                loss = torch.nn.functional.cross_entropy(support.logit_scale * image @ classes.T, labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    return LoraFitted(model, towers, templates, support.logit_scale)


def restore_lora(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base, method: str) -> LoraFitted:
    import torch

    model = tunable(base.model, method)
    towers = lora_towers(model, options, method)
    params = lora_parameters(towers)
    expected, found = set(params), set(state) - {TEMPLATES_KEY}
    if expected != found:
        odd = sorted(expected ^ found)
        raise RsvlmError(f"{method} adapter: its LoRA tensors do not fit {model.name} with its options (e.g. {odd[0]})")
    for key, p in params.items():
        value = torch.from_numpy(np.array(state[key], np.float32))
        if value.shape != p.shape:
            raise RsvlmError(f"{method} adapter: tensor {key} is {tuple(value.shape)}, expected {tuple(p.shape)}")
        with torch.no_grad():
            p.copy_(value)
    templates: list[str] = []
    if "text" in towers:
        try:
            templates = [str(t) for t in json.loads(np.asarray(state[TEMPLATES_KEY], np.uint8).tobytes().decode())]
        except (KeyError, ValueError, TypeError):
            raise RsvlmError(f"{method} adapter: its prompt templates are missing or unreadable") from None
    return LoraFitted(model, towers, templates, base.logit_scale)


OPTIONS: dict[str, tuple[str, Any]] = {
    "rank": ("int", 2),
    "alpha": ("int", 1),
    "dropout": ("float", 0.25),
    "blocks": ("int", 0),
    "lr": ("float", 1e-3),
    "epochs": ("int", 0),
    "batch_size": ("int", 128),
    "template": ("str", ""),
}
