"""Registries built from packages of modules: each module declares one object, the package is the table.

Benchmark kinds (``KIND``) and adaptation methods (``METHOD``) register this way, so adding one is adding a
module; there is no second list to keep in step.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


def discover(package: str, attribute: str, cls: type[T]) -> dict[str, T]:
    """``attribute`` of every public module of ``package``, by its ``name``, in module order.

    A module without one, or two entries of one name, is a programming error caught here rather than an entry
    that silently never runs. Modules whose name starts with ``_`` hold what several entries share.
    """
    root = importlib.import_module(package)
    found: dict[str, T] = {}
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        entry = getattr(module, attribute, None)
        if not isinstance(entry, cls):
            raise TypeError(f"{module.__name__} defines no {attribute} = {cls.__name__}(...)")
        if entry.name in found:
            raise TypeError(f"{module.__name__}: {cls.__name__.lower()} {entry.name!r} is defined twice")
        found[entry.name] = entry
    return found
