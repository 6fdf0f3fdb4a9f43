"""The benchmark kinds: one module each, registered by being here.

Every module of this package whose name does not start with ``_`` defines ``KIND = Kind(...)``
(``rsvlm.bench.kind``): its model family, metrics, options, main leaderboard metrics, ``run`` and report
section. Adding a kind is adding a module (and its test); the suite parser, runner, leaderboard and report
find it in ``KINDS``. Modules starting with ``_`` hold what several kinds share.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rsvlm.bench.kind import Kind
from rsvlm.plugins import discover

KINDS: Mapping[str, Kind] = MappingProxyType(discover(__name__, "KIND", Kind))
"""Every kind by name (``zeroshot``, ``vqa`` …)."""
