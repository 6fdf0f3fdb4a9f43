"""``tip-adapter-f``: Tip-Adapter with the cache keys fine-tuned.

Zhang et al., "Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification", ECCV 2022, section 3.3:
the keys start as the support embeddings and become learnable; the values (one-hot labels), the text classifier
and both towers stay frozen. Trained with cross-entropy on the blended logits by AdamW (lr 1e-3, ε 1e-4, cosine
schedule, 20 epochs, batch 256), as the paper. The paper trains on augmented views of the images; here the keys
are tuned on the cached embeddings of the support images (no augmentation), which is what lets it run on
precomputed embeddings in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import Base, Method, Options, Support, torch_seed
from rsvlm.adapt.methods._cache import CacheModel, chosen_alpha_beta, one_hot, restore_cache


def fit(support: Support, options: Options, seed: int) -> CacheModel:
    import torch

    generator = torch_seed(seed)
    alpha, beta = chosen_alpha_beta(support, options)
    n_classes = len(support.classes.names)
    scale = support.logit_scale
    feats = torch.from_numpy(support.features)
    labels = torch.from_numpy(support.labels)
    values = torch.from_numpy(one_hot(support.labels, n_classes))
    text = torch.from_numpy(support.classes.text_weights)
    keys = torch.nn.Parameter(feats.clone())
    epochs, batch = int(options["epochs"]), int(options["batch_size"])
    steps = epochs * max(1, -(-len(labels) // batch))
    opt = torch.optim.AdamW([keys], lr=float(options["lr"]), eps=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch):
            idx = order[start : start + batch]
            f = feats[idx]
            affinity = torch.exp(-beta * (1.0 - f @ keys.T))
            logits = scale * f @ text.T + alpha * (scale / 100.0) * affinity @ values
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    tuned = keys.detach().numpy().astype(np.float32)
    return CacheModel(METHOD.name, tuned, values.numpy(), alpha, beta, list(support.classes.names), support.logit_scale)


def restore(state: Mapping[str, npt.NDArray[Any]], options: Options, base: Base) -> CacheModel:
    return restore_cache(METHOD.name, state, list(base.classes.names), base.logit_scale)


METHOD = Method(
    name="tip-adapter-f",
    title="Tip-Adapter-F (fine-tuned cache keys)",
    paper="Zhang et al., Tip-Adapter: Training-free Adaption of CLIP for Few-shot Classification, ECCV 2022",
    fit=fit,
    restore=restore,
    options={
        "alpha": ("float", 1.0),
        "beta": ("float", 5.5),
        "search": ("bool", True),
        "epochs": ("int", 20),
        "lr": ("float", 1e-3),
        "batch_size": ("int", 256),
    },
)
