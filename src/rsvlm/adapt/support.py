"""Building support sets: class embeddings for a model, k-shot draws, and pixels for image-tower methods.

One place for the rules every label source follows (a labelled folder, a k-shot draw from any reader, tiles under
GeoJSON labels): a class with fewer examples than the shots asked for is an error naming the class and its size,
never a silently smaller draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import I64, ClassSet, Pixels
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.protocols import ContrastiveModel


def model_class_set(model: ContrastiveModel, names: Sequence[str], templates: Sequence[str]) -> ClassSet:
    """Readable class names and their prompt-ensemble embeddings on ``model`` (``a|b`` aliases averaged)."""
    from rsvlm.pipeline import class_text_embeddings
    from rsvlm.tasks.embeddings import average_normalised

    per_template = class_text_embeddings(model, list(names), list(templates))
    return ClassSet(list(names), average_normalised(list(per_template.values())).astype(np.float32))


def draw_shots(labels: npt.NDArray[np.integer], shots: int, seed: int, class_names: Sequence[str]) -> I64:
    """Sorted indexes of ``shots`` examples per class, drawn with ``seed`` (the same draw for the same inputs).

    Every class must have at least ``shots`` examples: a smaller class is refused, naming it and its size.
    """
    if isinstance(shots, bool) or shots < 1:
        raise RsvlmError(f"shots must be at least 1 example per class, got {shots}")
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for c, name in enumerate(class_names):
        pool = np.flatnonzero(np.asarray(labels) == c)
        if len(pool) < shots:
            raise RsvlmError(
                f"class {name!r} has {len(pool)} training example(s), fewer than --shots {shots}; "
                "lower --shots or add examples of that class"
            )
        picked.extend(rng.choice(pool, shots, replace=False).tolist())
    return np.array(sorted(picked), dtype=np.int64)


def check_enough_classes(labels: npt.NDArray[np.integer], class_names: Sequence[str]) -> None:
    """At least two classes, each with an example: an adapter for one class has nothing to tell apart."""
    present = sorted({int(x) for x in np.asarray(labels)})
    if len(present) < 2:
        raise RsvlmError(f"adapting needs labelled examples of at least 2 classes, got {len(present)}")
    missing = [class_names[c] for c in range(len(class_names)) if c not in present]
    if missing:
        raise RsvlmError(f"class(es) {', '.join(missing[:5])} have no labelled example; label them or drop them")


def pixel_loader(model: ContrastiveModel, items: Sequence[object], load: Callable[[object], RasterImage]) -> Pixels:
    """Preprocessed pixels of ``items[i]`` on demand (image-tower methods read images batch by batch)."""
    import torch

    def pixels(indexes: Sequence[int]) -> torch.Tensor:
        return torch.stack([model.preprocess(load(items[int(i)])) for i in indexes])

    return pixels
