"""The adaptation methods: one module each, registered by being here.

Every module of this package whose name does not start with ``_`` defines ``METHOD = Method(...)``
(``rsvlm.adapt.method``). Adding a method is adding a module (and its case in the contract test); the CLI, the
few-shot protocol, the bench kind and saved adapters find it in ``METHODS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rsvlm.adapt.method import Method
from rsvlm.errors import RsvlmError
from rsvlm.plugins import discover

METHODS: Mapping[str, Method] = MappingProxyType(discover(__name__, "METHOD", Method))
"""Every method by name (``zero-shot``, ``tip-adapter-f`` …)."""


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise RsvlmError(f"unknown adaptation method {name!r}; known: {', '.join(METHODS)}") from None
