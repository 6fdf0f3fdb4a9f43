"""``clip-adapter``: a residual bottleneck MLP on the image features.

Gao, Geng, Zhang, Ma, Fang, Zhang, Li & Qiao, "CLIP-Adapter: Better Vision-Language Models with Feature
Adapters", IJCV 2024 (arXiv 2110.04544). The adapter ``A(f) = ReLU(W₂ ReLU(W₁ f))`` (bottleneck D/4, no bias)
is blended with the frozen feature, ``f' = r·A(f) + (1 − r)·f`` with residual ratio r = 0.2 (the paper's choice
for fine-grained and generic sets), and scored against the frozen text classifier. Only W₁, W₂ train
(cross-entropy, AdamW). Because the text side is untouched, the adapted features score any class by its name,
so base-to-novel generalisation is measured for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Method, Options, Support, torch_seed, zero_shot_logits

if TYPE_CHECKING:
    import torch

    from rsvlm.models.protocols import ContrastiveModel


def _adapt(features: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, ratio: float) -> torch.Tensor:
    import torch

    hidden = torch.relu(torch.relu(features @ w1.T) @ w2.T)
    mixed = ratio * hidden + (1.0 - ratio) * features
    return torch.nn.functional.normalize(mixed, dim=-1)


@dataclass
class ClipAdapter:
    w1: F32
    w2: F32
    ratio: float
    logit_scale: float

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {"w1": self.w1, "w2": self.w2}

    def adapted(self, features: F32) -> F32:
        import torch

        with torch.no_grad():
            out = _adapt(torch.from_numpy(features), torch.from_numpy(self.w1), torch.from_numpy(self.w2), self.ratio)
        result: F32 = out.numpy().astype(np.float32)
        return result

    def logits(self, features: F32, classes: ClassSet) -> F32:
        return zero_shot_logits(self.adapted(features), classes, self.logit_scale)

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        return base


def fit(support: Support, options: Options, seed: int) -> ClipAdapter:
    import torch

    generator = torch_seed(seed)
    dim = support.features.shape[1]
    hidden = max(1, dim // int(options["reduction"]))
    w1 = torch.nn.Parameter(torch.empty(hidden, dim))
    w2 = torch.nn.Parameter(torch.empty(dim, hidden))
    torch.nn.init.kaiming_uniform_(w1, a=5**0.5, generator=generator)
    torch.nn.init.kaiming_uniform_(w2, a=5**0.5, generator=generator)
    feats = torch.from_numpy(support.features)
    labels = torch.from_numpy(support.labels)
    text = torch.from_numpy(support.classes.text_weights)
    ratio, batch, epochs = float(options["ratio"]), int(options["batch_size"]), int(options["epochs"])
    opt = torch.optim.AdamW([w1, w2], lr=float(options["lr"]), weight_decay=float(options["weight_decay"]))
    steps = epochs * max(1, -(-len(labels) // batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch):
            idx = order[start : start + batch]
            logits = support.logit_scale * _adapt(feats[idx], w1, w2, ratio) @ text.T
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return ClipAdapter(w1.detach().numpy().copy(), w2.detach().numpy().copy(), ratio, support.logit_scale)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> ClipAdapter:
    w1, w2 = (np.asarray(state[k], np.float32) for k in ("w1", "w2"))
    return ClipAdapter(w1, w2, float(options["ratio"]), base.logit_scale)


METHOD = Method(
    name="clip-adapter",
    title="CLIP-Adapter (residual feature adapter)",
    paper="Gao et al., CLIP-Adapter: Better Vision-Language Models with Feature Adapters, IJCV 2024",
    fit=fit,
    restore=restore,
    options={
        "ratio": ("float", 0.2),
        "reduction": ("int", 4),
        "epochs": ("int", 60),
        "lr": ("float", 1e-3),
        "weight_decay": ("float", 1e-4),
        "batch_size": ("int", 32),
    },
    generalises=True,
)
