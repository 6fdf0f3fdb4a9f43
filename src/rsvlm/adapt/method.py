"""What a few-shot adaptation method is (``Method``), what it learns from (``Support``) and what it returns
(``Fitted``).

A method is one module in ``rsvlm.adapt.methods`` that defines ``METHOD = Method(...)``: its name, the paper it
follows, its typed options, whether it needs the model's towers (prompt learning, LoRA) or only image features
(so it also runs on precomputed embeddings), and whether it can score classes it never saw (base-to-novel).
``fit`` turns a labelled support set into a ``Fitted``; ``restore`` rebuilds one from the tensors it saved. The
CLI, the few-shot protocol, the bench kind and the saved-adapter format all read this one object.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    import torch

    from rsvlm.models.protocols import ContrastiveModel

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Options = dict[str, Any]
Pixels = Callable[[Sequence[int]], "torch.Tensor"]
"""Indexes of support (or query) images → their preprocessed pixels, for methods that train the image tower."""


@dataclass(frozen=True)
class ClassSet:
    """The classes to score: readable names (what prompts say) and their zero-shot text embeddings."""

    names: list[str]
    text_weights: F32
    """(C, D) L2-normalised class embeddings, averaged over the prompt templates."""

    def __post_init__(self) -> None:
        if self.text_weights.shape[0] != len(self.names):
            raise RsvlmError(f"{len(self.names)} class names but {self.text_weights.shape[0]} class embeddings")


@dataclass
class Support:
    """A labelled few-shot set: what every method learns from."""

    features: F32
    """(n, D) L2-normalised image embeddings of the frozen base model."""
    labels: I64
    """(n,) class index of each example into ``classes``."""
    classes: ClassSet
    logit_scale: float
    """The base model's inverse temperature (100 for CLIP): zero-shot logits are ``logit_scale · cos``."""
    model: ContrastiveModel | None = None
    """The base model, for methods that run its towers; None for precomputed embeddings."""
    pixels: Pixels | None = None
    """Preprocessed support images, for methods that train the image tower; None when only features exist."""
    templates: list[str] = field(default_factory=list)
    """Prompt templates (``a satellite photo of {}.``) the class embeddings were averaged over."""

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.labels.shape != (self.features.shape[0],):
            raise RsvlmError(f"support features {self.features.shape} and labels {self.labels.shape} do not match")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes.names)):
            raise RsvlmError(f"support labels must be class indexes 0..{len(self.classes.names) - 1}")

    @property
    def shots(self) -> int:
        """Examples of the rarest class (the k of k-shot)."""
        counts = np.bincount(self.labels, minlength=len(self.classes.names))
        return int(counts.min()) if len(counts) else 0


class Fitted(Protocol):
    """A trained adapter: scores image features against classes, and knows which tensors to save."""

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """Tensors that ``Method.restore`` needs to rebuild this adapter (saved as safetensors)."""
        ...

    def logits(self, features: F32, classes: ClassSet) -> F32:
        """(n, C) class logits of image features (from ``image_model``'s tower) for ``classes``.

        A method that cannot generalise refuses classes other than the ones it was trained on.
        """
        ...

    def image_model(self, base: ContrastiveModel) -> ContrastiveModel:
        """The model whose image features ``logits`` expects: ``base`` itself unless the image tower was tuned."""
        ...


Fit = Callable[[Support, Options, int], Fitted]
"""(support set, validated options, seed) → fitted adapter."""


@dataclass(frozen=True)
class Base:
    """What a saved adapter is restored onto: its trained classes, the base model's temperature, the model."""

    classes: ClassSet
    logit_scale: float
    model: ContrastiveModel | None = None


Restore = Callable[[Mapping[str, npt.NDArray[Any]], Options, Base], Fitted]
"""(saved tensors, options, the base) → the same fitted adapter."""

_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
}


@dataclass(frozen=True)
class Method:
    """One adaptation method, registered by defining ``METHOD`` in a module of ``rsvlm.adapt.methods``."""

    name: str
    title: str
    paper: str
    """Citation of the paper the module implements (authors, venue, year)."""
    fit: Fit
    restore: Restore
    options: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    """Option → (type, default); types ``int``, ``float``, ``bool``, ``str`` or ``a|b|c`` (one of the words)."""
    needs_model: bool = False
    """Runs the model's towers (prompt learning, LoRA): not available on precomputed embeddings."""
    needs_pixels: bool = False
    """Trains the image tower: needs the support images, and scoring re-embeds images with the tuned tower."""
    generalises: bool = False
    """Scores classes it was not trained on (by name), so base-to-novel generalisation is measured."""
    trains: bool = True
    """False for the zero-shot baseline: nothing is learnt, shots are ignored."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def check_options(self, given: Mapping[str, Any] | None = None) -> Options:
        """Defaults overlaid with ``given``; an unknown key or a value of the wrong type is a one-line error."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            allowed = ", ".join(self.options) or "none"
            raise RsvlmError(f"method {self.name}: unknown option(s) {', '.join(unknown)} (options: {allowed})")
        out: Options = {}
        for key, (kind, default) in self.options.items():
            value = given.get(key, default)
            if "|" in kind:
                if value not in kind.split("|"):
                    raise RsvlmError(f"method {self.name}: option {key} must be one of {kind.replace('|', ', ')}")
            elif kind == "float" and _TYPES["int"](value):
                value = float(value)
            elif not _TYPES[kind](value):
                raise RsvlmError(f"method {self.name}: option {key} must be {kind}, got {value!r}")
            out[key] = value
        return out


def parse_option_values(pairs: Sequence[str]) -> dict[str, Any]:
    """``["lr=0.001", "epochs=20", "image=true"]`` → typed values (JSON numbers/booleans, else text)."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RsvlmError(f"option {pair!r}: expected KEY=VALUE, e.g. epochs=20")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


# -- helpers the methods share ---------------------------------------------------------------------------------
def softmax(logits: npt.NDArray[np.floating]) -> F32:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: F32 = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def zero_shot_logits(features: F32, classes: ClassSet, logit_scale: float) -> F32:
    out: F32 = (logit_scale * (features @ classes.text_weights.T)).astype(np.float32)
    return out


def check_same_classes(method: str, trained: Sequence[str], classes: ClassSet) -> None:
    """A method that learnt per-class parameters can only score those classes."""
    if list(trained) != list(classes.names):
        raise RsvlmError(
            f"{method} scores only the classes it was trained on ({', '.join(trained[:4])} …); "
            "use a method that generalises (zero-shot, clip-adapter, coop, cocoop, lora) for other classes"
        )


def torch_seed(seed: int) -> torch.Generator:
    """A seeded CPU generator (and the global seed) so a method's training is repeatable."""
    import torch

    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
