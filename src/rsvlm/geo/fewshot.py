"""Few-shot scene maps: the tiles under GeoJSON labels (``rsvlm.geo.labels``) as a support set, and an adapter
fitted on it, whose head then maps the scene (``analyse_scene(..., adapter=...)``).

The tiles are read and stretched exactly as the maps read them (``Scene.read`` + ``model_image``, the scene-wide
stretch), so the adapter is trained on what it will be shown; their embeddings are cached by their pixels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.adapt.method import Support
    from rsvlm.adapt.saved import Adapter
    from rsvlm.data.bands import BandStats
    from rsvlm.data.sample import RasterImage
    from rsvlm.geo.labels import SceneLabels
    from rsvlm.geo.source import Scene
    from rsvlm.models.protocols import ContrastiveModel

DEFAULT_METHOD = "prototype"
"""Fitted from labels unless the user picks another: training-free (the nearest class mean of the labelled tiles),
so it fits in milliseconds, and the best feature method on the Sen1Floods11 chip (water IoU 0.47 from 20 points
per class against 0.21 zero-shot; CLIP-Adapter 0.44, Tip-Adapter-F 0.28; benchmarks/results/fewshot_maps.md).
It ignores the class names, so where zero-shot is already good (the LoveDA tiles) it can do worse; the demo
report shows both maps."""


@dataclass(frozen=True)
class LabelledScene:
    """One scene, the labels read over it (``read_labels``) and its stretch (``scene_stats``, as its map uses)."""

    scene: Scene
    labels: SceneLabels
    stats: BandStats


def tile_images(part: LabelledScene, model: ContrastiveModel) -> list[RasterImage]:
    """Each labelled tile as the model is shown it in a map (the same read, bands and stretch)."""
    from rsvlm.geo.maps import model_image

    scene = part.scene
    return [model_image(model, scene.read(t.window)[0], scene.rgb, part.stats) for t in part.labels.tiles]


def label_support(
    parts: Sequence[LabelledScene],
    model: ContrastiveModel,
    *,
    templates: Sequence[str] | None = None,
    cache_dir: Path | None = None,
) -> tuple[Support, list[str]]:
    """The labelled tiles of one or more scenes embedded by ``model`` (cached by their pixels) as one support set,
    and its class values. Classes are matched across scenes by value; at least two must have tiles in all."""
    from rsvlm.adapt.method import Support
    from rsvlm.adapt.support import check_enough_classes, model_class_set, pixel_loader
    from rsvlm.geo.label_classes import sort_key
    from rsvlm.pipeline import embed_cached
    from rsvlm.tasks.templates import load_templates

    if not parts:
        raise RsvlmError("no labelled scene to learn from")
    names: dict[str, str] = {}
    for part in parts:
        for value, name in zip(part.labels.classes, part.labels.names, strict=True):
            if names.setdefault(value, name) != name:
                raise RsvlmError(f"class {value!r} is named {names[value]!r} in one scene and {name!r} in another")
    values = sorted(names, key=sort_key)
    images = [image for part in parts for image in tile_images(part, model)]
    labels = np.array([values.index(p.labels.classes[t.label]) for p in parts for t in p.labels.tiles], np.int64)
    check_enough_classes(labels, values)
    prompts = list(templates) if templates is not None else load_templates()
    features = embed_cached(model, images, _same, _pixels_key, cache_dir=cache_dir)
    classes = model_class_set(model, [names[v] for v in values], prompts)
    pixels = pixel_loader(model, images, _same)  # type: ignore[arg-type]
    return Support(features, labels, classes, float(model.logit_scale), model, pixels, prompts), values


def fit_scene_adapter(
    parts: Sequence[LabelledScene],
    model: ContrastiveModel,
    *,
    method: str = DEFAULT_METHOD,
    options: Mapping[str, Any] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> Adapter:
    """An adapter fitted on the tiles under the labels of ``parts`` (classes named by their values, e.g.
    ``open_water``; the labels' summaries are kept in the adapter's ``trained_on``)."""
    from rsvlm.adapt.methods import get_method
    from rsvlm.adapt.saved import BaseModelId, fit_adapter
    from rsvlm.tasks.templates import DEFAULT_SET

    chosen = get_method(method)
    support, values = label_support(parts, model, cache_dir=cache_dir)
    trained_on = {"scenes": [str(p.scene.path) for p in parts], "labels": [p.labels.summary() for p in parts]}
    return fit_adapter(
        chosen, support, values, BaseModelId.of_model(model),
        options=dict(options or {}), seed=seed, templates=DEFAULT_SET, trained_on=trained_on,
    )  # fmt: skip


def _same(image: RasterImage) -> RasterImage:
    return image


def _pixels_key(image: RasterImage) -> str:
    """A feature-cache key for an in-memory tile: its pixels, their type and shape, and its band names."""
    digest = hashlib.sha256(np.ascontiguousarray(image.data).tobytes())
    digest.update(f"{image.data.dtype}|{image.data.shape}|{','.join(image.bands)}".encode())
    return f"tile-{digest.hexdigest()}"
