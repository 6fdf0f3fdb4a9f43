"""``linear-probe``: logistic regression on frozen image features; k shots per class, one draw per seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rsvlm.bench.kind import Context, Kind, KindResult
from rsvlm.bench.kinds._scene import scene_embeddings
from rsvlm.bench.kinds._sections import classification

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec


def run(task: TaskSpec, ctx: Context) -> KindResult:
    from rsvlm.tasks.linear_probe import evaluate_linear_probe, stratified_split

    emb, _ = scene_embeddings(task, ctx)
    train, test = stratified_split(emb.labels, float(task.options.get("test_fraction", 0.5)), seed=0)
    seeds = tuple(task.options.get("seeds", (1, 2, 3)))
    report = evaluate_linear_probe(
        emb.images[train], emb.labels[train], emb.images[test], emb.labels[test], emb.class_names,
        shots=task.options.get("shots"), seeds=seeds,
    )  # fmt: skip
    metrics = {k: v for k, v in report.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    details: dict[str, Any] = {k: report[k] for k in ("per_class", "confusion") if k in report}
    return KindResult(samples=len(test), metrics=metrics, details={"class_names": emb.class_names, **details})


KIND = Kind(
    name="linear-probe",
    family="contrastive",
    metrics=("top1", "top1_std", "top5", "mean_per_class"),
    options={"shots": ("int|None", None), "seeds": ("list[int]", (1, 2, 3)), "test_fraction": ("float", 0.5)},
    description="logistic regression on frozen image features; k shots per class with one draw per seed",
    main_metrics=("top1",),
    run=run,
    section=classification,
)
