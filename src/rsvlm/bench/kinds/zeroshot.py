"""``zeroshot``: zero-shot scene classification (zeroshot/1), class prompts averaged over a template set; under
``rsvlm bench --adapter`` the same images and metrics scored with the adapter (its classes must be the task's)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.bench.kind import Context, Kind, KindResult
from rsvlm.bench.kinds._scene import adapted_scores, copy_free_ids, scene_embeddings
from rsvlm.bench.kinds._sections import classification

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec
    from rsvlm.tasks.embeddings import EmbeddingSet

SCORES = ("top1", "top5", "mean_per_class")


def _evaluate(emb: EmbeddingSet, scores: npt.NDArray[np.float32] | None, transductive: bool) -> dict[str, Any]:
    """Zero-shot, or the adapter's ``scores`` (refined transductively from them when asked)."""
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    if scores is None:
        return evaluate_zeroshot(emb, transductive=transductive)
    from rsvlm.tasks.metrics import classification_report
    from rsvlm.tasks.transductive import transclip

    if transductive:
        scores = transclip(emb.images, emb.text_embeddings(), prior=scores).probabilities
    return classification_report(scores, emb.labels, emb.class_names)


def run(task: TaskSpec, ctx: Context) -> KindResult:
    emb, paths = scene_embeddings(task, ctx)
    scores = adapted_scores(ctx, emb)
    transductive = bool(task.options.get("transductive", False))
    report = _evaluate(emb, scores, transductive)
    copy_free = None
    found = copy_free_ids(task, ctx, paths)
    if found is not None:
        keep, info = found
        part = replace(emb, images=emb.images[keep], labels=emb.labels[keep], splits=[])
        sub = _evaluate(part, scores[keep] if scores is not None else None, transductive)
        copy_free = {"samples": len(keep), "metrics": {k: sub[k] for k in SCORES}, **info}
    return KindResult(
        samples=len(emb.labels),
        metrics={k: report[k] for k in SCORES if k in report},
        details={"class_names": emb.class_names, "confusion": report["confusion"], "per_class": report["per_class"]},
        copy_free=copy_free,
    )


KIND = Kind(
    name="zeroshot",
    family="contrastive",
    metrics=SCORES,
    options={"templates": ("str", "rs-default"), "transductive": ("bool", False), "copy_free": ("bool", False)},
    description="zero-shot scene classification (zeroshot/1): class prompts averaged over a template set",
    main_metrics=("top1",),
    run=run,
    section=classification,
    adapts=True,
)
