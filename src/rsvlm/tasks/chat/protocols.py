"""Versioned task protocols, shipped as YAML data, so every chat score says exactly how it was produced.

A protocol fixes what may change a number: the prompt each model family sees, how answers are
normalised, how they are matched and binned. It is identified as ``<name>/<version>`` (``vqa-rsvqa/1``)
and lives in ``protocols_data/<name>.v<version>.yaml``; changing a shipped protocol means adding a new
version, never editing an old one. Loading is strict: an unknown or misspelt key is an error, not a
silently ignored option.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rsvlm.errors import RsvlmError
from rsvlm.fileio import read_text

FAMILIES = ("default", "geochat", "qwen2-vl", "llava", "llava-next")
"""Prompt keys a protocol may hold; a model family without its own key gets its fallback's, then ``default``."""

FALLBACK = {"llava-next": "llava"}
"""Families that speak like another when a protocol has no prompt of their own (LLaVA-NeXT was trained on
LLaVA-1.5's instructions, RefCOCO boxes included)."""

TASK_FIELDS: dict[str, frozenset[str]] = {
    "caption": frozenset(),
    "vqa": frozenset({"question"}),
    "grounding": frozenset({"expression"}),
    "counting": frozenset({"object"}),
    "chat-classify": frozenset({"classes"}),
}
"""Placeholders each task fills in its prompt templates."""

RULES = frozenset(
    {"coco-caption", "per-question-type", "exact", "yes-no", "closed-set", "number", "area", "iou", "first-mentioned"}
)
"""Matching rules the scorers implement."""

_ID = re.compile(r"^([a-z0-9][a-z0-9-]*)/([1-9][0-9]*)$")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Normalisation:
    """How free-text answers are made comparable; every step is a switch so reports can show them."""

    lowercase: bool = False
    strip_punctuation: bool = False
    strip_articles: bool = False
    number_words: bool = False
    """``twelve`` → ``12``, ``one hundred and five`` → ``105``."""
    units: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Surface form → canonical unit (``square meters`` → ``m2``); a number is then glued to its unit."""
    synonyms: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Whole phrase → canonical phrase, applied last."""
    yes_no: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Word → ``yes``/``no``, used by the ``yes-no`` rule only (``none`` means 0 in a count answer)."""


@dataclass(frozen=True)
class Matching:
    """How a normalised answer is judged; only the fields a rule uses are set."""

    rule: str
    question_types: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """VQA: question type → rule."""
    default_rule: str = "exact"
    """VQA: rule for a question type the protocol does not list."""
    type_aliases: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Other spellings of question types (``comparison`` → ``comp``)."""
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    """``closed-set`` rule: question type → allowed answers."""
    count_bins: tuple[float, ...] = ()
    """Right-inclusive upper bin edges: ``(0, 10, 100, 1000)`` → 0 | 1–10 | 11–100 | 101–1000 | >1000."""
    area_bins_m2: tuple[float, ...] = ()
    """The same for areas in m²; a bin answer (``between 10m2 and 100m2``) names the bin by its edges."""
    iou_thresholds: tuple[float, ...] = ()
    metrics: tuple[str, ...] = ()
    """Captioning metrics, in report order."""
    scale: float = 1.0
    """Factor applied to reported scores (100 for percentages)."""


@dataclass(frozen=True)
class TaskProtocol:
    """One versioned protocol, as loaded from its YAML file."""

    id: str
    task: str
    description: str
    prompts: Mapping[str, str]
    normalisation: Normalisation
    matching: Matching
    notes: tuple[str, ...] = ()

    def prompt(self, family: str, **fields: str) -> str:
        """The template for ``family`` (else its fallback family's, else ``default``), placeholders filled."""
        template = self.prompts.get(family) or self.prompts.get(FALLBACK.get(family, ""), self.prompts["default"])
        return template.format(**fields)

    def as_dict(self) -> dict[str, Any]:
        """Everything in the protocol as plain data, for run headers and reports."""
        return {
            "id": self.id,
            "task": self.task,
            "description": self.description,
            "prompts": dict(self.prompts),
            "family_fallback": dict(FALLBACK),
            "normalisation": _plain(self.normalisation),
            "matching": _plain(self.matching),
            "notes": list(self.notes),
        }


def _plain(obj: Normalisation | Matching) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if isinstance(value, Mapping):
            value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _file_name(protocol_id: str) -> str:
    match = _ID.match(protocol_id)
    if match is None:
        raise RsvlmError(f"malformed protocol id {protocol_id!r}: write it as name/version, e.g. vqa-rsvqa/1")
    return f"{match.group(1)}.v{match.group(2)}.yaml"


def protocol_ids() -> list[str]:
    """Ids of the shipped protocols."""
    folder = resources.files("rsvlm.tasks.chat").joinpath("protocols_data")
    ids = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(.+)\.v(\d+)\.yaml", entry.name)
        if match:
            ids.append(f"{match.group(1)}/{match.group(2)}")
    return sorted(ids)


def load_protocol(id_or_path: str | Path) -> TaskProtocol:
    """A shipped protocol by id (``vqa-rsvqa/1``), or a YAML file of the same schema."""
    import yaml

    text: str
    where: str
    expected_id: str | None = None
    path = Path(id_or_path)
    if str(id_or_path).endswith((".yaml", ".yml")):
        text, where = read_text(path, "protocol file"), str(path)
    else:
        expected_id = str(id_or_path)
        resource = resources.files("rsvlm.tasks.chat").joinpath("protocols_data", _file_name(expected_id))
        if not resource.is_file():
            raise RsvlmError(f"unknown protocol {expected_id!r}: use one of {', '.join(protocol_ids())} or a YAML file")
        text, where = resource.read_text(encoding="utf-8"), f"protocol {expected_id}"
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RsvlmError(f"{where}: malformed YAML ({first}); fix the file") from None
    protocol = _parse(data, where)
    if expected_id is not None and protocol.id != expected_id:
        raise RsvlmError(f"{where}: file declares id {protocol.id!r}; the id must match the file name")
    return protocol


# ---- strict parsing -------------------------------------------------------------------------------


def _mapping(value: Any, where: str, allowed: Collection[str], required: Collection[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RsvlmError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - set(allowed))
    if unknown:
        raise RsvlmError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")
    missing = sorted(set(required) - set(value))
    if missing:
        raise RsvlmError(f"{where}: missing key {missing[0]!r}")
    return {str(k): v for k, v in value.items()}


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RsvlmError(f"{where}: expected a non-empty string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RsvlmError(f"{where}: expected true or false")
    return value


def _str_map(value: Any, where: str) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise RsvlmError(f"{where}: expected a mapping of strings")
    return MappingProxyType({_str(k, f"{where} key"): _str(v, f"{where}[{k}]") for k, v in value.items()})


def _numbers(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise RsvlmError(f"{where}: expected a list of numbers")
    numbers = tuple(float(v) for v in value)
    if list(numbers) != sorted(set(numbers)):
        raise RsvlmError(f"{where}: values must be strictly increasing")
    return numbers


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RsvlmError(f"{where}: expected a non-empty list of strings")
    return tuple(_str(v, where) for v in value)


def _rule(value: Any, where: str) -> str:
    rule = _str(value, where)
    if rule not in RULES:
        raise RsvlmError(f"{where}: unknown rule {rule!r}; known rules: {', '.join(sorted(RULES))}")
    return rule


def _parse(data: Any, where: str) -> TaskProtocol:
    top = _mapping(
        data,
        where,
        {"id", "task", "description", "prompts", "normalisation", "matching", "notes"},
        {"id", "task", "description", "prompts", "matching"},
    )
    protocol_id = _str(top["id"], f"{where}: id")
    _file_name(protocol_id)  # validates the form
    task = _str(top["task"], f"{where}: task")
    if task not in TASK_FIELDS:
        raise RsvlmError(f"{where}: unknown task {task!r}; known tasks: {', '.join(TASK_FIELDS)}")
    prompts = _mapping(top["prompts"], f"{where}: prompts", set(FAMILIES), {"default"})
    for family, template in prompts.items():
        _check_template(_str(template, f"{where}: prompts.{family}"), TASK_FIELDS[task], f"{where}: prompts.{family}")
    return TaskProtocol(
        id=protocol_id,
        task=task,
        description=_str(top["description"], f"{where}: description").strip(),
        prompts=MappingProxyType(dict(prompts)),
        normalisation=_normalisation(top.get("normalisation", {}), f"{where}: normalisation"),
        matching=_matching(top["matching"], f"{where}: matching"),
        notes=_strings(top["notes"], f"{where}: notes") if "notes" in top else (),
    )


def _check_template(template: str, allowed: frozenset[str], where: str) -> None:
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise RsvlmError(f"{where}: malformed template ({exc}); write literal braces as {{{{ and }}}}") from None
    names = {name for name, _, _ in fields}
    styled = [name for name, spec, conv in fields if spec or conv]
    if styled:
        raise RsvlmError(f"{where}: placeholder {{{styled[0]}}} has a conversion or format spec; write it bare")
    unknown = sorted(names - allowed)
    if unknown:
        allowed_text = ", ".join("{" + a + "}" for a in sorted(allowed)) or "none"
        raise RsvlmError(f"{where}: unknown placeholder {{{unknown[0]}}}; this task fills {allowed_text}")


def _normalisation(value: Any, where: str) -> Normalisation:
    flags = ("lowercase", "strip_punctuation", "strip_articles", "number_words")
    maps = ("units", "synonyms", "yes_no")
    data = _mapping(value, where, {*flags, *maps})
    yes_no = _str_map(data.get("yes_no", {}), f"{where}.yes_no")
    bad = sorted(v for v in yes_no.values() if v not in ("yes", "no"))
    if bad:
        raise RsvlmError(f"{where}.yes_no: maps to {bad[0]!r}; every value must be yes or no")
    return Normalisation(
        **{k: _bool(data[k], f"{where}.{k}") for k in flags if k in data},
        units=_str_map(data.get("units", {}), f"{where}.units"),
        synonyms=_str_map(data.get("synonyms", {}), f"{where}.synonyms"),
        yes_no=yes_no,
    )


def _matching(value: Any, where: str) -> Matching:
    keys = {
        "rule",
        "question_types",
        "default_rule",
        "type_aliases",
        "choices",
        "count_bins",
        "area_bins_m2",
        "iou_thresholds",
        "metrics",
        "scale",
    }
    data = _mapping(value, where, keys, {"rule"})
    raw_types = _str_map(data.get("question_types", {}), f"{where}.question_types")
    types = {k: _rule(v, f"{where}.question_types[{k}]") for k, v in raw_types.items()}
    choices_raw = data.get("choices", {})
    if not isinstance(choices_raw, dict):
        raise RsvlmError(f"{where}.choices: expected a mapping of question type to a list of answers")
    choices = {str(k): _strings(v, f"{where}.choices[{k}]") for k, v in choices_raw.items()}
    missing = sorted(t for t, r in types.items() if r == "closed-set" and t not in choices)
    if missing:
        raise RsvlmError(f"{where}.choices: question type {missing[0]!r} uses closed-set but lists no choices")
    thresholds = _numbers(data["iou_thresholds"], f"{where}.iou_thresholds") if "iou_thresholds" in data else ()
    if any(not 0 < t <= 1 for t in thresholds):
        raise RsvlmError(f"{where}.iou_thresholds: thresholds must lie in (0, 1]")
    scale = data.get("scale", 1.0)
    if not isinstance(scale, int | float) or isinstance(scale, bool) or scale <= 0:
        raise RsvlmError(f"{where}.scale: expected a positive number")
    return Matching(
        rule=_rule(data["rule"], f"{where}.rule"),
        question_types=MappingProxyType(types),
        default_rule=_rule(data.get("default_rule", "exact"), f"{where}.default_rule"),
        type_aliases=_str_map(data.get("type_aliases", {}), f"{where}.type_aliases"),
        choices=MappingProxyType(choices),
        count_bins=_numbers(data["count_bins"], f"{where}.count_bins") if "count_bins" in data else (),
        area_bins_m2=_numbers(data["area_bins_m2"], f"{where}.area_bins_m2") if "area_bins_m2" in data else (),
        iou_thresholds=thresholds,
        metrics=_strings(data["metrics"], f"{where}.metrics") if "metrics" in data else (),
        scale=float(scale),
    )


class ProtocolTask:
    """Shared core of the chat tasks: the protocol they are bound to, checked to be for this task."""

    name: str = ""

    def __init__(self, protocol: str | Path) -> None:
        self._protocol: TaskProtocol = load_protocol(protocol)
        if self._protocol.task != self.name:
            raise RsvlmError(f"protocol {self._protocol.id} is for the {self._protocol.task} task, not {self.name}")
        self.protocol_id = self._protocol.id

    def protocol(self) -> dict[str, Any]:
        return self._protocol.as_dict()

    @staticmethod
    def check_finished(samples: Sequence[Any], predictions: Sequence[str]) -> None:
        if len(samples) != len(predictions):
            raise RsvlmError(f"{len(predictions)} predictions for {len(samples)} samples: score finished runs only")
