"""``counting``: object counts from a chat model's free text against box counts, on tiles of held-out regions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.bench import plots
from rsvlm.bench.kind import Context, Kind, KindResult, report_metrics
from rsvlm.bench.kinds._chat import BOX_OPTIONS, box_tiles, chat_options, evaluate, predictions
from rsvlm.bench.kinds._sections import chart, details

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.tasks.chat.counting import parse_count

    dataset = box_tiles(task, ctx)
    object_name = str(task.options.get("object_name", "tree"))
    report, _ = evaluate(task, ctx, dataset, "counting", by_manifest=False, object_name=object_name)
    preds = predictions(ctx.work(task.id))
    pairs = [[len(r.boxes), parse_count(preds[r.id])] for r in dataset.records if r.id in preds and r.boxes is not None]
    return KindResult(samples=report["n"], metrics=report_metrics(report["metrics"]), details={"pairs": pairs})


def section(results: Sequence[ResultRow], base: Path) -> str:
    """True against predicted count, one dot per image and a colour per model."""
    pairs = {m: p for m, p in details(results, "pairs").items() if isinstance(p, list)}
    if not pairs:
        return ""
    clean = {m: [[plots.number(v) for v in row] for row in p if isinstance(row, list)] for m, p in pairs.items()}
    return chart("counting", plots.scatter_svg(clean), "Each dot is one image; on the dashed line the count is exact.")


KIND = Kind(
    name="counting",
    family="chat",
    metrics=("exact", "binned", "mae", "rmse", "mae_unparseable_as_0", "unparseable"),
    options=chat_options("counting/1", 8, **BOX_OPTIONS),
    description="object counts from free text against box counts, on tiles of held-out regions",
    main_metrics=("mae", "exact"),
    run=run,
    section=section,
    lower_is_better=frozenset({"mae", "rmse", "mae_unparseable_as_0"}),
)
