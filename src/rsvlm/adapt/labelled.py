"""Support sets from where users have labels: a labelled image folder or any labelled dataset reader (all of its
labelled images, or a k-shot draw), and precomputed embeddings.

Choosing the examples needs no model (``choose_images``, ``choose_embeddings``): a wrong path, split or format, or
a class smaller than the shots asked for, fails in one line before a slow model load. ``fit_on_images`` then
embeds the chosen images through their reader (cached by content) and fits; ``fit_on_embeddings`` fits on the
features as they are. Both record where the labels came from in the adapter (``trained_on``), so a benchmark can
tell when an adapter was fitted on the images it is scored on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from rsvlm.adapt.method import I64, ClassSet, Method, Options, Support
from rsvlm.adapt.saved import Adapter, BaseModelId, fit_adapter
from rsvlm.adapt.support import check_enough_classes, draw_shots, model_class_set, pixel_loader
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.dataset import Dataset
    from rsvlm.data.sample import RasterImage, Sample
    from rsvlm.models.protocols import ContrastiveModel
    from rsvlm.pipeline import Progress

TRAIN_SPLIT = "train"
"""The split adapted from when ``split`` is omitted and the data has it: never the images a test scores."""

ALL_SPLITS = "all"
"""``split="all"``: every split of the data together."""

EMBEDDINGS_LOGIT_SCALE = 100.0
"""Precomputed embeddings carry no temperature; 100 is the released CLIP-family models' (clamped) value."""


@dataclass
class LabelledImages:
    """Labelled images chosen from a dataset reader, before any model runs."""

    dataset: Dataset
    records: list[Sample]
    labels: I64
    """Class index of each record into ``classes``."""
    classes: list[str]
    """Class labels as the data names them (folder names)."""
    names: list[str]
    """Readable class names (what the prompts say)."""
    split: str | None
    """The split the examples come from; None: every split."""
    shots: int | None
    seed: int

    def counts(self) -> dict[str, int]:
        """Examples per class label."""
        found = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, found, strict=True)}

    def trained_on(self) -> dict[str, Any]:
        return {
            "data": str(self.dataset.root.resolve()),
            "format": self.dataset.format_name,
            "split": self.split if self.split is not None else ALL_SPLITS,
            "shots": self.shots,
            "seed": self.seed,
            "examples": len(self.records),
        }


def choose_images(
    data: str | os.PathLike[str] | Dataset,
    *,
    data_format: str | None = None,
    images: str | os.PathLike[str] | None = None,
    split: str | None = None,
    class_names: Mapping[str, str] | None = None,
    shots: int | None = None,
    seed: int = 1,
) -> LabelledImages:
    """The labelled images of ``data`` (a path any reader opens, or an open ``Dataset``) to adapt from.

    ``split``: None takes the train split where the data has one (else everything), ``"all"`` every split.
    ``shots``: draw that many images per class with ``seed`` (a smaller class is refused); None: all of them.
    """
    from rsvlm.data.dataset import Dataset

    if isinstance(data, Dataset):
        dataset = data
        splits = {r.split for r in dataset.records}
        chosen = next(iter(splits)) if len(splits) == 1 else None
        if split is not None or data_format is not None or images is not None or class_names is not None:
            raise RsvlmError("give split, format, images and class names when opening the dataset, not again")
    else:
        dataset, chosen = _open(Path(data), data_format, images, split, class_names)
    records = [r for r in dataset.records if r.label is not None and r.image_path is not None]
    if not records:
        raise RsvlmError(
            f"{dataset.root}: no labelled images to adapt from (is it a scene-classification set? "
            "`rsvlm data info PATH` shows what it holds)"
        )
    classes = sorted({str(r.label) for r in records})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[str(r.label)] for r in records], dtype=np.int64)
    check_enough_classes(labels, classes)
    if shots is not None:
        keep = draw_shots(labels, shots, seed, classes)
        records, labels = [records[int(i)] for i in keep], labels[keep]
    names = [dataset.class_names[c] for c in classes]
    return LabelledImages(dataset, records, labels, classes, names, chosen, shots, seed)


def _open(
    data: Path, data_format: str | None, images: str | os.PathLike[str] | None, split: str | None,
    class_names: Mapping[str, str] | None,
) -> tuple[Dataset, str | None]:  # fmt: skip
    from rsvlm.data.registry import open_dataset

    wanted = None if split == ALL_SPLITS else split
    folder = Path(images) if images is not None else None
    dataset = open_dataset(data, format=data_format, images=folder, split=wanted, class_names=class_names)
    if split is None and TRAIN_SPLIT in dataset.all_splits:
        dataset = open_dataset(data, format=data_format, images=folder, split=TRAIN_SPLIT, class_names=class_names)
        return dataset, TRAIN_SPLIT
    return dataset, wanted


def image_support(
    model: ContrastiveModel,
    chosen: LabelledImages,
    templates: Sequence[str],
    *,
    pixels: bool = False,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Support:
    """The chosen images embedded by ``model`` (through their reader, cached) and the class prompts' embeddings;
    ``pixels``: also a loader of their preprocessed pixels, for methods that tune the image tower."""
    from rsvlm.pipeline import embed_records

    dataset = chosen.dataset
    features = embed_records(
        model, dataset, chosen.records, batch_size=batch_size, cache_dir=cache_dir, use_cache=use_cache,
        progress=progress,
    )  # fmt: skip
    classes = model_class_set(model, chosen.names, templates)
    load = cast("Callable[[object], RasterImage]", dataset.load_image)
    loader = pixel_loader(model, chosen.records, load) if pixels else None
    return Support(
        features, chosen.labels, classes, float(model.logit_scale), model=model, pixels=loader,
        templates=list(templates),
    )  # fmt: skip


def fit_on_images(
    method: Method,
    model: ContrastiveModel,
    chosen: LabelledImages,
    *,
    options: Options | None = None,
    templates: str = "rs-default",
    batch_size: int = 32,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Adapter:
    """``method`` fitted on the chosen images with ``model``: the adapter, bound to that model."""
    from rsvlm.tasks.templates import load_templates

    checked = method.check_options(options)  # a bad option fails before any image is embedded
    support = image_support(
        model, chosen, load_templates(templates), pixels=method.needs_pixels, batch_size=batch_size,
        cache_dir=cache_dir, use_cache=use_cache, progress=progress,
    )  # fmt: skip
    return fit_adapter(
        method, support, chosen.classes, BaseModelId.of_model(model), options=checked, seed=chosen.seed,
        templates=templates, trained_on=chosen.trained_on(),
    )  # fmt: skip


@dataclass
class LabelledEmbeddings:
    """A support set of precomputed embeddings (features-only methods), and who produced them."""

    folder: Path
    support: Support
    base: BaseModelId
    shots: int | None
    seed: int

    def trained_on(self) -> dict[str, Any]:
        return {
            "embeddings": str(self.folder.resolve()),
            "shots": self.shots,
            "seed": self.seed,
            "examples": len(self.support.labels),
        }


def embeddings_identity(folder: str | os.PathLike[str]) -> tuple[Any, BaseModelId]:
    """An embeddings folder (``EmbeddingSet``) and the identity an adapter fitted on it records."""
    from rsvlm.tasks.embeddings import AVERAGE, load_embedding_dir

    emb = load_embedding_dir(Path(folder))
    return emb, BaseModelId.of_embeddings(str(folder), emb.images, emb.text_embeddings(AVERAGE))


def choose_embeddings(folder: str | os.PathLike[str], *, shots: int | None = None, seed: int = 1) -> LabelledEmbeddings:
    """The labelled embeddings of a folder (released layout), all of them or ``shots`` per class."""
    from rsvlm.tasks.embeddings import AVERAGE

    emb, base = embeddings_identity(folder)
    labels = emb.labels.astype(np.int64)
    check_enough_classes(labels, emb.class_names)
    keep = draw_shots(labels, shots, seed, emb.class_names) if shots is not None else np.arange(len(labels))
    classes = ClassSet(list(emb.class_names), emb.text_embeddings(AVERAGE).astype(np.float32))
    support = Support(
        emb.images[keep].astype(np.float32), labels[keep], classes, EMBEDDINGS_LOGIT_SCALE, templates=emb.templates
    )
    return LabelledEmbeddings(Path(folder), support, base, shots, seed)


def fit_on_embeddings(method: Method, chosen: LabelledEmbeddings, *, options: Options | None = None) -> Adapter:
    """A features-only ``method`` fitted on precomputed embeddings; a method that runs the towers is refused."""
    from rsvlm.tasks.embeddings import AVERAGE

    if method.needs_model or method.needs_pixels:
        raise RsvlmError(
            f"method {method.name} runs the model's towers: fit it with --model NAME --data PATH, not --embeddings"
        )
    return fit_adapter(
        method, chosen.support, chosen.support.classes.names, chosen.base, options=options, seed=chosen.seed,
        templates=AVERAGE, trained_on=chosen.trained_on(),
    )  # fmt: skip
