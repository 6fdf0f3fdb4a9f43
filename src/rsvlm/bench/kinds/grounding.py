"""``grounding``: one box per referring expression from a chat model, IoU in pixels, on tiles of held-out
regions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.bench import plots
from rsvlm.bench.kind import Context, Kind, KindResult, report_metrics
from rsvlm.bench.kinds._chat import BOX_OPTIONS, box_tiles, chat_options, evaluate, predictions
from rsvlm.bench.kinds._sections import MAX_EXAMPLES, examples
from rsvlm.htmlkit import esc

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from PIL import Image

    from rsvlm.tasks.chat.box_parsing import parse_box
    from rsvlm.tasks.chat.geometry import iou
    from rsvlm.tasks.chat.grounding import target_box

    dataset = box_tiles(task, ctx, grounding=True)
    report, chat_task = evaluate(task, ctx, dataset, "grounding", by_manifest=False)
    preds = predictions(ctx.work(task.id))
    box_format = ctx.chat().box_format
    shown: list[dict[str, Any]] = []
    for r in dataset.records:
        if len(shown) == MAX_EXAMPLES:
            break
        if r.id not in preds or not chat_task.accepts(r) or r.image_path is None:
            continue
        with Image.open(r.image_path) as im:
            width, height = im.size
        box = parse_box(preds[r.id], box_format, width=width, height=height)
        truth = target_box(r)
        shown.append(
            {
                "image": str(r.image_path.resolve()),
                "expression": r.question,
                "truth": [truth.x1, truth.y1, truth.x2, truth.y2],
                "prediction": None if box is None else [box.x1, box.y1, box.x2, box.y2],
                "iou": None if box is None else iou(box, truth),
            }
        )
    return KindResult(samples=report["n"], metrics=report_metrics(report["metrics"]), details={"examples": shown})


def section(results: Sequence[ResultRow], base: Path) -> str:
    """Per model, its boxes drawn over the true ones."""
    parts = []
    for r in results:
        shown = examples(r)
        if not shown:
            continue
        figures = []
        for e in shown:
            score = plots.number(e.get("iou"))
            svg = plots.grounding_svg(str(e.get("image", "")), e.get("truth"), e.get("prediction"), base)
            note = (
                "no box in the answer"
                if e.get("prediction") is None
                else f"IoU {score:.2f}"
                if score is not None
                else ""
            )
            caption = (
                f'“{esc(e.get("expression", ""))}” — <span class="ok">truth</span>, '
                f'<span class="bad">prediction</span>; {esc(note)}'
            )
            figures.append(
                f'<figure class="chart" data-plot="grounding">{svg}<figcaption>{caption}</figcaption></figure>'
            )
        parts.append(f'<h3>{esc(r.model)}: boxes</h3><div class="grid">{"".join(figures)}</div>')
    return "".join(parts)


KIND = Kind(
    name="grounding",
    family="chat",
    metrics=("acc@0.5", "acc@0.25", "mean_iou", "unparseable"),
    options=chat_options("grounding/1", 32, **BOX_OPTIONS),
    description="one box per referring expression, IoU in pixels, on tiles of held-out regions",
    main_metrics=("acc@0.5", "mean_iou"),
    run=run,
    section=section,
)
