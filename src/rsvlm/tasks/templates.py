"""Named prompt-template sets, so every zero-shot number says exactly which prompts produced it.

A template holds ``{}`` where the readable class name goes. Sets ship as data: a short default for
remote sensing, and the 106 templates whose per-template results RS-TransCLIP published (used to
reproduce those numbers). Users may pass a UTF-8 text file instead: one template per line; a line
without ``{}`` gets `` {}.`` appended, the convention of the published sets. Any other placeholder
(``{0}``, ``{name}``, a second ``{}``) is refused with the file and line, since ``str.format`` would
otherwise fail deep inside the text encoder or silently drop the class name.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path

from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import read_text

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


def _parse(text: str, where: Path | None = None) -> list[str]:
    """Templates of a text, one per line; ``where`` names the file in errors (None: a shipped set)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        slots = _slots(line, where, number)
        out.append(line if slots else f"{line} {{}}.")
    return out


def _slots(line: str, where: Path | None, number: int) -> int:
    """How many class slots ``line`` has (0 or 1); anything else is an error naming the file and line."""
    place = f"line {number}: template {line!r}"
    fix = "a template takes exactly one {} for the class name; write literal braces as {{ and }}"
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(line) if name is not None]
    except ValueError as exc:
        raise _template_error(where, f"{place} is malformed ({exc})", fix) from None
    if not fields:
        return 0
    if len(fields) > 1 or fields[0] != ("", "", None):
        slots = ", ".join(
            "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            for name, spec, conv in fields
        )
        raise _template_error(where, f"{place} has the placeholders {slots}", fix)
    return 1


def _template_error(where: Path | None, problem: str, fix: str) -> RsvlmError:
    if where is None:
        return RsvlmError(f"shipped template set: {problem} ({fix})")
    return DataError(where, problem, fix)


def load_templates(name_or_path: str = DEFAULT_SET) -> list[str]:
    """Templates of a named set or of a UTF-8 text file (one per line, each with at most one ``{}``)."""
    if name_or_path == DEFAULT_SET:
        return list(_RS_DEFAULT)
    if name_or_path in _FILES:
        resource = resources.files("rsvlm.tasks").joinpath("templates_data", _FILES[name_or_path])
        return _parse(resource.read_text(encoding="utf-8"))
    path = Path(name_or_path)
    if not path.exists() and not (path.suffix or "/" in name_or_path or "\\" in name_or_path):
        raise RsvlmError(
            f"unknown template set {name_or_path!r}: use one of {', '.join(template_sets())} or a text file path"
        )
    templates = _parse(read_text(path, "template file"), path)
    if not templates:
        raise DataError(path, "no templates in the file", "write one template per line, with {} for the class")
    return templates


def template_name(template: str) -> str:
    """The short name results are keyed by: the template without its class slot and final period."""
    return template.replace("{}", "").strip().rstrip(".").strip()
