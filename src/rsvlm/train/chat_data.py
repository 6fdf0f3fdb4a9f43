"""Chat-training data: LLaVA-JSON conversations encoded once, frozen vision features cached once.

Every conversation is tokenised up front (Gemma turns, image slots, answer mask); every distinct image
goes through the frozen vision tower once and its token grid is stored as float16 safetensors chunks
under a key of exactly what determines it (vision weights, image list), so an interrupted cache resumes
and runs on the same data share it. A training batch is then only an index into those tensors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rsvlm.data.sample import Sample
from rsvlm.digests import json_digest as digest
from rsvlm.errors import RsvlmError
from rsvlm.models.chat.lite_chat import LiteChatNet
from rsvlm.models.chat.lite_prompt import encode_turns

Log = Callable[[str], None]
CHUNK = 256


@dataclass(frozen=True)
class Example:
    ids: list[int]
    image_slots: list[bool]
    answer: list[bool]
    image: int | None
    """Row of the image in the feature cache, or None for a text-only conversation."""


def select_records(records: Sequence[Sample], max_samples: int | None, max_per_task: Mapping[str, int]) -> list[Sample]:
    """The first ``max_per_task[task]`` records of each named task (others all), then the first ``max_samples``.

    The instruction builder writes a shuffled file, so a prefix per task is a seeded random subset; capping
    the plentiful captions is how a short run still sees enough VQA, counting and grounding.
    """
    seen: dict[str, int] = {}
    kept = []
    for record in records:
        task = str(record.meta.get("task", ""))
        seen[task] = seen.get(task, 0) + 1
        if task not in max_per_task or seen[task] <= max_per_task[task]:
            kept.append(record)
    return kept[:max_samples]


def encode_examples(
    net: LiteChatNet,
    path: str,
    max_samples: int | None,
    max_tokens: int,
    max_per_task: Mapping[str, int] | None = None,
) -> tuple[list[Example], list[Path]]:
    """Encoded conversations (too long or answer-less ones skipped) and the distinct images they use."""
    from rsvlm.data.registry import open_dataset

    every = open_dataset(path, format="llava").records
    tasks = {str(r.meta.get("task", "")) for r in every}
    unknown = sorted(set(max_per_task or {}) - tasks)
    if unknown:  # a misspelt task name would otherwise cap nothing, silently
        raise RsvlmError(f"data.max_per_task: no {', '.join(unknown)} conversations in {path}; tasks: {sorted(tasks)}")
    records = select_records(every, max_samples, max_per_task or {})
    images: dict[Path, int] = {}
    examples = []
    for sample in records:
        n_images = 0 if sample.image_path is None else 1
        enc = encode_turns(net.tokenizer, sample.conversation, n_images, net.tokens_per_image, generation_prompt=False)
        if len(enc.ids) > max_tokens or not any(enc.answer[1:]):
            continue
        row = None if sample.image_path is None else images.setdefault(sample.image_path, len(images))
        examples.append(Example(enc.ids, enc.image_slots, enc.answer, row))
    return examples, list(images)


def vision_cache(net: LiteChatNet, paths: Sequence[Path], folder: Path, log: Log, batch: int = 32) -> torch.Tensor:
    """``(images, cells, 1280)`` float16 features of the frozen tower; saved per chunk, resumable."""
    from safetensors.torch import load_file, save_file

    from rsvlm.data.raster import read_image

    vision = net.vision
    key = digest([net.config.vision, vision.image_size, [str(p) for p in paths]])
    folder = folder / f"vision-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[torch.Tensor] = []
    started = time.time()
    for c, start in enumerate(range(0, len(paths), CHUNK)):
        part = folder / f"part{c:05d}.safetensors"
        if part.is_file():
            parts.append(load_file(str(part))["x"])
            continue
        chunk = paths[start : start + CHUNK]
        feats = []
        for a in range(0, len(chunk), batch):
            pixels = torch.stack([vision.pixels(read_image(p), "rsvlm-lite-chat") for p in chunk[a : a + batch]])
            with torch.inference_mode():
                feats.append(vision(pixels.to(net.device)).to(torch.float16).cpu())
        tensor = torch.cat(feats).contiguous()
        save_file({"x": tensor}, str(part))
        parts.append(tensor)
        log(f"vision cache: {start + len(chunk)}/{len(paths)} images ({time.time() - started:.0f}s)")
    if not parts:
        return torch.zeros(0, 1, 1, dtype=torch.float16)
    return torch.cat(parts)


def collate(examples: Sequence[Example], features: torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch (padding is masked out of attention and loss) with the rows' image features."""
    width = max(len(e.ids) for e in examples)

    def pad(values: list[int] | list[bool], fill: int | bool) -> list[int | bool]:
        return [*values, *[fill] * (width - len(values))]

    batch = {
        "input_ids": torch.tensor([pad(e.ids, pad_id) for e in examples], dtype=torch.long),
        "attention_mask": torch.tensor([pad([1] * len(e.ids), 0) for e in examples], dtype=torch.long),
        "image_slots": torch.tensor([pad(e.image_slots, False) for e in examples], dtype=torch.bool),
        "answer": torch.tensor([pad(e.answer, False) for e in examples], dtype=torch.bool),
    }
    rows = [e.image for e in examples if e.image is not None]
    if rows:
        batch["features"] = features[torch.tensor(rows)].float()
    return batch


def answer_vocab(examples: Sequence[Example], extra: set[int]) -> torch.Tensor:
    """Every token id the answers use, plus ``extra`` (stop tokens): the output rows training scores."""
    ids = {t for e in examples for t, a in zip(e.ids, e.answer, strict=True) if a} | extra
    return torch.tensor(sorted(ids), dtype=torch.long)
