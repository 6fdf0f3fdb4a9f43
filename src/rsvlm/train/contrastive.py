"""Contrastive (CLIP/InfoNCE) training of rsvlm's lite model: locked-tower (LiT), partial or full tuning.

Design for two CPU cores: the frozen prefix of each tower runs once per image view / caption and is
cached in the output folder; each step then runs only the trainable suffixes. The same command scales
out under ``torchrun``: every process takes a slice of the global batch, embeddings are all-gathered
with gradients so the loss sees the whole batch, and gradients are averaged across processes.

Run folder: ``config.json`` (resolved config + fingerprint), ``cache/`` (prefix features),
``metrics.jsonl`` (one line per epoch), ``last/`` (resumable checkpoint), ``best/`` (best validation
mR, a loadable model folder). An interrupted run resumes from ``last/`` when restarted with the same config.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as fn

from rsvlm.digests import json_digest as digest
from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.models.lite import LiteCLIP, LiteConfig, save_lite, to_lite_pixels
from rsvlm.tasks.metrics import retrieval_recalls
from rsvlm.train.augment import augment
from rsvlm.train.config import TrainConfig
from rsvlm.train.data import ImageItem, PairSet, build_pairs

Log = Callable[[str], None]


def _dist() -> tuple[int, int]:
    """(rank, world size); initialises the gloo/NCCL process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


# -- frozen-prefix caches -------------------------------------------------------------------------------
def image_prefix_cache(
    net: LiteCLIP, items: list[ImageItem], views: int, seed: int, path: Path, log: Log, batch: int = 64
) -> torch.Tensor:
    """(n_items, views, …) float16 prefix features; view 0 is the clean image. Saved per chunk, resumable."""
    from safetensors.torch import load_file, save_file

    from rsvlm.data.raster import read_image

    path.mkdir(parents=True, exist_ok=True)
    parts: list[torch.Tensor] = []
    size = net.config.image_size
    started = time.time()
    for c, (start, end) in enumerate(_chunks(len(items), 512)):
        part_path = path / f"part{c:05d}.safetensors"
        if part_path.is_file():
            parts.append(load_file(str(part_path))["x"])
            continue
        rng = np.random.default_rng([seed, c])
        clean = [to_lite_pixels(read_image(it.path), size, "rsvlm-lite") for it in items[start:end]]
        chunk_views = []
        for v in range(views):
            pix = torch.stack(clean if v == 0 else [augment(p, rng) for p in clean])
            with torch.inference_mode():
                feats = [
                    net.image_prefix(pix[a:b].contiguous(memory_format=torch.channels_last))
                    for a, b in _chunks(len(pix), batch)
                ]
            chunk_views.append(torch.cat(feats).to(torch.float16))
        tensor = torch.stack(chunk_views, dim=1).contiguous()
        save_file({"x": tensor}, str(part_path))
        parts.append(tensor)
        log(f"image prefix cache: {end}/{len(items)} images x {views} views ({time.time() - started:.0f}s)")
    return torch.cat(parts)


def text_prefix_cache(net: LiteCLIP, texts: list[str], path: Path, log: Log, batch: int = 256) -> dict[str, Any]:
    """Prefix hidden states of every caption, packed without padding: flat tokens + offsets + lengths."""
    from safetensors.torch import load_file, save_file

    if path.is_file():
        data = load_file(str(path))
        return {"tokens": data["tokens"], "offsets": data["offsets"], "lengths": data["lengths"]}
    flat: list[torch.Tensor] = []
    lengths: list[int] = []
    started = time.time()
    for a, b in _chunks(len(texts), batch):
        enc = net.tokenize(texts[a:b])
        with torch.inference_mode():
            hidden = net.text_prefix(**enc)
        for row, mask in zip(hidden, enc["attention_mask"], strict=True):
            n = int(mask.sum())
            flat.append(row[:n].to(torch.float16))
            lengths.append(n)
        if (a // batch) % 40 == 0:
            log(f"text prefix cache: {b}/{len(texts)} captions ({time.time() - started:.0f}s)")
    tokens = torch.cat(flat).contiguous()
    lens = torch.tensor(lengths, dtype=torch.int64)
    offsets = torch.cumsum(lens, 0) - lens
    save_file({"tokens": tokens, "offsets": offsets, "lengths": lens}, str(path))
    return {"tokens": tokens, "offsets": offsets, "lengths": lens}


def _text_batch(cache: dict[str, Any], ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = cache["lengths"][ids]
    width = int(lengths.max())
    dim = cache["tokens"].shape[1]
    hidden = torch.zeros(len(ids), width, dim)
    mask = torch.zeros(len(ids), width, dtype=torch.long)
    for row, (off, n) in enumerate(zip(cache["offsets"][ids].tolist(), lengths.tolist(), strict=True)):
        hidden[row, :n] = cache["tokens"][off : off + n].float()
        mask[row, :n] = 1
    return hidden, mask


# -- loss -------------------------------------------------------------------------------------------------
def clip_loss(
    image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE over the (gathered) batch. Pairs in the same ``group`` (the same image, or the
    same scene-prompt class) are not treated as negatives of each other."""
    logits = logit_scale.exp().clamp(max=100.0) * image @ text.T
    target = torch.arange(len(image))
    if groups is not None:
        same = (groups[:, None] == groups[None, :]) & ~torch.eye(len(groups), dtype=torch.bool)
        logits = logits.masked_fill(same, float("-inf"))
    return (fn.cross_entropy(logits, target) + fn.cross_entropy(logits.T, target)) / 2


def _gather(x: torch.Tensor, world: int) -> torch.Tensor:
    if world == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x))


# -- the run ------------------------------------------------------------------------------------------------
class Run:
    def __init__(self, config: TrainConfig, log: Log) -> None:
        self.config = config
        self.rank, self.world = _dist()
        self.log: Log = log if self.rank == 0 else (lambda _msg: None)
        self.out = Path(config.output)
        torch.manual_seed(config.optim.seed)
        self.net = LiteCLIP(LiteConfig.from_dict(config.model))
        self.net.image_net.to(memory_format=torch.channels_last)
        self.pairs: PairSet = build_pairs(config.data, config.optim.seed)

    def prepare(self) -> None:
        cfg = self.config
        fp = cfg.fingerprint()
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            previous = self.out / "config.json"
            if previous.is_file() and json.loads(previous.read_text()).get("fingerprint") != fp:
                raise RsvlmError(f"{self.out}: holds a run with a different config; choose another output folder")
            atomic_write_json(previous, {"fingerprint": fp, **asdict(cfg)}, default=str)
        p = self.pairs
        self.log(
            f"{len(p.train)} training images ({sum(len(i.captions) for i in p.train)} captions, "
            f"{sum(i.label is not None for i in p.train)} labelled), {len(p.val)} validation, {p.excluded} excluded"
        )
        cache = Path(cfg.cache_dir) if cfg.cache_dir else self.out / "cache"
        m = self.net.config
        image_key = digest(
            [m.image_size, m.image_trainable_blocks, cfg.data.views, cfg.optim.seed, [str(it.path) for it in p.train]]
        )
        self.train_img = image_prefix_cache(
            self.net, p.train, cfg.data.views, cfg.optim.seed, cache / f"train-images-{image_key}", self.log
        )
        val_key = digest([m.image_size, m.image_trainable_blocks, [str(it.path) for it in p.val]])
        self.val_img = (
            image_prefix_cache(self.net, p.val, 1, cfg.optim.seed, cache / f"val-images-{val_key}", self.log)
            if p.val
            else None
        )
        # captions: every distinct string once (RSICD repeats many), scene prompts per template and class
        texts: list[str] = sorted({c for it in p.train + p.val for c in it.captions})
        classes = sorted({it.label for it in p.train if it.label is not None})
        prompts = [t.format(c) for ts in p.templates.values() for t in ts for c in classes]
        texts = sorted(set(texts) | set(prompts))
        self.text_index = {t: i for i, t in enumerate(texts)}
        text_key = digest([m.text_trainable_layers, m.text_max_length, texts])
        self.text_cache = text_prefix_cache(self.net, texts, cache / f"texts-{text_key}.safetensors", self.log)
        self.class_ids = {c: i for i, c in enumerate(classes)}
        self.prompt_ids = {
            c: [self.text_index[t.format(c)] for ts in p.templates.values() for t in ts] for c in classes
        }
        self.caption_ids = [[self.text_index[c] for c in it.captions] for it in p.train]

    # pairs for one step: (image row, view, text id, group id)
    def _sample(self, rng: np.random.Generator, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        views, text_ids, groups = [], [], []
        share = self.config.optim.scene_caption_share
        for r in rows:
            item = self.pairs.train[r]
            views.append(int(rng.integers(0, self.config.data.views)))
            use_prompt = item.label is not None and (not item.captions or rng.random() < share)
            if use_prompt and item.label is not None:
                text_ids.append(int(rng.choice(self.prompt_ids[item.label])))
                groups.append(-1 - self.class_ids[item.label])  # same class ⇒ not a negative
            else:
                text_ids.append(int(rng.choice(self.caption_ids[r])))
                groups.append(text_ids[-1])  # the same sentence for two images is not a negative
        return np.array(views), np.array(text_ids), np.array(groups)

    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.config.optim
        heads = [self.net.image_proj.weight, self.net.text_proj.weight, self.net.logit_scale]
        head_ids = {id(p) for p in heads}
        tower = [p for p in self.net.trainable_modules().parameters() if id(p) not in head_ids]
        decay = [p for p in tower if p.ndim > 1]
        no_decay = [p for p in tower if p.ndim <= 1]
        groups = [
            {"params": heads[:2], "lr": o.lr, "weight_decay": o.weight_decay},
            {"params": [heads[2]], "lr": o.lr, "weight_decay": 0.0},
            {"params": decay, "lr": o.tower_lr, "weight_decay": o.weight_decay},
            {"params": no_decay, "lr": o.tower_lr, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW([g for g in groups if g["params"]])

    def validate(self) -> dict[str, float]:
        if self.val_img is None or not self.pairs.val:
            return {}
        self.net.eval()
        with torch.inference_mode():
            img = torch.cat(
                [self.net.image_suffix(self.val_img[a:b, 0].float()) for a, b in _chunks(len(self.val_img), 256)]
            )
            ids = [self.text_index[c] for it in self.pairs.val for c in it.captions]
            owner = np.array([i for i, it in enumerate(self.pairs.val) for _ in it.captions])
            txt = []
            for a, b in _chunks(len(ids), 512):
                hidden, mask = _text_batch(self.text_cache, np.array(ids[a:b]))
                txt.append(self.net.text_suffix(hidden, mask))
            sims = (img @ torch.cat(txt).T).numpy()
        return retrieval_recalls(sims, owner)

    def fit(self) -> dict[str, Any]:
        o = self.config.optim
        opt = self._optimizer()
        n = len(self.pairs.train)
        steps_per_epoch = max(1, n // o.batch_size)
        total = o.epochs * steps_per_epoch if o.max_steps is None else min(o.max_steps, o.epochs * steps_per_epoch)
        base_lrs = [g["lr"] for g in opt.param_groups]
        start_epoch, step, best = self._resume(opt)
        metrics_path = self.out / "metrics.jsonl"
        history: list[dict[str, Any]] = []
        local = o.batch_size // self.world
        for epoch in range(start_epoch, o.epochs):
            rng = np.random.default_rng([o.seed, epoch])
            torch.manual_seed(o.seed * 100_003 + epoch)  # dropout masks: reproducible after a resume
            order = rng.permutation(n)
            self.net.train()
            losses = []
            started = time.time()
            for s in range(steps_per_epoch):
                if step >= total:
                    break
                rows = order[s * o.batch_size : (s + 1) * o.batch_size]
                views, text_ids, groups = self._sample(rng, rows)
                mine = slice(self.rank * local, (self.rank + 1) * local)
                warm = min(1.0, (step + 1) / max(1, o.warmup_steps))
                cosine = 0.5 * (1 + math.cos(math.pi * step / max(1, total)))
                for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                    g["lr"] = lr * warm * cosine
                img_in = self.train_img[torch.from_numpy(rows[mine]), torch.from_numpy(views[mine])].float()
                hidden, mask = _text_batch(self.text_cache, text_ids[mine])
                img = _gather(self.net.image_suffix(img_in), self.world)
                txt = _gather(self.net.text_suffix(hidden, mask), self.world)
                loss = clip_loss(img, txt, self.net.logit_scale, torch.from_numpy(groups[: len(img)]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.world > 1:
                    for p in self.net.parameters():
                        if p.grad is not None:
                            torch.distributed.all_reduce(p.grad)
                            p.grad /= self.world
                opt.step()
                losses.append(loss.item())
                step += 1
            val = self.validate()
            record = {
                "epoch": epoch + 1,
                "step": step,
                "loss": float(np.mean(losses)) if losses else None,
                "seconds": round(time.time() - started, 1),
                "logit_scale": self.net.logit_scale.exp().item(),
                **val,
            }
            history.append(record)
            if self.rank == 0:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                score = val.get("mR", -float(record["loss"] or 0))
                if score > best:
                    best = score
                    save_lite(self.net, self.out / "best", {"epoch": epoch + 1, "val": val})
                self._checkpoint(opt, epoch + 1, step, best)
                self.log(json.dumps(record))
            if step >= total:
                break
        if self.rank == 0 and not (self.out / "best" / "model.safetensors").is_file():
            save_lite(self.net, self.out / "best", {"epoch": start_epoch, "val": {}})
        return {"history": history, "best": best, "output": str(self.out)}

    def _checkpoint(self, opt: torch.optim.Optimizer, epoch: int, step: int, best: float) -> None:
        last = self.out / "last"
        tmp = self.out / "last.tmp"
        save_lite(self.net, tmp)
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"epoch": epoch, "step": step, "best": best}))
        if last.exists():
            for f in last.iterdir():
                f.unlink()
            last.rmdir()
        tmp.rename(last)

    def _resume(self, opt: torch.optim.Optimizer) -> tuple[int, int, float]:
        last = self.out / "last"
        if not (last / "state.json").is_file():
            return 0, 0, -float("inf")
        from safetensors.torch import load_file

        state = json.loads((last / "state.json").read_text())
        self.net.load_state_dict(load_file(str(last / "model.safetensors")), strict=False)
        opt.load_state_dict(torch.load(last / "optimizer.pt", weights_only=True))
        self.log(f"resuming after epoch {state['epoch']} (step {state['step']})")
        return int(state["epoch"]), int(state["step"]), float(state["best"])


def train_contrastive(config: TrainConfig, log: Log = print) -> dict[str, Any]:
    """Train (or resume) a lite contrastive model as ``config`` says; returns the per-epoch history."""
    run = Run(config, log)
    run.prepare()
    result = run.fit()
    if run.world > 1:
        torch.distributed.barrier()
    return result
