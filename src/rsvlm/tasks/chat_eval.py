"""Evaluate a chat model on a chat task: load → prompt → predict → score → aggregate, resumable.

The runner knows nothing of a task's meaning (that is the task's protocol) nor of a model's internals
(that is the ``ChatModel`` protocol). It streams samples through the model in batches, logs each
finished prediction with the image size and file hash it refers to, and scores everything at the end,
so a rerun after a crash skips finished samples and produces the same metrics as an uninterrupted run.
The run folder is locked while the runner works in it (``fileio.run_lock``): a second run on the same
``--out`` is refused at once instead of computing and appending every prediction a second time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json, run_lock
from rsvlm.tasks.predictions import PredictionLog
from rsvlm.version import __version__

if TYPE_CHECKING:
    from rsvlm.data.dataset import Dataset
    from rsvlm.data.sample import Sample
    from rsvlm.models.chat.protocol import ChatModel, GenerationConfig
    from rsvlm.tasks.chat.base import ChatTask

Progress = Callable[[int, int], None]
"""Called with (finished, total) after each batch."""


def annotations_digest(samples: list[Sample]) -> str:
    """Digest of what the annotations say (ids, questions, answers, captions, labels, boxes), so a run
    records exactly which ground truth it was scored against."""
    h = hashlib.sha256()
    for s in samples:
        boxes = None if s.boxes is None else [s.boxes.xyxy.round(3).tolist(), list(s.boxes.labels)]
        item = [s.id, s.split, s.label, s.question, s.answer, s.question_type, list(s.captions), boxes]
        h.update(json.dumps(item, default=str).encode())
    return h.hexdigest()[:16]


def select_samples(
    task: ChatTask, dataset: Dataset, limit: int | None = None, subset: set[str] | None = None
) -> list[tuple[int, Sample]]:
    """(dataset index, sample) of every sample the task can score, in dataset order; ``subset`` keeps only
    samples whose image file name or sample id it lists (e.g. the images an instruction set held out)."""
    chosen = [
        (i, s)
        for i, s in enumerate(dataset.records)
        if s.image_path is not None
        and task.accepts(s)
        and (subset is None or s.image_path.name in subset or s.id in subset)
    ]
    if not chosen:
        raise RsvlmError(f"{dataset.root}: no samples usable for the {task.name} task; check --data/--format/--split")
    ids = [s.id for _, s in chosen]
    if len(set(ids)) != len(ids):
        raise RsvlmError(f"{dataset.root}: sample ids are not unique, so predictions cannot be resumed by id")
    return chosen[:limit] if limit is not None else chosen


def evaluate_chat(
    model: ChatModel,
    task: ChatTask,
    dataset: Dataset,
    out: str | Path,
    *,
    limit: int | None = None,
    subset: set[str] | None = None,
    config: GenerationConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``task`` on ``dataset`` with ``model``; predictions and metrics land in ``out``."""
    from rsvlm.features.cache import file_hash
    from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig

    config = config or GenerationConfig()
    chosen = select_samples(task, dataset, limit, subset)
    samples = [s for _, s in chosen]
    header = {
        "rsvlm": __version__,
        "model": {"name": model.name, "family": model.family, "box_format": model.box_format},
        "task": task.name,
        "protocol": {"id": task.protocol_id, **task.protocol()},
        "data": {
            "path": str(dataset.root),
            "format": dataset.format_name,
            "splits": sorted({str(s.split) for s in samples if s.split is not None}),
            "samples": len(samples),
            "annotations_sha256": annotations_digest(samples),
        },
        "generation": {"max_new_tokens": config.max_new_tokens, "decoding": "greedy"},
    }
    with run_lock(out):
        log = PredictionLog(out, header)
        todo = [(i, s) for i, s in chosen if s.id not in log]
        if progress:
            progress(len(samples) - len(todo), len(samples))
        for start in range(0, len(todo), config.batch_size):
            batch = [(dataset[i], s) for i, s in todo[start : start + config.batch_size]]
            requests = [ChatRequest.ask(loaded.image, task.prompt(s, model.family)) for loaded, s in batch]
            answers = model.generate(requests, config)
            log.append(
                {
                    "id": s.id,
                    "prediction": answer,
                    "width": loaded.image.width if loaded.image is not None else None,
                    "height": loaded.image.height if loaded.image is not None else None,
                    "image_hash": file_hash(s.image_path) if s.image_path is not None else None,
                }
                for (loaded, s), answer in zip(batch, answers, strict=True)
            )
            if progress:
                progress(len(samples) - len(todo) + start + len(batch), len(samples))
        return score_run(task, samples, log, header)


def score_run(task: ChatTask, samples: list[Sample], log: PredictionLog, header: dict[str, Any]) -> dict[str, Any]:
    """Aggregate the finished predictions; the image size each prediction refers to travels in ``meta``."""
    scored = []
    predictions = []
    for s in samples:
        record = log.records[s.id]
        scored.append(replace(s, meta={**s.meta, "width": record["width"], "height": record["height"]}))
        predictions.append(str(record["prediction"]))
    metrics = task.score(scored, predictions, str(header["model"]["box_format"]))
    report = {**header, "n": len(samples), "metrics": metrics, "output": str(log.folder)}
    atomic_write_json(log.folder / "metrics.json", report, sort_keys=True, default=str)
    return report
