"""Captioning metrics through pycocoevalcap (the COCO caption toolkit RS captioning papers use), and the
human-agreement ceiling of a caption set.

Scores are corpus-level as pycocoevalcap computes them: BLEU-1..4 (closest reference length), METEOR
1.5, ROUGE-L, CIDEr-D, after PTB tokenisation; all need Java. SPICE needs Stanford CoreNLP 3.6.0 jars
that pycocoevalcap normally downloads on first use; without them (no internet) it is skipped with a
one-line note instead of failing the whole evaluation.

Human agreement: each reference caption k of an image is scored as if it were a prediction against the
image's other captions (leave one out). It shows how well one human agrees with the others under these
metrics, which is the realistic ceiling for a model scored against fewer references.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.protocols import ProtocolTask

DEFAULT_PROTOCOL = "caption-coco/1"
METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
_SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def _package_dir() -> Path:
    spec = find_spec("pycocoevalcap")  # a namespace package: no __init__.py, so no origin
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RsvlmError("pycocoevalcap is not installed: pip install pycocoevalcap (captioning metrics need it)")
    return Path(locations[0])


def spice_missing() -> str | None:
    """Why SPICE cannot run here (one line), or None when it can."""
    lib = _package_dir() / "spice" / "lib"
    missing = [j for j in _SPICE_JARS if not (lib / j).is_file()]
    if missing:
        return f"SPICE skipped: {lib} lacks {', '.join(missing)} (SPICE downloads them on first use; copy them there)"
    return None


def _one_line(caption: str) -> str:
    return " ".join(caption.split()) or "."


def _check_java() -> None:
    if shutil.which("java") is None:
        raise RsvlmError("java not found: PTB tokenisation, METEOR and SPICE need a Java runtime (e.g. OpenJDK 17)")
    folder = _package_dir() / "tokenizer"
    if not os.access(folder, os.W_OK):
        raise RsvlmError(f"{folder} is not writable: pycocoevalcap's tokenizer writes temporary files there")


def caption_metrics(
    references: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    metrics: Sequence[str] = METRICS,
    scale: float = 100.0,
) -> dict[str, Any]:
    """Corpus scores of ``predictions`` (one caption per image id) against ``references`` (several per id).

    Returns each requested metric times ``scale`` (None for SPICE when skipped), ``n`` and ``notes``.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise RsvlmError(f"unknown caption metric {unknown[0]!r}; known metrics: {', '.join(METRICS)}")
    if set(references) != set(predictions):
        raise RsvlmError("captions: predictions and references cover different image ids; score finished runs only")
    empty = sorted(k for k, refs in references.items() if not refs)
    if empty:
        raise RsvlmError(f"image {empty[0]} has no reference caption; drop it or add its captions")
    _check_java()
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer  # type: ignore[import-untyped]

    ids = sorted(references)
    # PTB tokenisation: an empty prediction would shift the tokenizer's line alignment, so it scores as ".".
    # One tokenizer call (one JVM start) for references and predictions together. The tokenizer reads one
    # caption per line, so every kind of line break becomes a space and an empty caption becomes ".".
    both = {("ref", i): [{"caption": _one_line(c)} for c in references[i]] for i in ids}
    both.update({("pred", i): [{"caption": _one_line(predictions[i])}] for i in ids})
    tokens = PTBTokenizer().tokenize(both)
    if any(len(tokens.get(key, [])) != len(value) for key, value in both.items()):
        raise RsvlmError("PTB tokenizer output is misaligned with its input; check the captions for control characters")
    gts = {i: tokens[("ref", i)] for i in ids}
    res = {i: tokens[("pred", i)] for i in ids}
    out: dict[str, Any] = {"n": len(ids), "notes": []}
    wanted = set(metrics)
    if wanted & {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"}:
        from pycocoevalcap.bleu.bleu import Bleu  # type: ignore[import-untyped]

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for k in range(4):
            if f"BLEU-{k + 1}" in wanted:
                out[f"BLEU-{k + 1}"] = scale * float(bleu[k])
    if "METEOR" in wanted:
        from pycocoevalcap.meteor.meteor import Meteor  # type: ignore[import-untyped]

        meteor = Meteor()
        try:
            out["METEOR"] = scale * float(meteor.compute_score(gts, res)[0])
        except (OSError, ValueError) as exc:
            if meteor.lock.locked():  # else its __del__ would wait on the lock for ever
                meteor.lock.release()
            raise RsvlmError(f"METEOR failed ({exc}); check that Java runs: java -version") from None
    if "ROUGE-L" in wanted:
        from pycocoevalcap.rouge.rouge import Rouge  # type: ignore[import-untyped]

        out["ROUGE-L"] = scale * float(Rouge().compute_score(gts, res)[0])
    if "CIDEr" in wanted:
        from pycocoevalcap.cider.cider import Cider  # type: ignore[import-untyped]

        out["CIDEr"] = scale * float(Cider().compute_score(gts, res)[0])
    if "SPICE" in wanted:
        reason = spice_missing()
        if reason is None:
            from pycocoevalcap.spice.spice import Spice  # type: ignore[import-untyped]

            out["SPICE"] = scale * float(Spice().compute_score(gts, res)[0])
        else:
            out["SPICE"] = None
            out["notes"].append(reason)
    return {k: out[k] for k in ("n", *[m for m in METRICS if m in wanted], "notes")}


def leave_one_out(references: Mapping[str, Sequence[str]], k: int) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Caption ``k`` of each image as the prediction, the image's other captions as references."""
    short = sorted(i for i, refs in references.items() if len(refs) <= k or len(refs) < 2)
    if short:
        raise RsvlmError(f"image {short[0]} has fewer than {max(k + 1, 2)} captions; leave-one-out needs them")
    refs = {i: [c for j, c in enumerate(caps) if j != k] for i, caps in references.items()}
    preds = {i: caps[k] for i, caps in references.items()}
    return refs, preds


def _key(caption: str) -> str:
    """What makes two captions the same: case, spacing and a final period ignored."""
    return " ".join(caption.lower().rstrip(" .").split())


def distinct_captions(references: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each image's captions without repeats, in first-seen order."""
    out: dict[str, list[str]] = {}
    for i, caps in references.items():
        seen: dict[str, str] = {}
        for c in caps:
            seen.setdefault(_key(c), c)
        out[i] = list(seen.values())
    return out


def human_agreement(
    references: Mapping[str, Sequence[str]],
    held_out: int | None = None,
    metrics: Sequence[str] = METRICS,
    scale: float = 100.0,
    distinct: bool = False,
) -> dict[str, Any]:
    """Leave-one-caption-out scores of a caption set.

    ``held_out=k`` scores caption k of every image against the image's other captions; ``held_out=None``
    averages those scores over k = 0 … (fewest captions per image − 1). ``duplicate_share`` is the
    percentage of images whose held-out caption appears verbatim among the references: RSICD pads images
    with fewer than five distinct captions by repeating them, which inflates agreement. ``distinct=True``
    removes repeats first and keeps only images with at least two distinct captions (``dropped`` counts
    the others), so a caption is never scored against a copy of itself.
    """
    dropped = 0
    if distinct:
        unique = distinct_captions(references)
        references = {i: caps for i, caps in unique.items() if len(caps) >= 2}
        dropped = len(unique) - len(references)
    if held_out is not None:
        refs, preds = leave_one_out(references, held_out)
        result = caption_metrics(refs, preds, metrics, scale)
        dup = sum(_key(preds[i]) in {_key(r) for r in refs[i]} for i in preds)
        share = 100.0 * dup / len(preds) if preds else None
        return {**result, "held_out": held_out, "distinct": distinct, "dropped": dropped, "duplicate_share": share}
    ks = range(min((len(v) for v in references.values()), default=0))
    runs = [human_agreement(references, k, metrics, scale) for k in ks]
    if not runs:
        raise RsvlmError("no captions to score")
    averaged: dict[str, Any] = {"n": runs[0]["n"]}
    for key in (*[m for m in METRICS if m in metrics], "duplicate_share"):
        values = [r[key] for r in runs]
        averaged[key] = None if any(v is None for v in values) else sum(values) / len(values)
    averaged.update({"held_out": f"mean over k=0..{len(runs) - 1}", "distinct": distinct, "dropped": dropped})
    averaged["notes"] = sorted({note for r in runs for note in r["notes"]})
    return averaged


class CaptionTask(ProtocolTask):
    """One caption per image, scored against ``sample.captions``."""

    name = "caption"

    def __init__(self, protocol: str | Path = DEFAULT_PROTOCOL) -> None:
        super().__init__(protocol)

    def accepts(self, sample: Sample) -> bool:
        return len(sample.captions) > 0

    def prompt(self, sample: Sample, family: str) -> str:
        return self._protocol.prompt(family)

    def score(self, samples: Sequence[Sample], predictions: Sequence[str], box_format: str) -> dict[str, Any]:
        self.check_finished(samples, predictions)
        ids = [s.id for s in samples]
        if len(set(ids)) != len(ids):
            raise RsvlmError("caption samples must have unique ids (one prediction per image)")
        references = {s.id: list(s.captions) for s in samples}
        m = self._protocol.matching
        return caption_metrics(references, dict(zip(ids, predictions, strict=True)), m.metrics or METRICS, m.scale)
