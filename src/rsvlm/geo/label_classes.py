"""The classes of labels: a feature's class property as text, the user's class list (values, optionally named),
and the readable names prompts use.

Class values may be text or numbers (``1`` and ``1.0`` are one class); the user may keep some of them and name them
(``1=open_water,0=land``); names read as prompts do (``open_water`` → ``open water``), and two values that would
read alike are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rsvlm.errors import AnnotationError, RsvlmError

ClassList = Sequence[str] | Mapping[str, str | None]
"""Class values to keep, in order; a mapping also gives readable names (``{"1": "water"}``)."""


def class_value(value: Any) -> str | None:
    """A property value as a class: text stripped, numbers as written (``1.0`` → ``1``); None when unusable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else (repr(value) if np.isfinite(value) else None)
    if isinstance(value, str):
        return value.strip() or None
    return None


def parse_class_spec(spec: str) -> dict[str, str | None]:
    """``water,land`` or ``1=water,0=land`` → the class values to keep, in order, with readable names if given."""
    out: dict[str, str | None] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        value, sep, name = part.partition("=")
        value = value.strip()
        if not value or (sep and not name.strip()):
            raise RsvlmError(f"classes {spec!r}: write class values, or value=name pairs such as 1=water,0=land")
        if value in out:
            raise RsvlmError(f"classes {spec!r}: {value} given more than once (name each class once)")
        out[value] = name.strip() if sep else None
    return out


def choose_classes(path: Path, prop: str, found: list[str], classes: ClassList | None) -> list[str]:
    """The classes to learn: the user's, each of which some feature must hold, else every value found, sorted."""
    present = set(found)
    if classes is None:
        return sorted(present, key=sort_key)
    wanted = [str(c).strip() for c in classes]
    unknown = [c for c in wanted if c not in present]
    if unknown:
        have = ", ".join(sorted(present, key=sort_key)[:12])
        raise AnnotationError(
            path, f"no feature has {prop!r} = {', '.join(unknown)} (its class values: {have})", "check the class list"
        )
    return wanted


def sort_key(value: str) -> tuple[int, float, str]:
    """Class values in a stable order: numbers numerically, then text."""
    try:
        return 0, float(value), value
    except ValueError:
        return 1, 0.0, value


def readable_names(values: list[str], classes: ClassList | None, path: Path) -> list[str]:
    """What prompts call each class: the user's name or the value itself, read as ``rsvlm.data.names`` reads them."""
    from rsvlm.data.names import class_name_map, readable

    given = {k: readable(v) for k, v in classes.items() if v} if isinstance(classes, Mapping) else {}
    fix = "name the classes apart with value=name pairs, e.g. 1=water,0=land"
    names = class_name_map(values, given, where=path, fix=fix)
    return [names[v] for v in values]


def class_notes(values: list[str], names: list[str]) -> list[str]:
    """A warning when classes are bare numbers: the text side of every method sees a meaningless prompt."""
    numeric = [v for v, n in zip(values, names, strict=True) if sort_key(n)[0] == 0]
    if not numeric:
        return []
    return [
        f"class(es) {', '.join(numeric)} are numbers: their prompts say nothing, so zero-shot and the text side of "
        "adapters know nothing of them (name them, e.g. 1=water,0=land)"
    ]
