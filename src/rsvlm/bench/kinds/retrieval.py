"""``retrieval``: image-text retrieval (retrieval/1), recall@1/5/10 both ways and their mean mR."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.bench import plots
from rsvlm.bench.kind import Context, Kind, KindResult, image_paths, open_task_dataset, selected_records
from rsvlm.bench.kinds._scene import copy_free_ids
from rsvlm.bench.kinds._sections import examples
from rsvlm.htmlkit import esc

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.spec import TaskSpec

EXAMPLES = 6
"""Text queries kept per result for the report, spread evenly over the captions."""


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.pipeline import embed_images, embed_texts
    from rsvlm.tasks.retrieval import evaluate_retrieval

    model = ctx.contrastive()
    dataset = open_task_dataset(task, ctx.data_root)
    records = selected_records(task, dataset, ctx.data_root, lambda r: bool(r.captions))
    paths = image_paths(records)
    images = embed_images(model, paths, cache_dir=ctx.features, progress=ctx.progress)
    captions = [c for r in records for c in r.captions]
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions], dtype=np.int64)
    texts = embed_texts(model, captions)
    report = evaluate_retrieval(images, texts, owner)
    copy_free = None
    found = copy_free_ids(task, ctx, paths)
    if found is not None:
        keep, info = found
        kept_texts = np.flatnonzero(np.isin(owner, keep))
        remap = {old: new for new, old in enumerate(keep)}
        sub = evaluate_retrieval(images[keep], texts[kept_texts], np.array([remap[o] for o in owner[kept_texts]]))
        copy_free = {"samples": len(keep), "metrics": {k: sub[k] for k in ("i2t_r1", "t2i_r1", "mR")}, **info}
    sims = texts @ images.T
    shown: list[dict[str, Any]] = []
    for t in range(0, len(captions), max(1, len(captions) // EXAMPLES))[:EXAMPLES]:
        top = np.argsort(-sims[t])[:5]
        shown.append(
            {
                "query": captions[t],
                "top": [str(paths[i].resolve()) for i in top],
                "correct": [bool(i == owner[t]) for i in top],
            }
        )
    metrics = {k: v for k, v in report.items() if k not in ("n", "n_images", "n_texts") and isinstance(v, int | float)}
    return KindResult(samples=len(records), metrics=metrics, details={"examples": shown}, copy_free=copy_free)


def section(results: Sequence[ResultRow], base: Path) -> str:
    """Per model, text queries with their top five images, the right ones marked."""
    parts = []
    for r in results:
        shown = examples(r)
        if shown:
            parts.append(f"<h3>{esc(r.model)}: text → image, top 5</h3>")
            parts += [
                plots.retrieval_html(
                    str(e.get("query", "")), list(e.get("top") or []), list(e.get("correct") or []), base
                )
                for e in shown
            ]
    return "".join(parts)


KIND = Kind(
    name="retrieval",
    family="contrastive",
    metrics=("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "mR"),
    options={"copy_free": ("bool", False)},
    description="image-text retrieval (retrieval/1): recall@1/5/10 both ways and their mean mR",
    main_metrics=("mR", "i2t_r1", "t2i_r1"),
    run=run,
    section=section,
)
