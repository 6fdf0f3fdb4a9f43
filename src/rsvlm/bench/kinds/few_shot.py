"""``few-shot``: every adaptation method × shots × seeds on a labelled scene set (fewshot/1), the model's towers and
images available, so prompt learning and LoRA run beside the features-only methods."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rsvlm.bench.kind import Context, Kind, KindResult, open_task_dataset, selected_records
from rsvlm.bench.kinds._fewshot import MAIN, METRICS, OPTIONS, metrics, section, settings

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.adapt.labelled import LabelledImages, image_support
    from rsvlm.adapt.methods import get_method
    from rsvlm.adapt.protocol import LabelledSet, run_protocol
    from rsvlm.tasks.templates import load_templates

    chosen_settings = settings(task.options)
    model = ctx.contrastive()
    dataset = open_task_dataset(task, ctx.data_root)
    records = selected_records(task, dataset, ctx.data_root, lambda r: r.label is not None)
    classes = sorted({str(r.label) for r in records})
    labels = np.array([classes.index(str(r.label)) for r in records], dtype=np.int64)
    names = [dataset.class_names[c] for c in classes]
    chosen = LabelledImages(dataset, records, labels, classes, names, task.data.split, None, 0)
    templates = load_templates(str(task.options.get("templates", "rs-default")))
    pixels = any(get_method(m).needs_pixels for m in chosen_settings.methods)
    support = image_support(model, chosen, templates, pixels=pixels, cache_dir=ctx.features, progress=ctx.progress)
    labelled = LabelledSet(
        support.features, labels, support.classes, support.logit_scale, splits=[r.split for r in records],
        model=model, pixels=support.pixels, templates=list(templates), source=task.id,
    )  # fmt: skip
    result = run_protocol(labelled, chosen_settings, log=ctx.log)
    return KindResult(samples=result["n_test"], metrics=metrics(result), details={"fewshot": result})


KIND = Kind(
    name="few-shot",
    family="contrastive",
    metrics=METRICS,
    options={**OPTIONS, "templates": ("str", "rs-default")},
    description="adaptation methods x shots x seeds on one train/test split (fewshot/1): top-1 mean ± std per "
    "method and shot count, base-to-novel, fit times",
    main_metrics=MAIN,
    run=run,
    section=section,
)
