"""``chat-classify``: scene classification by a chat model choosing among the dataset's classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsvlm.bench.kind import Context, Kind, KindResult, open_task_dataset, report_metrics
from rsvlm.bench.kinds._chat import chat_options, evaluate
from rsvlm.bench.kinds._sections import classification

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    dataset = open_task_dataset(task, ctx.data_root)
    report, _ = evaluate(task, ctx, dataset, "chat-classify")
    metrics = report["metrics"]
    details = {k: metrics[k] for k in ("per_class", "confusion", "class_names") if k in metrics}
    return KindResult(samples=report["n"], metrics=report_metrics(metrics), details=details)


KIND = Kind(
    name="chat-classify",
    family="chat",
    metrics=("accuracy", "mean_per_class", "none"),
    options=chat_options("chat-classify/1", 16),
    description="scene classification by a chat model choosing among the dataset's classes",
    main_metrics=("accuracy",),
    run=run,
    section=classification,
)
