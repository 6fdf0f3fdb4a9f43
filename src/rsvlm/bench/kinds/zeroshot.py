"""``zeroshot``: zero-shot scene classification (zeroshot/1), class prompts averaged over a template set."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rsvlm.bench.kind import Context, Kind, KindResult
from rsvlm.bench.kinds._scene import copy_free_ids, scene_embeddings
from rsvlm.bench.kinds._sections import classification

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec

SCORES = ("top1", "top5", "mean_per_class")


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    emb, paths = scene_embeddings(task, ctx)
    transductive = bool(task.options.get("transductive", False))
    report = evaluate_zeroshot(emb, transductive=transductive)
    copy_free = None
    found = copy_free_ids(task, ctx, paths)
    if found is not None:
        keep, info = found
        part = replace(emb, images=emb.images[keep], labels=emb.labels[keep], splits=[])
        sub = evaluate_zeroshot(part, transductive=transductive)
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
)
