"""A trained adapter as a folder: ``adapter.safetensors`` (its tensors and the class text embeddings) and
``adapter.json`` (method, options, classes, shots, seed, and the base model's name and weights digest).

An adapter is tied to the model whose features it saw: loading it onto another model (another name, other
weights, another preprocessing or embedding size) is refused in one line, because its prototypes, cache keys or
context vectors mean nothing in another embedding space. Tensors are safetensors: nothing executes on load.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.adapt.method import F32, Base, ClassSet, Fitted, Method, Options, Support, softmax
from rsvlm.digests import json_digest
from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.version import __version__

if TYPE_CHECKING:
    from rsvlm.models.protocols import ContrastiveModel

FORMAT = "rsvlm-adapter/1"
CONFIG_FILE = "adapter.json"
WEIGHTS_FILE = "adapter.safetensors"
_TEXT_KEY = "__class_text_weights__"
FIT_HINT = "fit one for this model with `rsvlm adapt fit`"


@dataclass(frozen=True)
class BaseModelId:
    """Who produced the features an adapter saw."""

    name: str
    weights_id: str
    preprocess_id: str
    embed_dim: int

    @classmethod
    def of_model(cls, model: ContrastiveModel) -> BaseModelId:
        return cls(model.name, model.weights_id, model.preprocess_id, int(model.embed_dim))

    @classmethod
    def of_embeddings(cls, source: str, images: F32, text_weights: F32) -> BaseModelId:
        """Precomputed embeddings: the model is unknown, so its class text embeddings stand for its identity."""
        digest = json_digest(np.round(text_weights.astype(np.float64), 5).tolist())
        return cls(f"embeddings:{Path(source).name or source}", digest, "precomputed", int(images.shape[1]))

    def describe(self) -> str:
        return f"{self.name} (weights {self.weights_id[:12]}, {self.preprocess_id}, {self.embed_dim}-d)"


@dataclass
class Adapter:
    """A fitted method bound to its classes and base model: what classify, maps, eval and bench apply."""

    method: Method
    options: Options
    fitted: Fitted
    classes: list[str]
    """Class labels as the training data named them (folder names, GeoJSON values)."""
    class_set: ClassSet
    """Readable names (what prompts say) and their zero-shot text embeddings on the base model."""
    base: BaseModelId
    logit_scale: float
    shots: int | None = None
    seed: int = 0
    templates: str = "rs-default"
    trained_on: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def logits(self, features: F32) -> F32:
        return self.fitted.logits(features, self.class_set)

    def probabilities(self, features: F32) -> F32:
        """(n, C) class probabilities of image features from ``image_model``."""
        return softmax(self.logits(features))

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        """The model to embed images with (the base, unless the method tuned the image tower)."""
        return self.fitted.image_model(base)

    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method.name,
            "paper": self.method.paper,
            "options": self.options,
            "classes": self.classes,
            "class_names": self.class_set.names,
            "templates": self.templates,
            "shots": self.shots,
            "seed": self.seed,
            "logit_scale": self.logit_scale,
            "base": asdict(self.base),
            "trained_on": self.trained_on,
            "seconds": round(self.seconds, 3),
            "rsvlm": __version__,
        }

    def save(self, folder: str | Path) -> Path:
        """Write the adapter folder (tensors first, then the JSON that makes the folder an adapter)."""
        from safetensors.numpy import save_file

        from rsvlm.fileio import write_error

        folder = Path(folder)
        tensors = {k: np.ascontiguousarray(v) for k, v in self.fitted.state().items()}
        if _TEXT_KEY in tensors:
            raise RsvlmError(f"method {self.method.name}: tensor name {_TEXT_KEY} is reserved")
        tensors[_TEXT_KEY] = np.ascontiguousarray(self.class_set.text_weights.astype(np.float32))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{WEIGHTS_FILE}.tmp"
            save_file(tensors, str(tmp))
            tmp.replace(folder / WEIGHTS_FILE)
        except OSError as exc:
            raise write_error(folder / WEIGHTS_FILE, exc) from None
        atomic_write_json(folder / CONFIG_FILE, self.config(), indent=2, ensure_ascii=False)
        return folder


def fit_adapter(
    method: Method,
    support: Support,
    classes: Sequence[str],
    base: BaseModelId,
    *,
    options: Options | None = None,
    seed: int = 0,
    templates: str = "rs-default",
    trained_on: dict[str, Any] | None = None,
) -> Adapter:
    """Validate options, fit, and bind the result to its classes and base model (timed)."""
    if len(classes) != len(support.classes.names):
        raise RsvlmError(f"{len(classes)} class labels for {len(support.classes.names)} class names")
    checked = method.check_options(options)
    if method.needs_model and support.model is None:
        raise RsvlmError(f"method {method.name} runs the model's towers: give --model (not --embeddings) to fit it")
    if method.needs_pixels and support.pixels is None:
        raise RsvlmError(f"method {method.name} tunes the image tower: it needs the images, not only their features")
    start = time.perf_counter()
    fitted = method.fit(support, checked, seed)
    seconds = time.perf_counter() - start
    return Adapter(
        method, checked, fitted, list(classes), support.classes, base, support.logit_scale,
        shots=support.shots if method.trains else None, seed=seed, templates=templates,
        trained_on=dict(trained_on or {}), seconds=seconds,
    )  # fmt: skip


def read_adapter_config(folder: str | Path) -> dict[str, Any]:
    """The adapter's JSON, checked to be one (a one-line error names what is wrong)."""
    from rsvlm.data.dataset import read_json_object

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "adapter folder not found", "give the folder `rsvlm adapt fit --out` wrote")
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise DataError(folder, f"not an adapter folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})", FIT_HINT)
    config = read_json_object(folder / CONFIG_FILE)
    if config.get("format") != FORMAT:
        raise DataError(folder / CONFIG_FILE, f"format is {config.get('format')!r}, not {FORMAT!r}", FIT_HINT)
    for key in ("method", "classes", "class_names", "base", "logit_scale"):
        if key not in config:
            raise DataError(folder / CONFIG_FILE, f"missing key {key!r}", FIT_HINT)
    return config


def check_base(folder: Path, config: dict[str, Any], actual: BaseModelId) -> BaseModelId:
    """Refuse an adapter trained on another model, naming both."""
    try:
        saved = BaseModelId(**config["base"])
    except TypeError:
        raise DataError(folder / CONFIG_FILE, "its 'base' entry is malformed", FIT_HINT) from None
    if saved != actual:
        raise RsvlmError(
            f"{folder}: adapter was trained on {saved.describe()}, not on {actual.describe()}; "
            f"use it with that model, or {FIT_HINT}"
        )
    return saved


def load_adapter(folder: str | Path, model: ContrastiveModel | None, *, base: BaseModelId | None = None) -> Adapter:
    """An adapter folder applied to ``model`` (or to precomputed embeddings whose identity is ``base``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from rsvlm.adapt.methods import get_method

    folder = Path(folder)
    config = read_adapter_config(folder)
    actual = base if base is not None else BaseModelId.of_model(model) if model is not None else None
    if actual is None:
        raise RsvlmError("an adapter needs the model (or embeddings) it is applied to")
    saved = check_base(folder, config, actual)
    method = get_method(str(config["method"]))
    if method.needs_model and model is None:
        raise RsvlmError(f"{folder}: a {method.name} adapter runs the model's towers; apply it with --model")
    options = method.check_options(config.get("options") or {})
    try:
        tensors: dict[str, npt.NDArray[Any]] = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(
            folder / WEIGHTS_FILE, f"not a readable safetensors file ({str(exc)[:120]})", FIT_HINT
        ) from None
    damaged = [k for k, v in tensors.items() if np.issubdtype(v.dtype, np.floating) and np.isnan(v).any()]
    if damaged:
        raise DataError(folder / WEIGHTS_FILE, f"tensor {damaged[0]} holds NaN (the file is damaged)", FIT_HINT)
    if _TEXT_KEY not in tensors:
        raise DataError(folder / WEIGHTS_FILE, "holds no class text embeddings", FIT_HINT)
    names = [str(n) for n in config["class_names"]]
    classes = [str(c) for c in config["classes"]]
    text = np.asarray(tensors.pop(_TEXT_KEY), np.float32)
    if len(names) != len(classes) or text.shape != (len(names), saved.embed_dim):
        raise DataError(folder, "classes, class names and class embeddings disagree in number", FIT_HINT)
    class_set = ClassSet(names, text)
    scale = float(config["logit_scale"])
    fitted = method.restore(tensors, options, Base(class_set, scale, model))
    shots = config.get("shots")
    return Adapter(
        method, options, fitted, classes, class_set, saved, scale,
        shots=int(shots) if isinstance(shots, int) else None, seed=int(config.get("seed", 0)),
        templates=str(config.get("templates", "rs-default")), trained_on=dict(config.get("trained_on") or {}),
        seconds=float(config.get("seconds", 0.0)),
    )  # fmt: skip
