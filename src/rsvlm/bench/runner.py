"""``rsvlm bench``: every (model, task) pair of a suite, resumable, into one run folder.

Layout of a run folder (the contract the leaderboard and report read)::

    run.json                       suite, models, environment, seeds, data manifests and their digests
    results/<model>/<task>.json    metrics, leakage flag, anchors, plot details and weights digest of one pair
    work/<model>/<task>/           per-sample predictions (chat) — an interrupted task resumes here
    features/                      embedding cache (contrastive) — an interrupted embedding resumes here

A finished pair is not recomputed unless the model's own weights changed since (rsvlm's shipped models and
local folders are hashed); rerunning the same command after a kill continues where it
stopped, and the metrics equal those of an uninterrupted run (predictions are greedy and cached per
sample, embeddings are cached per image file). The runner only orchestrates: what a task computes is its
kind's ``run`` (``rsvlm.bench.kinds``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.bench.kind import Context, Family, Log, model_slug, shipped_manifest
from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json, run_lock

if TYPE_CHECKING:
    from rsvlm.bench.spec import Suite, TaskSpec

__all__ = ["Context", "environment", "load_model", "model_family", "run_suite", "weights_digest"]


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for package in ("rsvlm", "torch", "transformers", "open_clip_torch", "numpy", "rasterio"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": _torch_threads(),
        **versions,
    }


def _torch_threads() -> int | None:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a dependency
        return None


def model_family(name: str) -> Family:
    """``contrastive`` or ``chat``, from the registries (a folder: by what its config says)."""
    from rsvlm.models.chat.registry import CHAT_MODELS
    from rsvlm.models.registry import MODELS

    if name in MODELS:
        return "contrastive"
    if name in CHAT_MODELS:
        return "chat"
    path = Path(name)
    if (path / "config.json").is_file():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        return "chat" if "chat" in str(config.get("format", "")) or "llm" in config.get("model", {}) else "contrastive"
    known = ", ".join(sorted([*MODELS, *CHAT_MODELS]))
    raise RsvlmError(f"unknown model {name!r} for rsvlm bench (known: {known}; or a local model folder)")


def load_model(name: str, family: Family) -> object:
    if family == "chat":
        from rsvlm.models.chat.registry import load_chat

        return load_chat(name)
    from rsvlm.models.openclip import load_contrastive

    if Path(name).is_dir():
        from rsvlm.models.lite import load_lite

        return load_lite(name)
    loaded: object = load_contrastive(name, None, download=False)
    return loaded


def weights_digest(name: str) -> str | None:
    """SHA-256 over a model's own weight files (a local folder or a model shipped in the package), or None.

    A result made by other weights than the ones named now must not be reused when a run resumes: rsvlm's
    shipped models change when they are retrained, and a folder can be overwritten. Third-party releases
    are fixed named tags and are not hashed.
    """
    from rsvlm.digests import files_digest
    from rsvlm.models.chat.registry import CHAT_MODELS
    from rsvlm.models.registry import MODELS

    folder = Path(name)
    if not folder.is_dir():
        packaged = (name in CHAT_MODELS and CHAT_MODELS[name].packaged) or (
            name in MODELS and MODELS[name].loader == "lite"
        )
        if not packaged:
            return None
        from rsvlm.models.lite import packaged_weights

        folder = packaged_weights(name)
    return files_digest(sorted(folder.glob("*.safetensors")) + sorted(folder.glob("config.json")))


def _stale(target: Path, digest: str | None, out: Path, model: str, task_id: str, log: Log) -> bool:
    """True (after clearing the pair's result and per-sample work) when ``target`` came from other weights."""
    import shutil

    recorded = json.loads(target.read_text(encoding="utf-8")).get("weights_digest")
    if digest is None or recorded == digest:
        return False
    log(f"{model} · {task_id}: the saved result came from other weights than {model}'s now; redoing it")
    target.unlink()
    shutil.rmtree(out / "work" / model_slug(model) / task_id, ignore_errors=True)
    return True


def run_suite(
    suite: Suite,
    models: list[str],
    out: Path,
    data_root: Path,
    *,
    log: Log,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
    verify: bool = True,
) -> Path:
    """Run (or resume) ``suite`` for ``models`` into ``out``; returns the run folder.

    The folder is locked for the run: a second ``rsvlm bench`` on it is refused at once rather than
    computing every pair twice and racing on the same result and prediction files.
    """
    with run_lock(out, "bench run folder"):
        return _run_suite(suite, models, out, data_root, log=log, progress=progress, verify=verify)


def _run_suite(
    suite: Suite,
    models: list[str],
    out: Path,
    data_root: Path,
    *,
    log: Log,
    progress: Callable[[str], Callable[[int, int], None]] | None,
    verify: bool,
) -> Path:
    from rsvlm.bench.kinds import KINDS
    from rsvlm.bench.leakage import result_flag

    families = {m: model_family(m) for m in models}
    run_path = out / "run.json"
    previous = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else None
    if previous is not None and (previous.get("suite"), previous.get("suite_version")) != (suite.name, suite.version):
        raise RsvlmError(
            f"{out} holds a run of suite {previous.get('suite')} v{previous.get('suite_version')}; "
            "use another --out folder"
        )
    run = {
        "suite": suite.name,
        "suite_version": suite.version,
        "models": sorted({*models, *((previous or {}).get("models", []))}),
        "started": (previous or {}).get("started") or _now(),
        "finished": None,
        "environment": environment(),
        "seeds": {"linear_probe": [1, 2, 3], "generation": "greedy (deterministic)"},
        "data": data_manifests(suite, data_root, verify, log),
    }
    atomic_write_json(run_path, run, default=_jsonable)
    pairs: list[tuple[str, TaskSpec]] = []
    for model in models:
        pairs += [(model, t) for t in suite.tasks if KINDS[t.kind].family == families[model]]
    pairs += [("published", t) for t in suite.tasks if KINDS[t.kind].family == "embeddings"]
    loaded: dict[str, object] = {}
    digests = {m: weights_digest(m) for m in models}
    for n, (model, task) in enumerate(pairs, start=1):
        target = out / "results" / model_slug(model) / f"{task.id}.json"
        if target.is_file() and not _stale(target, digests.get(model), out, model, task.id, log):
            log(f"[{n}/{len(pairs)}] {model} · {task.id}: done already")
            continue
        kind = KINDS[task.kind]
        if kind.family != "embeddings" and model not in loaded:
            log(f"loading {model}")
            loaded = {model: load_model(model, kind.family)}  # one model in memory at a time
        ctx = Context(
            data_root, out, model, loaded.get(model), log, progress(f"{model} · {task.id}") if progress else None
        )
        log(f"[{n}/{len(pairs)}] {model} · {task.id} ({task.kind})")
        start = time.perf_counter()
        measured = kind.run(task, ctx)
        result = {
            "samples": measured.samples,
            "copy_free": measured.copy_free,
            "metrics": {k: v for k, v in measured.metrics.items() if isinstance(v, int | float)},
            "details": measured.details,
            "task": task.id,
            "kind": task.kind,
            "model": model,
            "family": kind.family,
            "seconds": round(time.perf_counter() - start, 2),
            "seen_in_training": result_flag(model, task),
            "anchors": [a.__dict__ for a in task.anchors],
            "weights_digest": digests.get(model),
        }
        atomic_write_json(target, result, default=_jsonable)
    run["finished"] = _now()
    atomic_write_json(run_path, run, default=_jsonable)
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def data_manifests(suite: Suite, data_root: Path, verify: bool, log: Log) -> dict[str, Any]:
    """Per task its manifest, file count and (when verified) digest, for ``run.json``; refuses data that does not
    match its manifest, naming the first files that differ."""
    from rsvlm.bench.manifest import ManifestCheck, verify_manifest

    out: dict[str, Any] = {}
    checks: dict[str, ManifestCheck] = {}  # tasks sharing a manifest hash its files once
    for task in suite.tasks:
        name = task.data.manifest
        if name is None:
            out[task.id] = {"manifest": None}
            continue
        manifest = shipped_manifest(name)
        entry: dict[str, Any] = {"manifest": name, "files": len(manifest.files)}
        if verify:
            if name not in checks:
                checks[name] = verify_manifest(manifest, data_root)
            check = checks[name]
            if not check.ok:
                bad = (check.missing + check.changed)[:3]
                raise RsvlmError(
                    f"task {task.id}: data under {data_root} does not match manifest {name} "
                    f"({len(check.missing)} missing, {len(check.changed)} changed, e.g. {', '.join(map(str, bad))})"
                )
            entry.update(digest=check.digest, verified=True)
        out[task.id] = entry
    log(f"data verified against {sum(1 for v in out.values() if v.get('manifest'))} manifests")
    return out
