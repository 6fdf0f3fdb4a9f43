"""Prompt learning, shared by ``coop`` and ``cocoop`` (papers cited there).

The prompt of class c is ``[ctx_1 … ctx_M] name_c .`` in the text tower's token-embedding space: M learned
vectors in the slots right after the start token, then the class name's own word embeddings. The context is
shared by all classes (CoOp's unified context), so any class name can be scored with it (base-to-novel). With
``conditional`` a meta-net ``Linear(D, D/16) → ReLU → Linear(D/16, W)`` maps each image feature to a token
``π(x)`` added to every context vector (CoCoOp), and every image gets its own prompts.

Only the context (and the meta-net) train; the image features are the cached support embeddings (the image
tower is frozen) and the text tower's weights take no gradients. Placeholder ids ``x x … x`` stand in the
context slots: their embeddings are replaced, and CLIP's end-token pooling or MiniLM's mean pooling only need
the ids' layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Options, Support, torch_seed
from rsvlm.adapt.methods._tower import (
    TEXT_BATCH,
    aliases,
    batches,
    check_epochs,
    frozen,
    optimiser,
    shot_epochs,
    tunable,
)
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    import torch

    from rsvlm.models.protocols import ContrastiveModel, TextTokens, TunableContrastive

META_KEYS = ("meta.0.weight", "meta.0.bias", "meta.2.weight", "meta.2.bias")


def _special_count(model: TunableContrastive) -> int:
    return int(model.tokenize([""]).mask.sum())


def init_context(model: TunableContrastive, phrase: str, n_ctx: int, generator: torch.Generator) -> torch.Tensor:
    """(M, W) context from the word embeddings of ``phrase`` (M = its token count), or N(0, 0.02) with M = n_ctx."""
    import torch

    if phrase.strip():
        tokens = model.tokenize([phrase])
        m = int(tokens.mask.sum()) - _special_count(model)
        if m < 1:
            raise RsvlmError(f"init phrase {phrase!r} has no tokens")
        with torch.no_grad():
            return model.word_embeddings(tokens.ids[:, tokens.start : tokens.start + m])[0].detach().clone()
    if n_ctx < 1:
        raise RsvlmError(f"n_ctx must be at least 1 for a random context, got {n_ctx}")
    width = int(model.word_embeddings(model.tokenize(["x"]).ids).shape[-1])
    return torch.randn(n_ctx, width, generator=generator) * 0.02


def meta_net(dim: int, width: int) -> torch.nn.Sequential:
    import torch

    hidden = max(1, dim // 16)
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, width))


class PromptLearner:
    """Learned context (and meta-net) on a tunable model: encodes any class names' prompts with it."""

    def __init__(
        self, model: TunableContrastive, ctx: torch.Tensor, meta: torch.nn.Module | None, logit_scale: float
    ) -> None:
        self.model, self.ctx, self.meta, self.logit_scale = model, ctx, meta, logit_scale
        self._prompts: dict[tuple[str, ...], tuple[TextTokens, torch.Tensor, torch.Tensor]] = {}
        self._features: dict[tuple[str, ...], torch.Tensor] = {}

    def prompts(self, names: Sequence[str]) -> tuple[TextTokens, torch.Tensor, torch.Tensor]:
        """Tokens of ``x … x alias.`` per class alias, their frozen word embeddings and the alias-averaging
        matrix, cached per class-name tuple."""
        import torch

        key = tuple(names)
        if key not in self._prompts:
            m = self.ctx.shape[0]
            placeholder = " ".join(["x"] * m)
            if int(self.model.tokenize([placeholder]).mask.sum()) - _special_count(self.model) != m:
                raise RsvlmError(f"{self.model.name}: its tokenizer does not read {m} placeholder tokens as {m}")
            flat, average = aliases(names)
            tokens = self.model.tokenize([f"{placeholder} {a}." for a in flat])
            with torch.no_grad():
                words = self.model.word_embeddings(tokens.ids).detach()
            self._prompts[key] = (tokens, words, average)
        return self._prompts[key]

    def class_features(self, names: Sequence[str], ctx: torch.Tensor) -> torch.Tensor:
        """``ctx`` (M, W) → (C, D) prompt features; per-image ``ctx`` (B, M, W) → (B, C, D)."""
        import torch

        from rsvlm.models.protocols import TextTokens

        tokens, words, average = self.prompts(names)
        s, m = tokens.start, self.ctx.shape[0]
        c = len(tokens.ids)
        if ctx.ndim == 2:
            rows, ids, mask, b = ctx.expand(c, -1, -1), tokens.ids, tokens.mask, 0
        else:
            b = ctx.shape[0]
            rows = ctx[:, None].expand(-1, c, -1, -1).reshape(b * c, m, -1)
            words = words.repeat(b, 1, 1)
            ids, mask = tokens.ids.repeat(b, 1), tokens.mask.repeat(b, 1)
        embedded = torch.cat([words[:, :s], rows.to(words.dtype), words[:, s + m :]], dim=1)
        out = self.model.encode_word_embeddings(embedded, TextTokens(ids, mask, s))
        out = average @ (out if b == 0 else out.reshape(b, c, -1))
        return torch.nn.functional.normalize(out, dim=-1)

    def image_context(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) image features → (B, M, W) conditioned context ``ctx + π(x)``."""
        assert self.meta is not None
        shift: torch.Tensor = self.meta(features)
        return self.ctx[None] + shift[:, None, :]

    def batch_logits(self, features: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """(B, C) logits with gradients (training)."""
        if self.meta is None:
            return self.logit_scale * features @ self.class_features(names, self.ctx).T
        text = self.class_features(names, self.image_context(features))
        return self.logit_scale * (features[:, None, :] * text).sum(-1)

    def logits(self, features: F32, classes: ClassSet) -> F32:
        import torch

        names = list(classes.names)
        feats = torch.from_numpy(np.ascontiguousarray(features, np.float32))
        with torch.no_grad():
            if self.meta is None:
                key = tuple(names)
                if key not in self._features:
                    self._features[key] = self.class_features(names, self.ctx)
                out = self.logit_scale * feats @ self._features[key].T
            else:
                chunk = max(1, TEXT_BATCH // max(1, len(names)))
                out = torch.cat(
                    [self.batch_logits(feats[i : i + chunk], names) for i in range(0, len(feats), chunk)]
                    or [feats.new_zeros(0, len(names))]
                )
        result: F32 = out.numpy().astype(np.float32)
        return result

    def state(self) -> dict[str, npt.NDArray[Any]]:
        out = {"ctx": self.ctx.detach().numpy().copy()}
        if self.meta is not None:
            out.update({f"meta.{k}": v.detach().numpy().copy() for k, v in self.meta.state_dict().items()})
        return out

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        return base


def fit_prompts(support: Support, options: Options, seed: int, method: str) -> PromptLearner:
    import torch

    model = tunable(support.model, method)
    generator = torch_seed(seed)
    ctx = torch.nn.Parameter(init_context(model, str(options["init"]), int(options["n_ctx"]), generator))
    meta = meta_net(support.features.shape[1], ctx.shape[1]) if options["conditional"] else None
    learner = PromptLearner(model, ctx, meta, support.logit_scale)
    feats, labels = torch.from_numpy(support.features), torch.from_numpy(support.labels)
    names = list(support.classes.names)
    epochs = check_epochs(int(options["epochs"])) or shot_epochs(support.shots)
    size = int(options["batch_size"])
    per_epoch = -(-len(labels) // max(1, size))
    params = [ctx, *(meta.parameters() if meta is not None else [])]
    warmup = per_epoch if epochs > 1 else 0
    opt, sched = optimiser(params, str(options["optimizer"]), float(options["lr"]), 5e-4, epochs * per_epoch, warmup)
    with frozen(model.network):
        for _ in range(epochs):
            for idx in batches(len(labels), size, generator):
                loss = torch.nn.functional.cross_entropy(learner.batch_logits(feats[idx], names), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    ctx.requires_grad_(False)
    if meta is not None:
        meta.requires_grad_(False)
    return learner


def restore_prompts(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base, method: str) -> PromptLearner:
    import torch

    model = tunable(base.model, method)
    if "ctx" not in state or np.asarray(state["ctx"]).ndim != 2:
        raise RsvlmError(f"{method} adapter: its tensors hold no (M, W) context")
    ctx = torch.from_numpy(np.array(state["ctx"], np.float32))
    width = int(model.word_embeddings(model.tokenize(["x"]).ids).shape[-1])
    if ctx.shape[1] != width:
        raise RsvlmError(f"{method} adapter: context width {ctx.shape[1]} does not fit {model.name} ({width})")
    meta = None
    if options["conditional"]:
        missing = [k for k in META_KEYS if k not in state]
        if missing:
            raise RsvlmError(f"{method} adapter: conditional, but its tensors lack {missing[0]}")
        meta = meta_net(base.classes.text_weights.shape[1], width)
        meta.load_state_dict({k[len("meta.") :]: torch.from_numpy(np.array(state[k], np.float32)) for k in META_KEYS})
        meta.requires_grad_(False)
    return PromptLearner(model, ctx, meta, base.logit_scale)


OPTIONS: dict[str, tuple[str, Any]] = {
    "init": ("str", "a satellite photo of a"),
    "n_ctx": ("int", 16),
    "conditional": ("bool", False),
    "epochs": ("int", 0),
    "batch_size": ("int", 128),
    "optimizer": ("adamw|sgd", "adamw"),
    "lr": ("float", 0.002),
}
