"""Precomputed embeddings as a task input, so published results can be reproduced without weights.

Reads the layout of RS-TransCLIP's released results (``images.pt``, ``classes.pt`` and one
``texts_<template with spaces as underscores>.pt`` per prompt template, plus ``texts_averageprompt.pt``)
and writes the same layout for embeddings rsvlm computes itself. Tensors load with
``torch.load(weights_only=True)``: a file that needs code to unpickle is refused, never executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import DataError
from rsvlm.fileio import read_text

AVERAGE = "averageprompt"
"""Name of the class-text embeddings averaged over all templates, as in the released files."""


def load_tensor(path: Path) -> npt.NDArray[Any]:
    """A tensor file as a numpy array, loaded safely (safetensors or weights-only torch.load)."""
    if not path.is_file():
        raise DataError(path, "file not found", "check the embeddings folder")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, TypeError) as exc:
            raise DataError(path, f"not a readable safetensors file: {str(exc).splitlines()[0][:160]}") from None
        if len(tensors) != 1:
            raise DataError(path, f"expected one tensor, found {len(tensors)}")
        return next(iter(tensors.values()))
    import pickle

    import torch

    try:
        value = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0]
        raise DataError(
            path, f"refused: the file needs code execution to load ({first[:120]})", "use tensors-only files"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise DataError(path, f"not a readable tensor file: {str(exc).splitlines()[0][:160]}") from None
    if not isinstance(value, torch.Tensor):
        raise DataError(path, f"expected a tensor, found {type(value).__name__}")
    array: npt.NDArray[Any] = value.detach().cpu().numpy()
    return array


_NEEDS = "an embeddings folder needs images, classes, texts_*"
_RETRIEVAL_NEEDS = "retrieval embeddings need images, captions, caption_image"


def _pick(folder: Path, stem: str, needs: str) -> Path:
    """``<stem>.safetensors`` or ``<stem>.pt`` in ``folder``."""
    for suffix in (".safetensors", ".pt"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise DataError(folder / f"{stem}.pt", "file not found", needs)


def template_from_filename(stem: str) -> str:
    """``texts_a_satellite_photo_of_a`` → ``a satellite photo of a``."""
    return stem.removeprefix("texts_").replace("_", " ")


def _find_class_names(folder: Path, n_classes: int) -> list[str] | None:
    """Readable class names from the release's ``datasets/<NAME>/class_changes.txt``, when reachable."""
    own = folder / "class_names.txt"
    if own.exists():
        names = [n.strip() for n in read_text(own, "class-name list").splitlines() if n.strip()]
        return names if len(names) == n_classes else None
    parts = folder.resolve().parts
    if "results" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("results")
    if i + 1 >= len(parts):
        return None
    candidate = Path(*parts[:i]) / "datasets" / parts[i + 1] / "class_changes.txt"
    if not candidate.is_file():
        return None
    names = [n.strip() for n in read_text(candidate, "class-name list").splitlines() if n.strip()]
    return names if len(names) == n_classes else None


@dataclass
class EmbeddingSet:
    """Image embeddings with labels, and class-text embeddings per prompt template."""

    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    texts: dict[str, npt.NDArray[np.float32]]
    class_names: list[str]
    source: str = ""
    dtypes: dict[str, str] = field(default_factory=dict)
    splits: list[str | None] = field(default_factory=list)
    """Dataset split of each image, when the embeddings come from a dataset with splits."""

    @property
    def templates(self) -> list[str]:
        """Individual templates (the averaged entry excluded), in file-name order."""
        return [t for t in self.texts if t != AVERAGE]

    def text_embeddings(self, template: str = AVERAGE) -> npt.NDArray[np.float32]:
        """Class-text embeddings for one template; ``averageprompt`` is computed when not stored."""
        if template in self.texts:
            return self.texts[template]
        if template == AVERAGE and self.templates:
            return average_normalised([self.texts[t] for t in self.templates])
        known = ", ".join(sorted(self.texts)[:5])
        raise DataError(Path(self.source), f"no text embeddings for template {template!r}", f"known: {known} …")


def average_normalised(per_template: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """CLIP's prompt ensembling: normalise each template's class embedding, average, renormalise."""
    stacked = np.stack([l2_normalise(t) for t in per_template])
    return l2_normalise(stacked.mean(axis=0))


def l2_normalise(x: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    x = x.astype(np.float32, copy=False)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: npt.NDArray[np.float32] = x / np.maximum(norms, 1e-12)
    return out


def load_embedding_dir(folder: str | Path, class_names: list[str] | None = None) -> EmbeddingSet:
    """Read an embeddings folder in the released layout (``.pt`` or ``.safetensors`` files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "embeddings folder not found", "check the path")

    raw_images = load_tensor(_pick(folder, "images", _NEEDS))
    labels = load_tensor(_pick(folder, "classes", _NEEDS)).astype(np.int64)
    if raw_images.ndim != 2 or labels.shape != (raw_images.shape[0],) or not len(labels):
        raise DataError(folder, f"images {raw_images.shape} and classes {labels.shape} do not match (or are empty)")
    _check_numbers(folder / "images", raw_images)
    text_files = sorted({p.stem: p for p in folder.glob("texts_*") if p.suffix in (".pt", ".safetensors")}.values())
    if not text_files:
        raise DataError(folder, "no texts_<template>.pt files", "an embeddings folder needs class-text embeddings")
    texts: dict[str, npt.NDArray[np.float32]] = {}
    dtypes = {"images": str(raw_images.dtype)}
    for path in text_files:
        array = load_tensor(path)
        if array.ndim != 2 or array.shape[1] != raw_images.shape[1]:
            raise DataError(path, f"text embeddings {array.shape} do not match image dimension {raw_images.shape[1]}")
        _check_numbers(path, array)
        texts[template_from_filename(path.stem)] = l2_normalise(array)
    shapes = {a.shape for a in texts.values()}
    if len(shapes) != 1:
        raise DataError(folder, f"the texts_* files disagree on the number of classes ({sorted(shapes)})")
    n_classes = next(iter(texts.values())).shape[0]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(folder, f"labels outside 0..{n_classes - 1}")
    names = class_names or _find_class_names(folder, n_classes) or [f"class_{i}" for i in range(n_classes)]
    if len(names) != n_classes:
        raise DataError(folder, f"{len(names)} class names for {n_classes} classes")
    return EmbeddingSet(l2_normalise(raw_images), labels, texts, names, source=str(folder), dtypes=dtypes)


def _check_numbers(path: Path, array: npt.NDArray[Any]) -> None:
    """Embeddings must be finite numbers: NaN or text would give silently meaningless scores."""
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(path, f"expected real numbers, found {array.dtype}")
    if not np.isfinite(array).all():
        raise DataError(path, "holds NaN or infinite values")


def save_embedding_dir(folder: str | Path, embeddings: EmbeddingSet) -> None:
    """Write embeddings in the same layout (safetensors: no pickle on the way back in)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"images": np.ascontiguousarray(embeddings.images)}, str(folder / "images.safetensors"))
    save_file({"classes": np.ascontiguousarray(embeddings.labels)}, str(folder / "classes.safetensors"))
    for template, array in embeddings.texts.items():
        name = "texts_" + template.replace(" ", "_") + ".safetensors"
        save_file({"texts": np.ascontiguousarray(array)}, str(folder / name))
    (folder / "class_names.txt").write_text("\n".join(embeddings.class_names) + "\n")


def load_retrieval_dir(
    folder: str | Path,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Retrieval embeddings: ``images``, ``captions`` and ``caption_image`` (index of each caption's image)."""
    folder = Path(folder)

    if not folder.is_dir():
        raise DataError(folder, "embeddings folder not found", "check the path")
    raw_images = load_tensor(_pick(folder, "images", _RETRIEVAL_NEEDS))
    raw_captions = load_tensor(_pick(folder, "captions", _RETRIEVAL_NEEDS))
    raw_owner = load_tensor(_pick(folder, "caption_image", _RETRIEVAL_NEEDS))
    if raw_images.ndim != 2 or raw_captions.ndim != 2 or raw_images.shape[1] != raw_captions.shape[1]:
        raise DataError(
            folder, f"images {raw_images.shape} and captions {raw_captions.shape} must be (N, D) and (M, D)"
        )
    if not len(raw_images) or not len(raw_captions):
        raise DataError(folder, "no images or no captions to retrieve")
    _check_numbers(folder / "images", raw_images)
    _check_numbers(folder / "captions", raw_captions)
    owner = raw_owner.astype(np.int64)
    if owner.shape != (raw_captions.shape[0],) or owner.min() < 0 or owner.max() >= raw_images.shape[0]:
        raise DataError(folder, "caption_image must give one valid image index per caption")
    images, captions = l2_normalise(raw_images), l2_normalise(raw_captions)
    return images, captions, owner
