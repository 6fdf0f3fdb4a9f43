"""``vqa``: RSVQA questions answered by a chat model; accuracy per question type, overall and their average."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.bench import plots
from rsvlm.bench.kind import Context, Kind, KindResult, open_task_dataset, report_metrics
from rsvlm.bench.kinds._chat import chat_options, evaluate
from rsvlm.bench.kinds._sections import chart, details, examples
from rsvlm.htmlkit import esc, table

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    dataset = open_task_dataset(task, ctx.data_root)
    report, _ = evaluate(task, ctx, dataset, "vqa")
    per_type = {t: e.get("accuracy") for t, e in report["metrics"].get("per_type", {}).items()}
    return KindResult(samples=report["n"], metrics=report_metrics(report["metrics"]), details={"per_type": per_type})


def section(results: Sequence[ResultRow], base: Path) -> str:
    """Accuracy per question type (one bar per model), and examples where a result has them."""
    parts = []
    per_type = {
        m: {str(k): plots.number(v) for k, v in pt.items()}
        for m, pt in details(results, "per_type").items()
        if isinstance(pt, Mapping)
    }
    if per_type:
        types = list(dict.fromkeys(t for s in per_type.values() for t in s))
        svg = plots.bar_chart(types, per_type, "accuracy per question type", 100.0, "%")
        parts.append(chart("vqa-types", svg, "Accuracy per question type, one bar per model."))
    for r in results:
        shown = examples(r)
        if not shown:
            continue
        rows = [
            [
                plots.image_html(str(e.get("image", "")), base),
                esc(e.get("question", "")),
                esc(e.get("answer", "")),
                esc(e.get("prediction", "")),
                '<span class="ok">✓</span>' if e.get("correct") else '<span class="bad">✗</span>',
            ]
            for e in shown
        ]
        parts.append(f"<h3>{esc(r.model)}: examples</h3>")
        parts.append(table(["image", "question", "answer", "prediction", ""], rows, raw=True))
    return "".join(parts)


KIND = Kind(
    name="vqa",
    family="chat",
    metrics=("overall", "average", "presence", "comp", "rural_urban", "count", "area", "count_mae"),
    options=chat_options("vqa-rsvqa/1", 8),
    description="RSVQA questions: accuracy per question type, overall and average of types",
    main_metrics=("overall", "average"),
    run=run,
    section=section,
)
