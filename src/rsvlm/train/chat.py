"""Instruction tuning of rsvlm's lite chat model: the alignment layer (+ optional LoRA) on LLaVA JSON.

The vision tower and the LLM are frozen, so each distinct image is encoded once (``chat_data``) and a
step runs only the alignment layer and the LLM. Steps read a seeded stream of per-epoch permutations, and
nothing in a step is random, so a run resumed from ``last/`` ends with the same weights as one that never
stopped. Runs on CUDA when present, unchanged.

Run folder: ``config.json`` (resolved config + fingerprint), ``cache/`` (vision features),
``metrics.jsonl`` (one line per checkpoint), ``last/`` (a loadable model + optimizer state + step,
written every ``checkpoint_every`` steps), ``final/`` (the finished model; ``load_chat`` reads it).

A long CPU run can be taken in slices: ``until_step=N`` stops after step N of the unchanged schedule and
exports ``step-N/`` (loadable), and a later call without it goes on to the end with the same weights as
an unbroken run. So a model shipped from step N is reproduced by one command.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.models.chat.lite_chat import LiteChatNet, save_lite_chat
from rsvlm.models.chat.lite_prompt import stop_ids
from rsvlm.train.chat_config import ChatTrainConfig
from rsvlm.train.chat_data import Example, answer_vocab, collate, encode_examples, vision_cache

Log = Callable[[str], None]


def save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    """AdamW moments and step counts as safetensors (``<param index>.<name>``)."""
    from safetensors.torch import save_file

    state = opt.state_dict()["state"]
    save_file({f"{i}.{k}": v.contiguous() for i, s in state.items() for k, v in s.items()}, str(path))


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors.torch import load_file

    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(path)).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


class ChatRun:
    def __init__(self, config: ChatTrainConfig, log: Log) -> None:
        self.config = config
        self.log = log
        self.out = Path(config.output)
        torch.manual_seed(config.optim.seed)  # the alignment layer's and LoRA's initial weights
        self.net = LiteChatNet(config.model)
        self.net.to("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = self.net.tokenizer
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self._orders: dict[int, np.ndarray] = {}

    def prepare(self) -> None:
        cfg = self.config
        fp = cfg.fingerprint()
        self.out.mkdir(parents=True, exist_ok=True)
        previous = self.out / "config.json"
        if previous.is_file() and json.loads(previous.read_text()).get("fingerprint") != fp:
            raise RsvlmError(f"{self.out}: holds a run with a different config; choose another output folder")
        atomic_write_json(previous, {"fingerprint": fp, **asdict(cfg)}, default=str)
        d = cfg.data
        self.examples, images = encode_examples(self.net, d.train, d.max_samples, d.max_tokens, d.max_per_task)
        if not self.examples:
            raise RsvlmError(f"{d.train}: no usable conversations (all longer than max_tokens={d.max_tokens}?)")
        self.log(f"{len(self.examples)} conversations, {len(images)} images")
        cache = Path(cfg.cache_dir) if cfg.cache_dir else self.out / "cache"
        self.features = vision_cache(self.net, images, cache, self.log)
        if cfg.optim.restrict_vocab:
            self.net.set_vocab_subset(answer_vocab(self.examples, stop_ids(self.net.tokenizer)))
        if cfg.init is not None:
            self._start_from(Path(cfg.init))

    def _start_from(self, folder: Path) -> None:
        """Seed a second stage with ``folder``'s trained tensors; its output vocabulary is kept (joined with
        this stage's answers), so a stage trained on fewer captions can still say what the first one could."""
        from safetensors.torch import load_file

        from rsvlm.models.chat.lite_chat import read_lite_chat_config

        if read_lite_chat_config(folder) != self.config.model:
            raise RsvlmError(f"init {folder}: its config.json model section differs from this config's model")
        state = load_file(str(folder / "model.safetensors"))
        own, theirs = self.net.vocab_subset, state.get("vocab_subset")
        self.net.load_trainable({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, str(folder))
        if own is not None and theirs is not None:
            self.net.set_vocab_subset(torch.cat([own.cpu(), theirs]))
        else:
            self.net.set_vocab_subset(None)
        self.log(f"starting from {folder}")

    def optimizer(self) -> torch.optim.Optimizer:
        """AdamW with the alignment layer and LoRA at their own learning rates."""
        o = self.config.optim
        params = self.net.trainable_parameters()
        groups = [
            {"params": [p for k, p in params.items() if k.startswith("alignment.")], "lr": o.lr},
            {"params": [p for k, p in params.items() if not k.startswith("alignment.")], "lr": o.lora_lr},
        ]
        return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=o.weight_decay)

    def batch_rows(self, step: int) -> list[int]:
        """Rows of step ``step``: positions ``step·b … (step+1)·b`` of seeded per-epoch permutations."""
        o, n = self.config.optim, len(self.examples)
        rows = []
        for position in range(step * o.batch_size, (step + 1) * o.batch_size):
            epoch, offset = divmod(position, n)
            if epoch not in self._orders:
                self._orders = {epoch: np.random.default_rng([o.seed, epoch]).permutation(n)}
            rows.append(int(self._orders[epoch][offset]))
        return rows

    def batch(self, rows: list[int]) -> dict[str, torch.Tensor]:
        examples: list[Example] = [self.examples[r] for r in rows]
        return {k: v.to(self.net.device) for k, v in collate(examples, self.features, self.pad_id).items()}

    def fit(self, until_step: int | None = None) -> dict[str, Any]:
        o = self.config.optim
        end = o.steps if until_step is None else until_step
        if not 1 <= end <= o.steps:
            raise RsvlmError(f"until_step {end}: must be between 1 and the config's optim.steps ({o.steps})")
        opt = self.optimizer()
        base = [g["lr"] for g in opt.param_groups]
        step = self._resume(opt)
        if step > end:
            raise RsvlmError(
                f"{self.out}: the run is already at step {step}, past until_step {end}; "
                "train a fresh output folder to export an earlier step"
            )
        losses: list[float] = []
        started = time.time()
        self.net.train()
        while step < end:
            warm = min(1.0, (step + 1) / max(1, o.warmup_steps))
            cosine = 0.5 * (1 + math.cos(math.pi * step / o.steps))
            for group, lr in zip(opt.param_groups, base, strict=True):
                group["lr"] = lr * warm * cosine
            loss = self.net.loss(self.batch(self.batch_rows(step)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % o.checkpoint_every == 0 or step == end:
                seconds = time.time() - started
                record = {"step": step, "loss": float(np.mean(losses)), "seconds_per_step": seconds / len(losses)}
                with (self.out / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps(record) + "\n")
                self._checkpoint(opt, step)
                self.log(f"step {step}/{o.steps} loss {record['loss']:.4f} ({record['seconds_per_step']:.2f} s/step)")
                losses, started = [], time.time()
        final = self.out / ("final" if step == o.steps else f"step-{step}")
        shutil.rmtree(final, ignore_errors=True)
        save_lite_chat(self.net, final, {"steps": step, "fingerprint": self.config.fingerprint()})
        return {"steps": step, "output": str(self.out), "final": str(final)}

    def _checkpoint(self, opt: torch.optim.Optimizer, step: int) -> None:
        last, tmp = self.out / "last", self.out / "last.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_lite_chat(self.net, tmp)
        save_optimizer(opt, tmp / "optimizer.safetensors")
        (tmp / "state.json").write_text(json.dumps({"step": step}))
        shutil.rmtree(last, ignore_errors=True)
        tmp.rename(last)

    def _resume(self, opt: torch.optim.Optimizer) -> int:
        from safetensors.torch import load_file

        last = self.out / "last"
        if not (last / "state.json").is_file():
            return 0
        step = int(json.loads((last / "state.json").read_text())["step"])
        self.net.load_trainable(load_file(str(last / "model.safetensors")), str(last / "model.safetensors"))
        load_optimizer(opt, last / "optimizer.safetensors")
        self.log(f"resuming after step {step}")
        return step


def train_chat(config: ChatTrainConfig, log: Log = print, until_step: int | None = None) -> dict[str, Any]:
    """Train (or resume) a lite chat model as ``config`` says, optionally only up to ``until_step``."""
    run = ChatRun(config, log)
    run.prepare()
    return run.fit(until_step)
