"""``golden-few-shot``: the few-shot comparison (fewshot/1) on released embeddings (RS-TransCLIP layout), no model:
the features-only methods (the others are listed as skipped), CLIP's temperature, the averaged prompts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsvlm.bench.kind import Context, Kind, KindResult
from rsvlm.bench.kinds._fewshot import MAIN, METRICS, OPTIONS, metrics, section, settings

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.adapt.protocol import from_embeddings, run_protocol

    chosen = settings(task.options)
    result = run_protocol(from_embeddings(ctx.data_root / task.data.path), chosen, log=ctx.log)
    return KindResult(samples=result["n_test"], metrics=metrics(result), details={"fewshot": result})


KIND = Kind(
    name="golden-few-shot",
    family="embeddings",
    metrics=METRICS,
    options=OPTIONS,
    description="few-shot methods x shots x seeds on released embeddings (fewshot/1), features-only methods",
    main_metrics=MAIN,
    run=run,
    section=section,
)
