"""What the two few-shot kinds share (``few-shot`` with a model, ``golden-few-shot`` on released embeddings): their
options, the metrics read from a ``fewshot/1`` result, and the report section (accuracy-vs-shots plot, tables)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.adapt.methods import METHODS
from rsvlm.adapt.protocol import SEEDS, SHOTS

if TYPE_CHECKING:
    from rsvlm.adapt.protocol import Settings
    from rsvlm.bench.leaderboard import ResultRow

OPTIONS: dict[str, tuple[str, Any]] = {
    "methods": ("list[str]", ()),
    "shots": ("list[int]", SHOTS),
    "seeds": ("list[int]", SEEDS),
    "base_to_novel": ("bool", False),
    "transductive": ("bool", False),
    "set": ("list[str]", ()),
}
"""``methods``: empty for every registered one; ``set``: a method's options as ``METHOD.KEY=VALUE``."""

METRICS: tuple[str, ...] = (
    *(f"best_{k}" for k in reversed(SHOTS)), "zero_shot", "majority", "best_hm", "zero_shot_hm",
    *(f"{m}@{k}" for m, method in METHODS.items() for k in SHOTS if method.trains and not method.needs_model),
)  # fmt: skip
"""``best_K``: the best trained method's mean top-1 at K shots (tower methods included); ``<method>@K`` each
features-only method's (those that run on embeddings too; a tower method's per-shot values are in the task's
details, tables and plot); ``zero_shot``, ``majority``: the baselines on the same test split; ``best_hm``: the best
base-to-novel harmonic mean of a trained method, ``zero_shot_hm`` zero-shot's."""

MAIN = ("best_16", "best_8", "best_1", "zero_shot")
"""The leaderboard rows (those measured: a set whose classes cannot supply 16 shots shows best_8)."""


def settings(options: Mapping[str, Any]) -> Settings:
    """A task's options as checked protocol settings (the suite parser calls this too, so errors come early)."""
    from rsvlm.adapt.protocol import make_settings, parse_set_options

    return make_settings(
        list(options.get("methods") or ()) or None, list(options.get("shots") or SHOTS),
        list(options.get("seeds") or SEEDS), parse_set_options(list(options.get("set") or ())),
        base_to_novel=bool(options.get("base_to_novel")), transductive=bool(options.get("transductive")),
    )  # fmt: skip


def metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The leaderboard numbers of a ``fewshot/1`` result (inductive rows; TransCLIP rows stay in the details)."""
    out: dict[str, float] = {"majority": float(result["majority"]["top1"])}
    for row in result["rows"]:
        if row["transductive"]:
            continue
        if not row["shots"]:
            out["zero_shot"] = float(row["top1"])
        else:
            out[f"{row['method']}@{row['shots']}"] = float(row["top1"])
    for k, best in result["best"].items():
        out[f"best_{k}"] = float(best["top1"])
    b2n = result.get("base_to_novel") or {}
    hms = {r["method"]: float(r["hm"]) for r in b2n.get("rows") or []}
    if "zero-shot" in hms:
        out["zero_shot_hm"] = hms.pop("zero-shot")
    if hms:
        out["best_hm"] = max(hms.values())
    return {k: v for k, v in out.items() if k in METRICS}


def section(results: Sequence[ResultRow], base: Path) -> str:
    """Per model: the accuracy-vs-shots plot, top-1 mean ± std, fit times and base-to-novel."""
    from rsvlm.bench.fewshot_report import section_html

    parts = []
    for r in results:
        result = r.details.get("fewshot")
        if isinstance(result, Mapping):
            parts.append(section_html(result, heading=r.model))
    return "".join(parts)
