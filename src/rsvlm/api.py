"""rsvlm's public Python API: load a model, call it. ``rsvlm classify``, ``ask`` and ``caption`` go through it.

    import rsvlm
    from rsvlm import samples

    model = rsvlm.load_model()                                  # rsvlm-lite, ships with the package
    best = model.classify(samples.path("farmland"), ["farmland", "beach", "forest"])[0]
    chat = rsvlm.load_chat()                                    # rsvlm-lite-chat
    chat.ask(samples.path("trees"), "How many trees are there in this image?")

A few labelled images adapt the model to your classes (``rsvlm adapt methods`` lists the methods); the adapter
folder is tied to the model it was fitted on and gives ``classify`` its classes::

    adapter = model.fit_adapter("my_labelled_folder", method="tip-adapter-f", shots=8, seed=1)
    adapter.save("my_adapter")                                  # what `rsvlm adapt fit --out` writes
    adapted = rsvlm.load_model(adapter="my_adapter")            # another model than its base: refused
    adapted.classify(samples.path("farmland"))[0].label        # one of the adapter's classes

Images are file paths (JPEG, PNG, GeoTIFF …); ``Chat.ask`` also takes a ``RasterImage`` in memory. Errors a
user can fix are ``rsvlm.errors.RsvlmError`` with a one-line message naming the thing and the fix. Every
check that needs no model runs before the (slow) model load, so a typo costs no minutes.

This module sits just under ``rsvlm.cli`` in the layers: it may import anything below, nothing below imports it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.errors import RsvlmError
from rsvlm.geo.tiling import DEFAULT_MAX_TILES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from rsvlm.adapt.saved import Adapter
    from rsvlm.data.dataset import Dataset
    from rsvlm.data.sample import RasterImage
    from rsvlm.geo.analyse import SceneAnalysis
    from rsvlm.models.chat.protocol import ChatModel
    from rsvlm.models.protocols import ContrastiveModel

ImagePath = str | os.PathLike[str]
"""An image file: JPEG, PNG, GeoTIFF or anything GDAL reads."""

ImagePaths = ImagePath | Sequence[ImagePath]
"""One image file or several; results always come back as a list, one entry per image."""


def _paths(images: ImagePaths) -> list[Path]:
    if isinstance(images, str | os.PathLike):
        return [Path(images)]
    return [Path(p) for p in images]


def check_images(images: ImagePaths) -> list[Path]:
    """Read every image's header, so a missing or broken file fails at once, before a slow model load."""
    from rsvlm.data.raster import inspect_raster

    paths = _paths(images)
    if not paths:
        raise RsvlmError("no images given")
    for path in paths:
        inspect_raster(path)
    return paths


@dataclass(frozen=True)
class Classification:
    """One image's result (zero-shot, or an adapter's): every label's probability, most probable first."""

    image: Path
    probabilities: dict[str, float]

    @property
    def label(self) -> str:
        """The most probable label."""
        return next(iter(self.probabilities))

    @property
    def probability(self) -> float:
        """The most probable label's probability."""
        return next(iter(self.probabilities.values()))

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs (all when ``k`` is None)."""
        return list(self.probabilities.items())[:k]


def check_labels(
    labels: Sequence[str], templates: str = "rs-default", *, option: str = "labels"
) -> tuple[list[str], list[str]]:
    """The prompt name of each label and the prompt templates, refusing what would make scores lie.

    A label given twice, or two that read alike (``bare_land`` and ``BareLand``), would share one prompt and
    one score. ``option`` is how the caller names the labels in messages (the CLI: ``--labels``).
    """
    from rsvlm.data.names import class_name_map
    from rsvlm.tasks.templates import load_templates

    if isinstance(labels, str):
        raise RsvlmError(f"{option}: give a list of class names, e.g. ['forest', 'river'], not one string")
    if len(labels) < 2:
        raise RsvlmError(f"{option} needs at least two class names")
    repeated = sorted({n for n in labels if labels.count(n) > 1})
    if repeated:
        raise RsvlmError(f"{option} names {', '.join(repeated)} more than once; give each class once")
    prompts = load_templates(templates)
    readable = class_name_map(labels, fix=f"give each {option} entry a distinct name")
    return [readable[n] for n in labels], prompts


def check_adapter_labels(classes: Sequence[str], labels: Sequence[str] | None, *, option: str = "labels") -> list[str]:
    """An adapter's classes, which ``labels`` (when given) must name exactly, in any order: an adapter scores only
    the classes it learnt, so another list would silently mean other classes."""
    if labels is None:
        return list(classes)
    if isinstance(labels, str):
        raise RsvlmError(f"{option}: give a list of class names, e.g. ['forest', 'river'], not one string")
    if sorted(labels) != sorted(classes):
        raise RsvlmError(f"{option} must name exactly the adapter's classes ({', '.join(classes)}); or omit it")
    return list(classes)


class Model:
    """A contrastive (CLIP-style) model: images and texts in one embedding space, and zero-shot labels.

    With an ``adapter`` (``load_model(adapter=…)``, or ``model.adapter = model.fit_adapter(…)``), ``classify``
    scores the adapter's classes with it instead of zero-shot prompts.
    """

    def __init__(self, model: ContrastiveModel, adapter: Adapter | None = None) -> None:
        self.model = model
        """The underlying ``rsvlm.models.protocols.ContrastiveModel`` (for ``rsvlm.tasks`` and ``rsvlm.pipeline``)."""
        self._adapter: Adapter | None = None
        self.adapter = adapter

    def __repr__(self) -> str:
        with_adapter = f", adapter={self.adapter.method.name!r}" if self.adapter is not None else ""
        return f"rsvlm.Model({self.name!r}{with_adapter})"

    @property
    def adapter(self) -> Adapter | None:
        """The adapter ``classify`` applies (None: zero-shot); only one fitted on this very model is accepted."""
        return self._adapter

    @adapter.setter
    def adapter(self, adapter: Adapter | None) -> None:
        if adapter is not None:
            from rsvlm.adapt.saved import FIT_HINT, BaseModelId

            actual = BaseModelId.of_model(self.model)
            if adapter.base != actual:
                raise RsvlmError(
                    f"adapter was trained on {adapter.base.describe()}, not on {actual.describe()}; "
                    f"use it with that model, or {FIT_HINT}"
                )
        self._adapter = adapter

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def embed_dim(self) -> int:
        return self.model.embed_dim

    def embed_images(
        self, images: ImagePaths, *, batch_size: int = 32, cache_dir: Path | None = None, use_cache: bool = False
    ) -> npt.NDArray[np.float32]:
        """(N, D) L2-normalised float32 embeddings, one row per image, in order.

        ``use_cache``: keep each embedding on disk (``cache_dir``, default ``~/.cache/rsvlm/features``), keyed by
        model, weights, preprocessing and file content, so embedding the same files again is instant.
        """
        from rsvlm.pipeline import embed_images

        return embed_images(self.model, _paths(images), batch_size=batch_size, cache_dir=cache_dir, use_cache=use_cache)

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(N, D) L2-normalised float32 embeddings of the texts as written (no prompt templates)."""
        from rsvlm.pipeline import embed_texts

        if isinstance(texts, str):
            texts = [texts]
        return embed_texts(self.model, list(texts))

    def classify(
        self, images: ImagePaths, labels: Sequence[str] | None = None, *, templates: str = "rs-default"
    ) -> list[Classification]:
        """Probabilities of ``labels`` for each image: zero-shot (prompt ensemble, the model's own temperature), or
        the adapter's when the model has one (``labels`` may then be omitted, and must name exactly its classes).

        ``templates``: a template set (``rs-default``, ``rs-transclip-106``) or a text file of templates; an
        adapter keeps the class embeddings it was fitted with.
        """
        import numpy as np

        from rsvlm.pipeline import class_text_embeddings, embed_images
        from rsvlm.tasks.embeddings import average_normalised

        names: Sequence[str]
        if self.adapter is not None:
            names = check_adapter_labels(self.adapter.classes, labels)
            paths = check_images(images)
            vectors = embed_images(self.adapter.image_model(self.model), paths, use_cache=False)
            probs = self.adapter.probabilities(vectors)
        else:
            if labels is None:
                raise RsvlmError("labels: give at least two class names (or load the model with an adapter)")
            names = list(labels) if not isinstance(labels, str) else labels
            readable, prompts = check_labels(names, templates)
            paths = check_images(images)
            texts = average_normalised(list(class_text_embeddings(self.model, readable, prompts).values()))
            vectors = embed_images(self.model, paths, use_cache=False)
            logits = float(self.model.logit_scale) * vectors @ texts.T
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
        return [
            Classification(path, {names[i]: float(p[i]) for i in np.argsort(-p, kind="stable")})
            for path, p in zip(paths, probs, strict=True)
        ]

    def fit_adapter(
        self,
        data: str | os.PathLike[str] | Dataset,
        method: str = "tip-adapter-f",
        *,
        shots: int | None = None,
        seed: int = 1,
        options: Mapping[str, object] | None = None,
        split: str | None = None,
        templates: str = "rs-default",
        batch_size: int = 32,
        cache_dir: Path | None = None,
        use_cache: bool = False,
    ) -> Adapter:
        """``method`` (``rsvlm adapt methods``) fitted on this model from the labelled images of ``data``.

        ``data``: a class-per-folder tree, any labelled dataset path, or a dataset from ``open_dataset`` (give its
        format, images and class names there). All its labelled images, or ``shots`` per class drawn with ``seed``
        (a smaller class is refused); ``split``: train where the data has one unless named, ``"all"`` every split.
        Returns the adapter: ``.save(folder)`` writes it, ``model.adapter = …`` makes ``classify`` use it.
        """
        from rsvlm.adapt.labelled import choose_images, fit_on_images
        from rsvlm.adapt.methods import get_method

        chosen_method = get_method(method)
        checked = chosen_method.check_options(dict(options or {}))
        chosen = choose_images(data, split=split, shots=shots, seed=seed)
        return fit_on_images(
            chosen_method, self.model, chosen, options=checked, templates=templates, batch_size=batch_size,
            cache_dir=cache_dir, use_cache=use_cache,
        )  # fmt: skip


def _check_adapter_name(folder: str | os.PathLike[str], name: str | None) -> None:
    """An adapter for another model is refused by name before that model's weights are read."""
    from rsvlm.adapt.saved import FIT_HINT, read_adapter_config
    from rsvlm.models.registry import default_spec, get_spec

    base = read_adapter_config(Path(folder)).get("base")
    trained = base.get("name") if isinstance(base, dict) else None
    target = get_spec(name).name if name is not None else default_spec().name
    if isinstance(trained, str) and trained != target:
        raise RsvlmError(
            f"{os.fspath(folder)}: adapter was trained on {trained}, not on {target}; "
            f"use it with --model {trained}, or {FIT_HINT}"
        )


def load_model(
    name_or_path: str | os.PathLike[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    adapter: str | os.PathLike[str] | None = None,
) -> Model:
    """A contrastive model: a registry name (``rsvlm models``), a JSON model-spec file, or the default model.

    ``weights``: a local weights file (or folder, for rsvlm-lite). Nothing is downloaded unless ``download``;
    weights are read without running code (safetensors, ``torch.load(weights_only=True)``). ``adapter``: a folder
    from ``rsvlm adapt fit`` that ``classify`` then applies; one fitted on another model (name or weights) is
    refused in one line.
    """
    from rsvlm.models.openclip import load_contrastive

    name = os.fspath(name_or_path) if name_or_path is not None else None
    if adapter is not None:
        _check_adapter_name(adapter, name)
    model = Model(load_contrastive(name, Path(weights) if weights is not None else None, download=download))
    if adapter is not None:
        from rsvlm.adapt.saved import load_adapter

        model.adapter = load_adapter(Path(adapter), model.model)
    return model


class Chat:
    """A chat model (image + question → text), greedy and deterministic: the same question, the same answer."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        """The underlying ``rsvlm.models.chat.protocol.ChatModel`` (batched ``generate``)."""

    def __repr__(self) -> str:
        return f"rsvlm.Chat({self.name!r})"

    @property
    def name(self) -> str:
        return self.model.name

    def ask(self, image: ImagePath | RasterImage, question: str, *, max_new_tokens: int = 64) -> str:
        """The model's answer to one question about one image (a file, or pixels already read)."""
        from rsvlm.data.raster import read_image
        from rsvlm.data.sample import RasterImage
        from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig

        pixels = image if isinstance(image, RasterImage) else read_image(Path(image))
        config = GenerationConfig(max_new_tokens=max_new_tokens)
        return self.model.generate([ChatRequest.ask(pixels, question)], config)[0]

    def caption(self, images: ImagePaths, *, max_new_tokens: int = 48, batch_size: int = 8) -> list[str]:
        """One caption per image, asked with the captioning protocol's prompt for this model's family."""
        return [text for _, text in self.iter_captions(images, max_new_tokens=max_new_tokens, batch_size=batch_size)]

    def iter_captions(
        self, images: ImagePaths, *, max_new_tokens: int = 48, batch_size: int = 8
    ) -> Iterator[tuple[Path, str]]:
        """``(image, caption)`` pairs as each batch finishes, so a long list shows progress."""
        from rsvlm.data.raster import read_image
        from rsvlm.data.sample import Sample
        from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
        from rsvlm.tasks.chat.registry import make_task

        paths = _paths(images)
        task = make_task("caption")
        config = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            requests = [
                ChatRequest.ask(read_image(p), task.prompt(Sample(id=p.name, image_path=p), self.model.family))
                for p in batch
            ]
            yield from zip(batch, self.model.generate(requests, config), strict=True)


def load_chat(
    name_or_path: str | os.PathLike[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
) -> Chat:
    """A chat model: a registered name (``rsvlm models``), a local model folder, or the default (rsvlm-lite-chat).

    ``weights``: the local folder holding a named model (rsvlm never downloads chat weights); given alone, it
    is the model folder. The default model converts Gemma-3-270M once into ``~/.cache/rsvlm`` (~80 s).
    """
    from rsvlm.models.chat.registry import DEFAULT_CHAT
    from rsvlm.models.chat.registry import load_chat as load

    folder = Path(weights) if weights is not None else None
    if name_or_path is None and folder is not None:
        return Chat(load(str(folder), device=device))
    source = DEFAULT_CHAT if name_or_path is None else os.fspath(name_or_path)
    return Chat(load(source, weights=folder, device=device))


def open_dataset(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    images: str | os.PathLike[str] | None = None,
    split: str | None = None,
    class_names: Mapping[str, str] | None = None,
) -> Dataset:
    """Any dataset ``rsvlm data formats`` lists (detected from the path unless ``format`` names one).

    ``len(ds)``, ``ds[i]`` (a ``Sample`` with pixels), ``ds.records`` (no pixels), ``ds.classes``,
    ``ds.unmatched`` (what could not be paired, never dropped silently).
    """
    from rsvlm.data.registry import open_dataset as open_any

    folder = os.fspath(images) if images is not None else None
    return open_any(os.fspath(path), format=format, images=folder, split=split, class_names=class_names)


def analyse_scene(
    scene: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: Model | None = None,
    bands: str | None = None,
    classes: str | Sequence[str] | None = None,
    queries: Sequence[str] = (),
    tile: int | None = None,
    stride: int | None = None,
    max_tiles: int | None = DEFAULT_MAX_TILES,
    scheduler: str | None = None,
    adapter: Adapter | str | os.PathLike[str] | None = None,
) -> SceneAnalysis:
    """Land-cover and text-query maps of a whole scene, as GeoTIFFs, PNGs and ``summary.json`` in ``out``.

    ``scene``: a raster of any band count or a folder with one file per band; ``bands``: its sensor preset
    (guessed when omitted). ``classes``: a preset (``landcover``, ``aid``, ``water-land``) or class names
    (default ``landcover``), mapped zero-shot from prompts. ``adapter`` (an ``Adapter`` or a saved adapter folder,
    e.g. the ``adapter`` folder of ``rsvlm demo --labels``; without ``classes``, the model's own adapter if it has
    one) maps its classes with its head instead; ``summary.json`` then names it. Queries are scored from text.
    ``tile``/``stride`` in scene pixels (default ≈ 640 m on the ground); a plan over ``max_tiles`` tiles is
    refused before any work (``None``: no limit). Returns the analysis (``class_share``, ``files``, ``picks``).
    """
    from rsvlm.adapt.saved import Adapter as SavedAdapter
    from rsvlm.adapt.saved import load_adapter, read_adapter_config
    from rsvlm.geo.analyse import analyse_scene as analyse
    from rsvlm.geo.analyse import class_list, scene_overview, write_summary
    from rsvlm.geo.planning import plan_settings
    from rsvlm.geo.source import open_scene

    names: list[str] | None = None
    if classes is not None:
        names = class_list(classes) if isinstance(classes, str) else list(classes)
        repeated = sorted({c for c in names if names.count(c) > 1})
        if len(names) < 2 or repeated:
            problem = f"{', '.join(repeated)} given more than once" if repeated else "fewer than two given"
            raise RsvlmError(f"classes: {problem} (name at least two classes, each once, or give a preset name)")
    if adapter is not None and not isinstance(adapter, SavedAdapter):
        read_adapter_config(os.fspath(adapter))  # a wrong folder fails before the model loads
    opened = open_scene(os.fspath(scene), bands)
    settings = plan_settings(opened, tile, stride, max_tiles)
    overview = scene_overview(opened)  # a scene without valid pixels fails before the model loads
    model = model or load_model()
    chosen = adapter if adapter is not None else model.adapter if names is None else None
    if chosen is not None and not isinstance(chosen, SavedAdapter):
        chosen = load_adapter(os.fspath(chosen), model.model)
    folder = Path(out)
    analysis = analyse(
        opened,
        model.model,
        folder,
        classes=names,
        queries=queries,
        settings=settings,
        scheduler=scheduler,
        overview=overview,
        adapter=chosen,
    )
    write_summary(analysis, folder)
    return analysis
