"""What the contrastive kinds share: a task's scene embeddings, an adapter's scores on them, the copy-free part."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.bench.kind import Context, SkippedError, image_paths, open_task_dataset, selected_records, shipped_manifest

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec
    from rsvlm.tasks.embeddings import EmbeddingSet


def scene_embeddings(task: TaskSpec, ctx: Context) -> tuple[EmbeddingSet, list[Path]]:
    """The task's labelled images and its class prompts, embedded (images cached per file in the run).

    Only the classes of the selected images are candidates, so a manifest subset is scored among its own classes.
    """
    from rsvlm.pipeline import class_text_embeddings, embed_images
    from rsvlm.tasks.embeddings import EmbeddingSet
    from rsvlm.tasks.templates import load_templates

    model = ctx.contrastive()
    dataset = open_task_dataset(task, ctx.data_root)
    records = selected_records(task, dataset, ctx.data_root, lambda r: r.label is not None)
    classes = sorted({r.label for r in records if r.label is not None})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[r.label] for r in records if r.label is not None], dtype=np.int64)
    paths = image_paths(records)
    vectors = embed_images(ctx.image_model(), paths, cache_dir=ctx.features, progress=ctx.progress)
    readable = [dataset.class_names[c] for c in classes]
    texts = class_text_embeddings(model, readable, load_templates(str(task.options.get("templates", "rs-default"))))
    splits = [r.split for r in records]
    return EmbeddingSet(vectors, labels, texts, readable, source=str(dataset.root), splits=splits), paths


def adapted_scores(ctx: Context, emb: EmbeddingSet) -> npt.NDArray[np.float32] | None:
    """The adapter's class probabilities of the task's images, columns in the task's class order; None without an
    adapter. An adapter for other classes than the task's skips the task (``SkippedError``), never scores zero-shot."""
    adapter = ctx.adapter
    if adapter is None:
        return None
    column = {**{c: i for i, c in enumerate(adapter.classes)}, **{n: i for i, n in enumerate(adapter.class_set.names)}}
    order = [column.get(name) for name in emb.class_names]
    if None in order or len(set(order)) != len(adapter.classes):
        raise SkippedError(
            f"the adapter's {len(adapter.classes)} classes ({', '.join(adapter.class_set.names[:6])}) are not "
            f"the task's {len(emb.class_names)} ({', '.join(emb.class_names[:6])})"
        )
    probabilities = adapter.probabilities(emb.images)
    return probabilities[:, [int(i) for i in order if i is not None]]


def training_pool(model: str, data_root: Path) -> list[Path] | None:
    """Image files ``model`` trained on, as its declaration enumerates them through the manifests (rsvlm's own
    models); None where its training images are not enumerable here."""
    from rsvlm.bench.leakage import training_data

    declared = training_data(model)
    pool = declared.images if declared is not None else None
    if pool is None:
        return None
    files = {p for p in shipped_manifest(pool.manifest) if str(p).startswith(pool.prefix)}
    for name in pool.minus:
        files -= set(shipped_manifest(name))
    return [data_root / p for p in sorted(files, key=str)]


COPY_THRESHOLD = 0.95
"""Thumbnail correlation from which a test image counts as a copy (``find_near_duplicates``' default)."""


def copy_free_ids(task: TaskSpec, ctx: Context, paths: list[Path]) -> tuple[list[int], dict[str, Any]] | None:
    """Indexes of ``paths`` with no near-duplicate among the model's training images (when asked and known)."""
    pool = training_pool(ctx.model_name, ctx.data_root) if task.options.get("copy_free") else None
    if not pool:
        return None
    from rsvlm.bench.near_duplicates import find_near_duplicates

    ctx.log(f"near-duplicate check: {len(paths)} test images against {len(pool)} training images")
    matches = find_near_duplicates(pool, paths, threshold=COPY_THRESHOLD, cache_dir=ctx.run_dir / "thumbnails")
    copied = {m.test for m in matches}
    keep = [i for i, p in enumerate(paths) if str(p) not in copied]
    info = {"copies": len(copied), "threshold": COPY_THRESHOLD, "examples": [m.__dict__ for m in matches[:5]]}
    return keep, info
