"""What a benchmark kind is (``Kind``), what its ``run`` gets (``Context``) and returns (``KindResult``), and the
data selection every kind shares.

A kind is one module in ``rsvlm.bench.kinds`` that defines ``KIND = Kind(...)``: the model family it needs, the
metrics its evaluator reports, its options, the leaderboard's main metrics, ``run`` and its report section.
The suite parser, the runner, the leaderboard and the report all read that one object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast

from rsvlm.errors import RsvlmError
from rsvlm.fileio import slug

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter
    from rsvlm.bench.leaderboard import ResultRow
    from rsvlm.bench.manifest import Manifest
    from rsvlm.bench.spec import TaskSpec
    from rsvlm.data.dataset import Dataset
    from rsvlm.data.sample import Sample
    from rsvlm.models.chat.protocol import ChatModel
    from rsvlm.models.protocols import ContrastiveModel

Family = Literal["contrastive", "chat", "embeddings"]
"""Which models a task runs for: contrastive models, chat models, or none (published embeddings)."""

Log = Callable[[str], None]


def model_slug(model: str) -> str:
    """The folder name of a model's results and work (``results/<slug>/``)."""
    return slug(model, fallback="model", max_len=120)


@dataclass
class Context:
    """What a kind's ``run`` needs besides the task: where data lives, where to cache, the loaded model."""

    data_root: Path
    run_dir: Path
    model_name: str
    model: object
    """A loaded ContrastiveModel or ChatModel (as the kind's family says), or None for embeddings-only kinds."""
    log: Log
    progress: Callable[[int, int], None] | None = None
    adapter: Adapter | None = None
    """``rsvlm bench --adapter``: the adapter a kind that ``adapts`` scores with (fitted on ``model``)."""

    @property
    def features(self) -> Path:
        return self.run_dir / "features"

    def work(self, task_id: str) -> Path:
        return self.run_dir / "work" / model_slug(self.model_name) / task_id

    def contrastive(self) -> ContrastiveModel:
        """The model, for a contrastive kind (the runner loads the family the kind declares)."""
        return cast("ContrastiveModel", self._loaded())

    def image_model(self) -> ContrastiveModel:
        """The model to embed images with: the adapter's (a tuned image tower) when there is one, else the model."""
        model = self.contrastive()
        return self.adapter.image_model(model) if self.adapter is not None else model

    def chat(self) -> ChatModel:
        """The model, for a chat kind."""
        return cast("ChatModel", self._loaded())

    def _loaded(self) -> object:
        if self.model is None:
            raise RsvlmError(f"{self.model_name}: no model is loaded for this task")  # pragma: no cover - runner bug
        return self.model


@dataclass
class KindResult:
    """What one (model, task) pair measured; the runner adds who, when and the leakage flag."""

    samples: int
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    """Whatever the kind's report section draws (examples, confusion matrices …); JSON-serialisable."""
    copy_free: dict[str, Any] | None = None
    """The metrics on the samples with no near-duplicate among the model's training images, when measured."""


class SkippedError(Exception):
    """Raised by a kind's ``run`` when the pair cannot be measured as asked (an adapter for other classes than the
    task's): the runner records the reason in place of a score, so nothing is silently measured another way."""


Section = Callable[[Sequence["ResultRow"], Path], str]
"""A kind's part of ``report.html``: its results (one per model) and the run folder → HTML."""


@dataclass(frozen=True)
class Kind:
    """One benchmark kind, registered by defining ``KIND`` in a module of ``rsvlm.bench.kinds``."""

    name: str
    family: Family
    metrics: tuple[str, ...]
    """The key names its evaluator reports (``rsvlm.tasks.metrics``, ``rsvlm.tasks.chat.*``); see ``metric_value``."""
    options: Mapping[str, tuple[str, Any]]
    """Option → (type, default). Types: ``str``, ``int`` (positive), ``int|None``, ``float``, ``bool``,
    ``list[int]``, ``list[str]``."""
    description: str
    main_metrics: tuple[str, ...]
    """The leaderboard's rows for a task of this kind, in order."""
    run: Callable[[TaskSpec, Context], KindResult]
    section: Section | None = None
    lower_is_better: frozenset[str] = frozenset()
    """Metrics that are errors rather than scores: the best cell of their leaderboard row is the smallest."""
    adapts: bool = False
    """Scores with ``Context.adapter`` under ``rsvlm bench --adapter``; an adapted model skips the other kinds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))  # a kind is read-only


# -- data selection --------------------------------------------------------------------------------------------
@functools.cache
def shipped_manifest(name: str) -> Manifest:
    """A packaged manifest, parsed once per process however many tasks and steps use it."""
    from rsvlm.bench.manifest import manifest_path, read_manifest

    return read_manifest(manifest_path(name))


def manifest_files(task: TaskSpec, data_root: Path) -> set[Path] | None:
    """Resolved paths a task's manifest lists, or None for 'the whole dataset'."""
    if task.data.manifest is None:
        return None
    return {(data_root / p).resolve() for p in shipped_manifest(task.data.manifest)}


def open_task_dataset(task: TaskSpec, data_root: Path) -> Dataset:
    from rsvlm.data.registry import open_dataset

    images = data_root / task.data.images if task.data.images else None
    return open_dataset(data_root / task.data.path, format=task.data.format, images=images, split=task.data.split)


def selected_records(
    task: TaskSpec, dataset: Dataset, data_root: Path, usable: Callable[[Sample], bool]
) -> list[Sample]:
    """Records the task scores: usable, listed by the manifest (when there is one), then the first ``limit``."""
    keep = manifest_files(task, data_root)
    records = [
        r
        for r in dataset.records
        if r.image_path is not None and usable(r) and (keep is None or r.image_path.resolve() in keep)
    ]
    if not records:
        raise RsvlmError(f"task {task.id}: no usable samples in {dataset.root} (check the suite's data entry)")
    return records[: task.data.limit] if task.data.limit else records


def image_paths(records: Sequence[Sample]) -> list[Path]:
    """The image files of records ``selected_records`` returned (each has one)."""
    return [r.image_path for r in records if r.image_path is not None]


# -- reading an evaluator's report -----------------------------------------------------------------------------
def metric_value(metrics: Mapping[str, Any], name: str) -> float | None:
    """A suite metric read from an evaluator's report: a top-level number, else a VQA question type's
    accuracy (``presence`` → ``per_type.presence.accuracy``) or MAE (``count_mae``); None when absent."""
    value = metrics.get(name)
    if value is None:
        per_type = metrics.get("per_type")
        if isinstance(per_type, Mapping):
            if isinstance(per_type.get(name), Mapping):
                value = per_type[name].get("accuracy")
            elif name.endswith("_mae") and isinstance(per_type.get(name[:-4]), Mapping):
                value = per_type[name[:-4]].get("mae")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def report_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Every metric of an evaluator's report by its suite name (``metric_value``), in report order: top-level
    numbers but the sample count ``n``, and per question type its accuracy and MAE where measured."""
    names: list[str] = []
    for key, value in metrics.items():
        if key == "per_type" and isinstance(value, Mapping):
            for qtype, entry in value.items():
                if isinstance(entry, Mapping) and entry.get("accuracy") is not None:
                    names += [str(qtype), f"{qtype}_mae"]
        elif key != "n":
            names.append(key)
    return {name: v for name in names if (v := metric_value(metrics, name)) is not None}
