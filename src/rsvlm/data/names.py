"""Readable class names for prompts: ``footballfield`` → ``football field``, ``BareLand`` → ``bare land``.

Zero-shot accuracy depends on the words a text encoder sees, and scene sets name their classes in
CamelCase folders (AID, EuroSAT), snake_case (RESISC45) or glued lower case (UCM, WHU-RS19). Glued names
cannot be split by rule, so they come from this table of the standard sets' classes; the rest are split
by rule, and a user-supplied mapping always wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from rsvlm.errors import AnnotationError, DataError, RsvlmError
from rsvlm.fileio import read_text

# Glued class names of the standard scene sets (UCM, WHU-RS19, AID, RESISC45, RSICD, EuroSAT).
_GLUED: dict[str, str] = {
    "baseballdiamond": "baseball diamond",
    "baseballfield": "baseball field",
    "bareland": "bare land",
    "basketballcourt": "basketball court",
    "chaparral": "chaparral",
    "denseresidential": "dense residential",
    "footballfield": "football field",
    "golfcourse": "golf course",
    "groundtrackfield": "ground track field",
    "harbor": "harbor",
    "herbaceousvegetation": "herbaceous vegetation",
    "annualcrop": "annual crop",
    "permanentcrop": "permanent crop",
    "sealake": "sea or lake",
    "mediumresidential": "medium residential",
    "mobilehomepark": "mobile home park",
    "parkinglot": "parking lot",
    "railwaystation": "railway station",
    "sparseresidential": "sparse residential",
    "storagetanks": "storage tanks",
    "tenniscourt": "tennis court",
    "trainstation": "train station",
    "thermalpowerstation": "thermal power station",
    "seaice": "sea ice",
    "snowberg": "snowberg",
    "terrace": "terrace",
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def readable(name: str) -> str:
    """A prompt-ready name: lower case, words separated by single spaces."""
    glued = _GLUED.get(name.lower().replace(" ", ""))
    if glued is not None and not re.search(r"[\s_\-]", name):
        return glued
    spaced = _CAMEL.sub(" ", name).replace("_", " ").replace("-", " ")
    return re.sub(r"\s+", " ", spaced).strip().lower()


NAME_MAP_FIX = (
    "give each a distinct readable name in a class-name file (lines 'raw<TAB>readable') passed with --class-names,"
    " or rename one of the classes"
)


def class_name_map(
    classes: Iterable[str],
    overrides: Mapping[str, str] | None = None,
    where: str | Path | None = None,
    fix: str = NAME_MAP_FIX,
) -> dict[str, str]:
    """Readable names for every class, user overrides first.

    Two classes that read alike (``BareLand`` and ``bare_land``, or a map giving both one name) would
    get the same prompt and become indistinguishable, so that is refused, naming both and ``where``.
    """
    overrides = overrides or {}
    names = {c: overrides.get(c, readable(c)) for c in classes}
    first: dict[str, str] = {}
    for raw, name in names.items():
        key = " ".join(name.lower().split())  # text encoders lower-case: "Forest" and "forest" are one prompt
        if key in first:
            problem = f"classes {first[key]!r} and {raw!r} both read as {name!r}"
            if where is not None:
                raise DataError(where, problem, fix)
            raise RsvlmError(f"{problem} ({fix})")
        first[key] = raw
    return names


def load_name_map(path: str | Path) -> dict[str, str]:
    """Read a class-name mapping: a JSON object, or lines ``raw<TAB>readable`` / ``raw=readable``."""
    path = Path(path)
    try:
        text = read_text(path, "class-name file")
    except DataError as exc:
        fix = exc.fix or (None if exc.path.exists() else "check the path")
        raise AnnotationError(exc.path, exc.problem, fix) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnnotationError(path, f"malformed JSON at line {exc.lineno}: {exc.msg}", "fix the file") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) and v.strip() for v in data.values()):
            raise AnnotationError(path, "expected a JSON object of class name -> non-empty readable name")
        return {str(k): v.strip() for k, v in data.items()}
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t", 1) if "\t" in line else line.split("=", 1)
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise AnnotationError(path, f"line {number} is not 'raw<TAB>readable' or 'raw=readable'")
        raw = parts[0].strip()
        if raw in mapping:
            raise AnnotationError(path, f"line {number} names class {raw!r} a second time", "keep one line per class")
        mapping[raw] = parts[1].strip()
    return mapping
