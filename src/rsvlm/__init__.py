"""rsvlm: vision-language models for remote-sensing imagery.

    import rsvlm
    model = rsvlm.load_model()                         # the default contrastive model, ships with the package
    print(model.classify(rsvlm.samples.photos(), ["farmland", "beach", "parking lot"]))

The public API (``rsvlm.api``): ``load_model`` → ``Model`` (``embed_images``, ``embed_texts``, ``classify``),
``load_chat`` → ``Chat`` (``ask``, ``caption``), ``open_dataset``, ``analyse_scene``; ``rsvlm.samples`` holds
real sample images. Importing the package is cheap on purpose: the API and heavy libraries (torch, rasterio,
transformers) load on first use (PEP 562), so ``import rsvlm`` and the CLI start instantly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rsvlm import samples
    from rsvlm.api import (
        Chat,
        Classification,
        Model,
        analyse_scene,
        load_chat,
        load_model,
        open_dataset,
    )
    from rsvlm.errors import RsvlmError

__version__ = "0.1.0"

__all__ = [
    "Chat",
    "Classification",
    "Model",
    "RsvlmError",
    "__version__",
    "analyse_scene",
    "load_chat",
    "load_model",
    "open_dataset",
    "samples",
]

_LAZY = {
    "Chat": "rsvlm.api",
    "Classification": "rsvlm.api",
    "Model": "rsvlm.api",
    "analyse_scene": "rsvlm.api",
    "load_chat": "rsvlm.api",
    "load_model": "rsvlm.api",
    "open_dataset": "rsvlm.api",
    "RsvlmError": "rsvlm.errors",
}


def __getattr__(name: str) -> Any:
    """Import the public API on first use, not with the package (PEP 562)."""
    if name == "samples":
        return importlib.import_module("rsvlm.samples")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rsvlm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
