"""``caption``: one caption per image from a chat model, pycocoevalcap scores x100."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.bench import plots
from rsvlm.bench.kind import Context, Kind, KindResult, open_task_dataset, report_metrics
from rsvlm.bench.kinds._chat import chat_options, evaluate, predictions
from rsvlm.bench.kinds._sections import examples
from rsvlm.htmlkit import esc

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    dataset = open_task_dataset(task, ctx.data_root)
    report, _ = evaluate(task, ctx, dataset, "caption")
    preds = predictions(ctx.work(task.id))
    by_id = {r.id: r for r in dataset.records if r.image_path is not None}
    shown = [
        {"image": str(path.resolve()), "prediction": p, "references": list(by_id[i].captions)}
        for i, p in list(preds.items())[:8]
        if i in by_id and (path := by_id[i].image_path) is not None
    ]
    return KindResult(samples=report["n"], metrics=report_metrics(report["metrics"]), details={"examples": shown})


def section(results: Sequence[ResultRow], base: Path) -> str:
    """Per model, its captions beside the reference captions."""
    parts = []
    for r in results:
        shown = examples(r)
        if shown:
            parts.append(f"<h3>{esc(r.model)}: captions beside the references</h3>")
            parts += [
                plots.caption_html(
                    str(e.get("image", "")),
                    str(e.get("prediction", "")),
                    [str(x) for x in e.get("references") or []],
                    base,
                )
                for e in shown
            ]
    return "".join(parts)


KIND = Kind(
    name="caption",
    family="chat",
    metrics=("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE"),
    options=chat_options("caption-coco/1", 40),
    description="one caption per image, pycocoevalcap scores x100",
    main_metrics=("CIDEr", "BLEU-4"),
    run=run,
    section=section,
)
