"""The few-shot head-to-head protocol (``fewshot/1``): every adaptation method on the same draws, seeds and test set.

A labelled set is split once into train and test: the data's own ``train``/``test`` split when it has both, else
a stratified 50/50 split with seed 0 (``rsvlm.tasks.linear_probe.stratified_split``). For every shot count k and
seed s, ``rsvlm.adapt.support.draw_shots`` draws k train images per class; every method learns from that same draw
and is scored on the whole disjoint test split (top-1 and mean per-class accuracy, mean ± population std over
seeds, each seed's value kept). The zero-shot baseline learns nothing and is scored once. Options:

- ``transductive``: each method's test probabilities are also refined by TransCLIP
  (``rsvlm.tasks.transductive.transclip(..., prior=...)``), reported as separate rows;
- ``base_to_novel`` (CoCoOp's protocol, Zhou et al., CVPR 2022): the classes sorted by name are halved (the first
  ⌈C/2⌉ are base), shots are drawn from base-class train images at the largest runnable shot count, base accuracy
  is scored on base test images among base classes, novel accuracy on novel test images among novel classes, and
  their harmonic mean is reported, for the methods that can score classes they never saw.

A shot count that some class's train split cannot supply is skipped and reported (``skipped_shots``) rather than
drawn smaller; if no shot count can be drawn, that is an error. A method that needs the model's towers or the
images, run on precomputed embeddings, is listed in ``skipped`` with the reason, never silently dropped. Same
inputs, same numbers (only the measured fit times vary).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.adapt.method import F32, I64, ClassSet, Fitted, Method, Options, Pixels, Support, softmax
from rsvlm.adapt.methods import METHODS, get_method
from rsvlm.adapt.support import draw_shots
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.models.protocols import ContrastiveModel

PROTOCOL = "fewshot/1"
"""Split (own train/test, else stratified 50/50 seed 0), k-shot draws per seed from train, scored on all of test."""
SHOTS = (1, 2, 4, 8, 16)
SEEDS = (1, 2, 3)
TEST_FRACTION = 0.5
SPLIT_SEED = 0

Log = Callable[[str], None]


@dataclass
class LabelledSet:
    """Features of a labelled image set and what the methods may need besides them."""

    features: F32
    """(N, D) L2-normalised image embeddings of the frozen base model."""
    labels: I64
    classes: ClassSet
    logit_scale: float
    splits: Sequence[str | None] = ()
    """Each image's split in the data (``train``/``test``…); empty: the data has none."""
    model: ContrastiveModel | None = None
    """The base model, for methods that run its towers; None for precomputed embeddings."""
    pixels: Pixels | None = None
    """Indexes into this set → preprocessed pixels, for methods that tune the image tower."""
    templates: list[str] = field(default_factory=list)
    source: str = ""


def from_embeddings(folder: str | Path) -> LabelledSet:
    """Precomputed embeddings (released layout): the averaged prompts, CLIP's temperature, features-only methods."""
    from rsvlm.adapt.labelled import EMBEDDINGS_LOGIT_SCALE
    from rsvlm.tasks.embeddings import AVERAGE, load_embedding_dir

    folder = Path(folder)
    emb = load_embedding_dir(folder)
    classes = ClassSet(list(emb.class_names), emb.text_embeddings(AVERAGE).astype(np.float32))
    name = "/".join(folder.resolve().parts[-2:])  # golden/…/CLIP/ViT-B-32 → CLIP/ViT-B-32
    return LabelledSet(
        emb.images.astype(np.float32), emb.labels.astype(np.int64), classes, EMBEDDINGS_LOGIT_SCALE,
        splits=list(emb.splits), templates=emb.templates, source=name,
    )  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """What one run of the protocol compares (validated by ``make_settings`` before any slow work)."""

    methods: tuple[str, ...]
    shots: tuple[int, ...] = SHOTS
    seeds: tuple[int, ...] = SEEDS
    options: Mapping[str, Options] = field(default_factory=dict)
    """Each method's checked options (defaults filled in)."""
    base_to_novel: bool = False
    transductive: bool = False


# -- settings ---------------------------------------------------------------------------------------------------
def parse_methods(text: str | None) -> tuple[str, ...] | None:
    """``"tip-adapter, clip-adapter"`` → names (checked); empty or None → None (every registered method)."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    for name in names:
        get_method(name)
    return tuple(dict.fromkeys(names)) or None


def parse_shots(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``; anything else is a one-line error."""
    try:
        shots = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise RsvlmError(f"shots {text!r}: expected comma-separated whole numbers, e.g. 1,2,4,8,16") from None
    return check_shots(shots)


def check_shots(shots: Sequence[int]) -> tuple[int, ...]:
    if not shots:
        raise RsvlmError("at least one shot count is needed, e.g. 1,2,4,8,16")
    bad = [k for k in shots if isinstance(k, bool) or not isinstance(k, int) or k < 1]
    if bad:
        raise RsvlmError(f"shot count {bad[0]!r} is not a whole number of images per class >= 1")
    if len(set(shots)) != len(shots):
        raise RsvlmError(f"shot count {next(k for k in shots if list(shots).count(k) > 1)} is given twice")
    return tuple(sorted(shots))


def parse_set_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["tip-adapter-f.epochs=5", "clip-adapter.ratio=0.5"]`` → ``{method: {key: typed value}}``."""
    from rsvlm.adapt.method import parse_option_values

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, _ = pair.partition("=")
        method, dot, key = target.partition(".")
        if not sep or not dot or not method.strip() or not key.strip():
            raise RsvlmError(f"--set {pair!r}: expected METHOD.KEY=VALUE, e.g. tip-adapter-f.epochs=5")
        get_method(method.strip())
        out.setdefault(method.strip(), {}).update(parse_option_values([pair[len(method) + 1 :]]))
    return out


def make_settings(
    methods: Sequence[str] | None = None,
    shots: Sequence[int] = SHOTS,
    seeds: Sequence[int] = SEEDS,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    base_to_novel: bool = False,
    transductive: bool = False,
) -> Settings:
    """Checked settings: known methods (default: all, zero-shot first), shot counts, seeds, each method's options.

    Options for a method that is not compared are an error: they would silently change nothing.
    """
    from rsvlm.tasks.linear_probe import check_protocol

    names = list(methods) if methods else sorted(METHODS, key=lambda n: n != "zero-shot")
    chosen = [get_method(n) for n in dict.fromkeys(names)]
    check_protocol(None, tuple(seeds), 1.0)
    given = dict(options or {})
    stray = [m for m in given if m not in {c.name for c in chosen}]
    if stray:
        raise RsvlmError(f"options given for {stray[0]}, which is not among the compared methods")
    checked = {m.name: m.check_options(given.get(m.name)) for m in chosen}
    return Settings(
        tuple(m.name for m in chosen), check_shots(list(shots)), tuple(seeds), checked,
        base_to_novel=base_to_novel, transductive=transductive,
    )  # fmt: skip


# -- the split ---------------------------------------------------------------------------------------------------
def train_test_split(labels: I64, splits: Sequence[str | None] = ()) -> tuple[I64, I64, str]:
    """The data's own train/test split when it has both (other splits unused), else stratified 50/50, seed 0."""
    from rsvlm.tasks.linear_probe import stratified_split

    if splits and {"train", "test"} <= {s for s in splits if s}:
        marks = np.asarray([s or "" for s in splits])
        train, test = np.flatnonzero(marks == "train"), np.flatnonzero(marks == "test")
        return train.astype(np.int64), test.astype(np.int64), "the data's own split: train -> test"
    train, test = stratified_split(labels, TEST_FRACTION, seed=SPLIT_SEED)
    return train, test, f"stratified {TEST_FRACTION:.0%} test, seed {SPLIT_SEED}"


# -- scoring -------------------------------------------------------------------------------------------------------
def _scores(logits: F32, labels: I64) -> tuple[float, float]:
    """(top-1, mean per-class accuracy) in percent; classes without test images are left out of the mean."""
    hit = logits.argmax(axis=1) == labels
    per_class = [float(hit[labels == c].mean()) for c in np.unique(labels)]
    return 100.0 * float(hit.mean()), 100.0 * float(np.mean(per_class))


def _summary(per_seed: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in keys:
        values = [float(r[key]) for r in per_seed]
        out[key], out[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    return out


def harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def unavailable(method: Method, data: LabelledSet) -> str | None:
    """Why ``method`` cannot run on ``data`` (precomputed embeddings lack the model or the images), or None."""
    if method.needs_model and data.model is None:
        return "runs the model's towers: needs the model (--model), not precomputed embeddings"
    if method.needs_pixels and data.pixels is None:
        return "tunes the image tower: needs the images, not only their features"
    return None


@dataclass
class _Run:
    data: LabelledSet
    settings: Settings
    log: Log

    def support(self, picked: I64, labels: I64, classes: ClassSet) -> Support:
        pixels = None
        if self.data.pixels is not None:
            source = self.data.pixels
            pixels = lambda idx: source([int(picked[int(i)]) for i in idx])  # noqa: E731 - support-local → global
        d = self.data
        return Support(d.features[picked], labels, classes, d.logit_scale, d.model, pixels, list(d.templates))

    def fit(self, method: Method, support: Support, seed: int) -> tuple[Fitted, float]:
        start = time.perf_counter()
        fitted = method.fit(support, self.settings.options[method.name], seed)
        return fitted, time.perf_counter() - start

    def features(self, fitted: Fitted, idx: I64) -> F32:
        """Test features as the fitted adapter expects them: re-embedded when it tuned the image tower."""
        base = self.data.model
        if base is None or self.data.pixels is None or fitted.image_model(base) is base:
            return self.data.features[idx]
        import torch

        tuned = fitted.image_model(base)
        with torch.no_grad():
            parts = [tuned.encode_images(self.data.pixels(idx[s : s + 32].tolist())) for s in range(0, len(idx), 32)]
        out: F32 = torch.cat(parts).cpu().numpy().astype(np.float32)
        return out

    def score(self, fitted: Fitted, idx: I64, labels: I64, classes: ClassSet) -> dict[str, Any]:
        from rsvlm.tasks.transductive import transclip

        feats = self.features(fitted, idx)
        logits = fitted.logits(feats, classes)
        top1, mpc = _scores(logits, labels)
        out: dict[str, Any] = {"top1": top1, "mean_per_class": mpc}
        if self.settings.transductive:
            refined = transclip(feats, classes.text_weights, prior=softmax(logits)).probabilities
            out["transductive"] = dict(zip(("top1", "mean_per_class"), _scores(refined, labels), strict=True))
        return out


def _rows(method: Method, shots: int, runs: list[dict[str, Any]], seconds: list[float]) -> list[dict[str, Any]]:
    """One row per (method, shots), and one for its transductive refinement when measured."""
    keys = ("top1", "mean_per_class")
    head = {"method": method.name, "title": method.title, "shots": shots}
    rows = [{**head, "transductive": False, **_summary(runs, keys), "fit_seconds": float(np.mean(seconds)),
             "per_seed": [{k: r[k] for k in ("seed", *keys)} for r in runs]}]  # fmt: skip
    if runs and "transductive" in runs[0]:
        refined = [{"seed": r["seed"], **r["transductive"]} for r in runs]
        rows.append({**head, "transductive": True, **_summary(refined, keys), "per_seed": refined})
    return rows


def _runnable(labels: I64, shots: Sequence[int], names: Sequence[str]) -> tuple[list[int], list[dict[str, Any]]]:
    """Shot counts every class's train images can supply, and the others with the reason."""
    counts = np.bincount(labels, minlength=len(names))
    ok, skipped = [], []
    for k in shots:
        short = [c for c in range(len(names)) if counts[c] < k]
        if short:
            c = min(short, key=lambda i: counts[i])
            reason = f"class {names[c]!r} has {counts[c]} training image(s), fewer than {k}"
            skipped.append({"shots": k, "reason": reason})
        else:
            ok.append(k)
    return ok, skipped


def run_protocol(data: LabelledSet, settings: Settings, *, log: Log | None = None) -> dict[str, Any]:
    """Every method × shot count × seed on ``data``; the result as one JSON-serialisable dict."""
    say = log or (lambda _: None)
    names = data.classes.names
    train, test, split = train_test_split(data.labels, data.splits)
    if len(test) == 0 or len(np.unique(data.labels[train])) < 2:
        raise RsvlmError(
            f"{data.source or 'data'}: a few-shot comparison needs train images of 2+ classes and test images"
        )
    shots, skipped_shots = _runnable(data.labels[train], settings.shots, names)
    if not shots:
        raise RsvlmError(f"no shot count can be drawn from the train split: {skipped_shots[0]['reason']}")
    for s in skipped_shots:
        say(f"{s['shots']}-shot skipped: {s['reason']}")
    run = _Run(data, settings, say)
    methods = [get_method(n) for n in settings.methods]
    skipped = [{"method": m.name, "reason": why} for m in methods if (why := unavailable(m, data)) is not None]
    for s in skipped:
        say(f"{s['method']} skipped: {s['reason']}")
    active = [m for m in methods if unavailable(m, data) is None]
    if not active:
        raise RsvlmError(f"none of the methods can run here: {skipped[0]['method']} {skipped[0]['reason']}")
    test_labels = data.labels[test]
    rows: list[dict[str, Any]] = []
    for method in active:
        for k in shots if method.trains else [0]:
            runs, seconds = [], []
            for seed in settings.seeds if method.trains else [0]:
                picked = train[draw_shots(data.labels[train], k, seed, names)] if method.trains else train
                fitted, sec = run.fit(method, run.support(picked, data.labels[picked], data.classes), seed)
                runs.append({"seed": seed, **run.score(fitted, test, test_labels, data.classes)})
                seconds.append(sec)
            made = _rows(method, k, runs, seconds)
            say(f"{method.name} {k}-shot: top-1 {made[0]['top1']:.2f} ± {made[0]['top1_std']:.2f}")
            rows += made
    result: dict[str, Any] = {
        "task": "few-shot",
        "protocol": PROTOCOL,
        "source": data.source,
        "classes": list(names),
        "split": split,
        "n_train": len(train),
        "n_test": len(test),
        "shots": shots,
        "seeds": list(settings.seeds),
        "transductive": settings.transductive,
        "options": {m.name: dict(settings.options[m.name]) for m in active},
        "skipped": skipped,
        "skipped_shots": skipped_shots,
        "majority": _majority(data.labels[train], test_labels, len(names)),
        "rows": rows,
        "fit_seconds": {m.name: _mean_seconds(rows, m.name) for m in active},
        "best": best_per_shots(rows),
    }
    if settings.base_to_novel:
        result["base_to_novel"] = _base_to_novel(run, active, train, test)
    return result


def _majority(train_labels: I64, test_labels: I64, n_classes: int) -> dict[str, float]:
    """The prior baseline: every test image gets the train split's most frequent class."""
    majority = int(np.bincount(train_labels, minlength=n_classes).argmax())
    logits = np.zeros((len(test_labels), n_classes), np.float32)
    logits[:, majority] = 1.0
    return dict(zip(("top1", "mean_per_class"), _scores(logits, test_labels), strict=True))


def _mean_seconds(rows: Sequence[Mapping[str, Any]], method: str) -> float:
    values = [float(r["fit_seconds"]) for r in rows if r["method"] == method and "fit_seconds" in r]
    return float(np.mean(values)) if values else 0.0


def best_per_shots(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per shot count, the trained method with the highest mean top-1 (inductive rows only; ties: first listed)."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["transductive"] or not r["shots"]:
            continue
        key = str(r["shots"])
        if key not in best or r["top1"] > best[key]["top1"]:
            best[key] = {"method": r["method"], "top1": r["top1"], "top1_std": r["top1_std"]}
    return best


def split_classes(names: Sequence[str]) -> tuple[list[int], list[int]]:
    """Base and novel class indexes: the first ⌈C/2⌉ classes in name order are base (CoCoOp's halves)."""
    order = sorted(range(len(names)), key=lambda c: names[c])
    half = math.ceil(len(names) / 2)
    return sorted(order[:half]), sorted(order[half:])


def _base_to_novel(run: _Run, methods: Sequence[Method], train: I64, test: I64) -> dict[str, Any]:
    data, settings = run.data, run.settings
    base, novel = split_classes(data.classes.names)
    sets, remaps = {}, {}
    for part, members in (("base", base), ("novel", novel)):
        sets[part] = ClassSet([data.classes.names[c] for c in members], data.classes.text_weights[members])
        remaps[part] = {c: i for i, c in enumerate(members)}
    in_base = train[np.isin(data.labels[train], base)]
    base_labels = np.array([remaps["base"][int(c)] for c in data.labels[in_base]], dtype=np.int64)
    shots, _ = _runnable(base_labels, settings.shots, sets["base"].names)
    out: dict[str, Any] = {"base_classes": sets["base"].names, "novel_classes": sets["novel"].names, "rows": []}
    out["not_measured"] = [{"method": m.name, "reason": "scores only the classes it was trained on"}
                           for m in methods if not m.generalises]  # fmt: skip
    if len(base) < 2 or len(novel) < 1 or not shots:
        out["note"] = "base-to-novel needs 2+ base classes, a novel class and a shot count the base classes supply"
        return out
    k = max(shots)
    out["shots"] = k
    for method in (m for m in methods if m.generalises):
        runs = []
        for seed in settings.seeds if method.trains else [0]:
            drawn = in_base[draw_shots(base_labels, k, seed, sets["base"].names)] if method.trains else in_base
            labels = np.array([remaps["base"][int(c)] for c in data.labels[drawn]], dtype=np.int64)
            fitted, _ = run.fit(method, run.support(drawn, labels, sets["base"]), seed)
            entry: dict[str, Any] = {"seed": seed}
            for part in ("base", "novel"):
                idx = test[np.isin(data.labels[test], base if part == "base" else novel)]
                truth = np.array([remaps[part][int(c)] for c in data.labels[idx]], dtype=np.int64)
                entry[part] = _scores(fitted.logits(run.features(fitted, idx), sets[part]), truth)[0]
            runs.append(entry)
        means = _summary(runs, ("base", "novel"))
        row: dict[str, Any] = {"method": method.name, "title": method.title, "trains": method.trains, **means}
        row["hm"] = harmonic_mean(means["base"], means["novel"])
        row["per_seed"] = [{**r, "hm": harmonic_mean(r["base"], r["novel"])} for r in runs]
        out["rows"].append(row)
        run.log(f"base-to-novel {method.name}: base {row['base']:.2f}, novel {row['novel']:.2f}, HM {row['hm']:.2f}")
    return out
