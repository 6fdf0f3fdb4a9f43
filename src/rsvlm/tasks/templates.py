"""Named prompt-template sets, so every zero-shot number says exactly which prompts produced it.

A template holds ``{}`` where the readable class name goes. Sets ship as data: a short default for
remote sensing, and the 106 templates whose per-template results RS-TransCLIP published (used to
reproduce those numbers). Users may pass a text file instead: one template per line; a line without
``{}`` gets `` {}.`` appended, the convention of the published sets.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rsvlm.errors import DataError, RsvlmError

DEFAULT_SET = "rs-default"

_RS_DEFAULT = (
    "a satellite photo of a {}.",
    "an aerial photo of a {}.",
    "a remote sensing image of a {}.",
    "an overhead image showing a {}.",
    "a satellite image of the {}.",
    "a top-down view of a {}.",
)

_FILES = {"rs-transclip-106": "rs-transclip-106.txt"}


def template_sets() -> list[str]:
    return [DEFAULT_SET, *_FILES]


def _parse(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line if "{}" in line else f"{line} {{}}.")
    return out


def load_templates(name_or_path: str = DEFAULT_SET) -> list[str]:
    """Templates of a named set or of a text file."""
    if name_or_path == DEFAULT_SET:
        return list(_RS_DEFAULT)
    if name_or_path in _FILES:
        text = resources.files("rsvlm.tasks").joinpath("templates_data", _FILES[name_or_path]).read_text()
        return _parse(text.splitlines())
    path = Path(name_or_path)
    if not path.is_file():
        raise RsvlmError(
            f"unknown template set {name_or_path!r}: use one of {', '.join(template_sets())} or a text file path"
        )
    templates = _parse(path.read_text(encoding="utf-8").splitlines())
    if not templates:
        raise DataError(path, "no templates in the file", "write one template per line, with {} for the class")
    return templates


def template_name(template: str) -> str:
    """The short name results are keyed by: the template without its class slot and final period."""
    return template.replace("{}", "").strip().rstrip(".").strip()
