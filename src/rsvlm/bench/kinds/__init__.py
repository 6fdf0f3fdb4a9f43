"""The benchmark kinds: one module each, registered by being here.

Every module of this package whose name does not start with ``_`` defines ``KIND = Kind(...)``
(``rsvlm.bench.kind``): its model family, metrics, options, main leaderboard metrics, ``run`` and report
section. Adding a kind is adding a module (and its test); the suite parser, runner, leaderboard and report
find it in ``KINDS``. Modules starting with ``_`` hold what several kinds share.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from rsvlm.bench.kind import Kind


def discover(package: str = __name__) -> dict[str, Kind]:
    """``KIND`` of every public module of ``package``, by kind name, in module order; a module without one, or
    two kinds of one name, is a programming error caught here rather than a kind that silently never runs."""
    root = importlib.import_module(package)
    found: dict[str, Kind] = {}
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, Kind):
            raise TypeError(f"{module.__name__} defines no KIND = Kind(...)")
        if kind.name in found:
            raise TypeError(f"{module.__name__}: kind {kind.name!r} is defined twice")
        found[kind.name] = kind
    return found


KINDS: Mapping[str, Kind] = MappingProxyType(discover())
"""Every kind by name (``zeroshot``, ``vqa`` …)."""
