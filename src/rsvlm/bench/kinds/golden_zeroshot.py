"""``golden-zeroshot``: zero-shot from released embeddings (RS-TransCLIP layout), reproducing a published
number with no model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.bench import plots
from rsvlm.bench.kind import Context, Kind, KindResult
from rsvlm.bench.kinds._sections import chart

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.spec import TaskSpec

SCORES = ("top1", "top5", "mean_per_class")


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.tasks.embeddings import AVERAGE, load_embedding_dir
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    emb = load_embedding_dir(ctx.data_root / task.data.path)
    report = evaluate_zeroshot(emb, AVERAGE, transductive=bool(task.options.get("transductive", False)))
    published = next((a.value for a in task.anchors if a.metric == "top1"), None)
    return KindResult(
        samples=len(emb.labels),
        metrics={k: report[k] for k in SCORES if k in report},
        details={"published": published, "reproduced": report["top1"]},
    )


def section(results: Sequence[ResultRow], base: Path) -> str:
    """The paper's top-1 beside ours, per set of released embeddings."""
    series = {
        r.model: {
            "published": plots.number(r.details.get("published")),
            "reproduced": plots.number(r.details.get("reproduced")),
        }
        for r in results
        if "published" in r.details or "reproduced" in r.details
    }
    if not series:
        return ""
    svg = plots.bar_chart(["published", "reproduced"], series, "published vs reproduced (top-1, percent)", 100.0, "%")
    return chart("golden", svg, "The paper's number and ours from the same published embeddings.")


KIND = Kind(
    name="golden-zeroshot",
    family="embeddings",
    metrics=SCORES,
    options={"template": ("str", "averageprompt"), "transductive": ("bool", False)},
    description="zero-shot from released embeddings (RS-TransCLIP layout): reproduces a published number, no model",
    main_metrics=("top1",),
    run=run,
    section=section,
)
