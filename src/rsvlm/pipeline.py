"""Glue between datasets, models and tasks: embed images (cached, batched) and class prompts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.dataset import Dataset
    from rsvlm.data.sample import RasterImage, Sample
    from rsvlm.models.protocols import ContrastiveModel
    from rsvlm.tasks.embeddings import EmbeddingSet

Progress = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")


def model_cache_key(model: ContrastiveModel) -> str:
    weights = model.weights_id
    raw = f"{model.name}|{weights}|{model.preprocess_id}|{model.embed_dim}"
    return f"{model.name}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


def embed_images(
    model: ContrastiveModel,
    paths: Sequence[Path],
    *,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> npt.NDArray[np.float32]:
    """(N, D) normalised embeddings of image files, reading each from the cache when present (keyed by the
    file's bytes, so a renamed or copied file is a hit)."""
    from rsvlm.data.raster import read_image
    from rsvlm.features.cache import file_hash

    return embed_cached(
        model,
        paths,
        read_image,
        file_hash,
        batch_size=batch_size,
        cache_dir=cache_dir,
        use_cache=use_cache,
        progress=progress,
    )


def embed_records(
    model: ContrastiveModel,
    dataset: Dataset,
    records: Sequence[Sample],
    *,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> npt.NDArray[np.float32]:
    """(N, D) embeddings of a reader's records, read through the reader (so windowed samples are cropped) and
    cached by ``dataset.content_key``."""
    return embed_cached(
        model,
        records,
        dataset.load_image,
        dataset.content_key,
        batch_size=batch_size,
        cache_dir=cache_dir,
        use_cache=use_cache,
        progress=progress,
    )


def embed_cached(
    model: ContrastiveModel,
    items: Sequence[T],
    load: Callable[[T], RasterImage],
    content_key: Callable[[T], str],
    *,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> npt.NDArray[np.float32]:
    """The one embedding loop: (N, D) embeddings of ``items`` (files, in-memory tiles …), each looked up in the
    feature cache by ``content_key(item)`` first; the rest are loaded, preprocessed and encoded in batches
    (two threads prepare the next batch while the model encodes), checked finite and cached."""
    import torch

    from rsvlm.features.cache import FeatureCache

    out = np.zeros((len(items), model.embed_dim), dtype=np.float32)
    cache = FeatureCache(cache_dir, model_cache_key(model), model.embed_dim) if use_cache else None
    todo: list[tuple[int, str]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        keys = list(pool.map(content_key, items)) if cache is not None else [""] * len(items)
    for i, key in enumerate(keys):
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            todo.append((i, key))
        else:
            out[i] = cached
    done = len(items) - len(todo)
    if progress is not None:
        progress(done, len(items))

    def prepare(batch: list[tuple[int, str]]) -> torch.Tensor:
        return torch.stack([model.preprocess(load(items[i])) for i, _ in batch])

    batches = [todo[s : s + batch_size] for s in range(0, len(todo), batch_size)]
    for batch, pixels in zip(batches, prefetched(prepare, batches), strict=True):
        vectors = model.encode_images(pixels).cpu().numpy()
        check_finite_embeddings(model, vectors, [items[i] for i, _ in batch])
        for (i, key), vector in zip(batch, vectors, strict=True):
            out[i] = vector
            if cache is not None:
                cache.put(key, vector)
        done += len(batch)
        if progress is not None:
            progress(done, len(items))
    return out


def prefetched(fn: Callable[[T], R], items: Sequence[T], ahead: int = 2) -> Iterator[R]:
    """``fn(item)`` for each item in order, computed by two threads at most ``ahead`` items in front of the consumer:
    reading and preprocessing overlap the model's forward pass, and memory holds ``ahead`` prepared batches, not
    all of them (``ThreadPoolExecutor.map`` would submit every item at once)."""
    from collections import deque

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def check_finite_embeddings(model: ContrastiveModel, vectors: npt.NDArray[np.float32], items: Sequence[object]) -> None:
    """Refuse NaN or infinite embeddings (weights that overflow, NaN pixels): they would score as ``nan%``
    and be cached as if valid."""
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        first = items[int(np.argmax(bad))]
        raise RsvlmError(
            f"{model.name}: {int(bad.sum())} of {len(vectors)} embeddings are NaN or infinite, e.g. for {first} "
            "(the weights overflow or the input holds NaN values; check the weights file and the image)"
        )


def embed_texts(model: ContrastiveModel, texts: Sequence[str], batch_size: int = 256) -> npt.NDArray[np.float32]:
    parts = [model.encode_texts(texts[s : s + batch_size]).cpu().numpy() for s in range(0, len(texts), batch_size)]
    out = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, model.embed_dim), np.float32)
    check_finite_embeddings(model, out, [repr(t) for t in texts])
    return out


def class_text_embeddings(
    model: ContrastiveModel, class_names: Sequence[str], templates: Sequence[str]
) -> dict[str, npt.NDArray[np.float32]]:
    """Per-template class embeddings, keyed by template name (``a satellite photo of a``).

    A class name may list aliases separated by ``|`` (``city centre|downtown``); their prompt embeddings
    are averaged, so a class is not judged by one arbitrary word.
    """
    from rsvlm.tasks.embeddings import average_normalised
    from rsvlm.tasks.templates import template_name

    aliases = [[a.strip() for a in name.split("|") if a.strip()] or [name] for name in class_names]
    prompts = [t.format(a) for t in templates for group in aliases for a in group]
    flat = embed_texts(model, prompts)
    out: dict[str, npt.NDArray[np.float32]] = {}
    pos = 0
    for t in templates:
        rows = []
        for group in aliases:
            rows.append(average_normalised([flat[pos + j : pos + j + 1] for j in range(len(group))])[0])
            pos += len(group)
        out[template_name(t)] = np.stack(rows).astype(np.float32)
    return out


def rich_progress(description: str) -> tuple[Any, Progress]:
    """A transient rich progress bar and the callback that drives it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    task = bar.add_task(description, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def _load(model_name: str | None, weights: Path | None, download: bool) -> ContrastiveModel:
    from rsvlm.models.openclip import load_contrastive

    return load_contrastive(model_name, weights, download=download)


def _embed_with_progress(
    model: ContrastiveModel,
    dataset: Dataset,
    records: Sequence[Sample],
    batch_size: int,
    cache_dir: Path | None,
    show: bool,
) -> npt.NDArray[np.float32]:
    if not show:
        return embed_records(model, dataset, records, batch_size=batch_size, cache_dir=cache_dir)
    bar, callback = rich_progress("embedding images")
    with bar:
        return embed_records(model, dataset, records, batch_size=batch_size, cache_dir=cache_dir, progress=callback)


def embed_scene_dataset(
    model_name: str | None,
    data: Path,
    *,
    weights: Path | None = None,
    download: bool = False,
    images: Path | None = None,
    split: str | None = None,
    templates: str = "rs-default",
    cache_dir: Path | None = None,
    batch_size: int = 32,
    model: ContrastiveModel | None = None,
    show_progress: bool = True,
    class_names: dict[str, str] | None = None,
    format: str | None = None,
) -> tuple[EmbeddingSet, dict[str, Any]]:
    """Embed a labelled scene set and its class prompts into an ``EmbeddingSet`` (read through its reader, so
    samples that are windows of larger images are cropped; ``format`` names the reader, else it is detected)."""
    from rsvlm.data.registry import open_dataset
    from rsvlm.tasks.embeddings import EmbeddingSet
    from rsvlm.tasks.templates import load_templates

    model = model or _load(model_name, weights, download)
    dataset = open_dataset(data, format=format, images=images, split=split, class_names=class_names)
    records = [r for r in dataset.records if r.label is not None and r.image_path is not None]
    if not records:
        raise RsvlmError(f"{data}: no labelled images to classify (is this a scene-classification set?)")
    classes = dataset.classes
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[r.label] for r in records if r.label is not None], dtype=np.int64)
    vectors = _embed_with_progress(model, dataset, records, batch_size, cache_dir, show_progress)
    readable = [dataset.class_names[c] for c in classes]
    texts = class_text_embeddings(model, readable, load_templates(templates))
    source = {"model": model.name, "data": str(data), "format": dataset.format_name, "split": split}
    source["templates"] = templates
    splits = [r.split for r in records]
    return EmbeddingSet(vectors, labels, texts, readable, source=str(data), splits=splits), source


def embed_caption_dataset(
    model_name: str | None,
    data: Path,
    *,
    weights: Path | None = None,
    download: bool = False,
    images: Path | None = None,
    split: str | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    model: ContrastiveModel | None = None,
    show_progress: bool = True,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64], dict[str, Any]]:
    """Image embeddings, caption embeddings and the caption → image index of a caption set."""
    from rsvlm.data.registry import open_dataset

    model = model or _load(model_name, weights, download)
    dataset = open_dataset(data, images=images, split=split)
    records = [r for r in dataset.records if r.captions and r.image_path is not None]
    if not records:
        raise RsvlmError(f"{data}: no images with captions (is this a caption set? try --split test)")
    captions = [c for r in records for c in r.captions]
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions], dtype=np.int64)
    vectors = _embed_with_progress(model, dataset, records, batch_size, cache_dir, show_progress)
    texts = embed_texts(model, captions)
    source = {
        "model": model.name,
        "data": str(data),
        "split": split,
        "unmatched_images": len(dataset.unmatched),
    }
    return vectors, texts, owner, source
