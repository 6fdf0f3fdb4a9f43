"""rsvlm's chat models on real held-out data, next to the baselines their targets are set against.

For each model (a saved lite chat folder, or a registered name such as ``rsvlm-lite-chat``):

- RSICD test captioning (caption-coco/1: BLEU-4, METEOR, ROUGE-L, CIDEr with pycocoevalcap) on the 1,027
  test images that are AID images (the shared data has AID, not the 66 other RSICD test images; published
  scores use all 1,093). None of these images is in the instruction data (excluded by file content).
- RSVQA LR and HR on the images the instruction builder held out (``heldout/rsvqa-*.txt``: 20 % of the
  images, split by image with seed 0), accuracy per type (vqa-rsvqa/1), next to the majority answer per
  type learnt on the training images and scored on the same held-out questions (issue 6's baseline), and
  a stronger blind one: the majority answer per question ("question prior (no image)"). Count: exact and
  MAE. ``--blind`` reruns a model with every image replaced by uniform grey, to see what it gets from looking.
- NEON tree counting (counting/1) and grounding (grounding/1) on the held-out OSBS_029 tiles, next to the
  box-free baseline: the mean count of the training tiles.

Every run is a resumable ``evaluate_chat`` folder under ``--out`` (rerun the same command after a crash).
Usage:
  python benchmarks/chat_model.py [--model rsvlm-lite-chat] [--model runs/chat-study/mlp/final …]
      [--instructions runs/instructions] [--data ../shared/data] [--out runs/bench-chat] [--limit N]
      [--tasks caption,vqa-lr,vqa-hr,counting,grounding] [--blind] [--json OUT] [--markdown OUT]
The instruction folder comes from: rsvlm data instructions --config configs/instructions-rs.yaml --out …
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))
TASKS = ("caption", "vqa-lr", "vqa-hr", "counting", "grounding")
PUBLISHED_RSICD = {"SkyEyeGPT": (59.99, 83.65), "RSGPT": (36.83, 102.94), "SAA": (28.08, 132.35)}
"""(BLEU-4, CIDEr) on the full RSICD test set, as the shared data README quotes them."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


@functools.cache
def train_records(instructions: Path) -> list[dict[str, Any]]:
    """The instruction file (~55k conversations), read once however many models and tasks use it."""
    records: list[dict[str, Any]] = json.loads((instructions / "train.json").read_text(encoding="utf-8"))
    return records


def train_image_names(instructions: Path, source: str) -> set[str]:
    """File names of the images a VQA source used for training (everything not held out)."""
    heldout = set((instructions / "heldout" / f"{source}.txt").read_text(encoding="utf-8").split())
    records = train_records(instructions)
    names = {Path(r["image"]).name for r in records if str(r.get("id", "")).startswith(f"{source}-")}
    leaked = names & heldout
    if leaked:
        raise SystemExit(f"{instructions}: held-out {source} images appear in train.json: {sorted(leaked)[:3]}")
    return names


def majority_baseline(dataset: Any, train: set[str], heldout: set[str]) -> dict[str, Any]:
    """Two blind baselines learnt on the training images, scored on the held-out ones: the majority
    answer per type (issue 6's bar) and, under ``question_prior``, the majority answer per question."""
    from rsvlm.tasks.chat.protocols import load_protocol
    from rsvlm.tasks.chat.vqa import VqaTask, canonical_type, majority_answers, question_key, question_prior_answers

    task = VqaTask()
    protocol = load_protocol(task.protocol_id)
    fit = [s for s in dataset.records if s.image_path is not None and s.image_path.name in train]
    test = [s for s in dataset.records if s.image_path is not None and s.image_path.name in heldout]
    majority = majority_answers(fit, protocol)
    predictions = [majority.get(canonical_type(s.question_type, protocol), "") for s in test]
    prior = question_prior_answers(fit, protocol)
    by_question = [
        prior.get(question_key(s.question or ""), majority.get(canonical_type(s.question_type, protocol), ""))
        for s in test
    ]
    return {
        "majority": majority,
        **task.score(test, predictions, "pixel"),
        "question_prior": {"questions": len(prior), **task.score(test, by_question, "pixel")},
    }


class GrayImages:
    """A chat model whose every image is replaced by a uniform mid-grey one of the same shape: what it
    answers then comes from the question alone (``--blind``), which separates looking from guessing."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = f"{model.name} (grey image)"
        self.family, self.box_format = model.family, model.box_format

    def generate(self, requests: Any, config: Any = None) -> list[str]:
        from dataclasses import replace

        import numpy as np

        def grey(image: Any) -> Any:
            return replace(image, data=np.full_like(image.data, 128))

        blind = [replace(r, images=tuple(grey(i) for i in r.images)) for r in requests]
        return list(self.model.generate(blind, config))


def mean_count_baseline(instructions: Path, dataset: Any, task: Any) -> dict[str, Any]:
    """MAE of always answering the mean tree count of the training tiles (no boxes, no image)."""
    from rsvlm.tasks.chat.counting import count_metrics

    records = train_records(instructions)
    counts = [float(r["conversations"][1]["value"]) for r in records if r.get("task") == "counting"]
    mean = statistics.fmean(counts)
    samples = [s for s in dataset.records if task.accepts(s)]
    targets = [float(t) for s in samples if (t := task.target(s)) is not None]
    return {"train_tiles": len(counts), "mean": mean, **count_metrics([mean] * len(targets), targets)}


def run_model(source: str, args: argparse.Namespace) -> dict[str, Any]:
    from rsvlm.data.registry import open_dataset
    from rsvlm.models.chat.protocol import GenerationConfig
    from rsvlm.models.chat.registry import load_chat
    from rsvlm.tasks.chat.registry import make_task
    from rsvlm.tasks.chat_eval import evaluate_chat

    started = time.time()
    model = load_chat(source)
    print(f"{source}: loaded in {time.time() - started:.0f}s", file=sys.stderr)
    slug = _slug(source if not Path(source).is_dir() else str(Path(source)))
    folder = Path(args.out) / (slug + "-grey" * args.blind)
    if args.blind:
        model = GrayImages(model)
    data, instr = Path(args.data), Path(args.instructions)
    heldout = instr / "heldout"
    jobs: dict[str, tuple[Any, dict[str, Any], Any, int]] = {
        "caption": (
            lambda: open_dataset(data / "rsicd", images=data / "aid", split="test"),
            {},
            lambda: None,
            40,
        ),
        "vqa-lr": (lambda: open_dataset(data / "rsvqa" / "lr"), {}, lambda: _names(heldout / "rsvqa-lr.txt"), 8),
        "vqa-hr": (lambda: open_dataset(data / "rsvqa" / "hr"), {}, lambda: _names(heldout / "rsvqa-hr.txt"), 8),
        "counting": (lambda: open_dataset(heldout / "neon-counting"), {"object_name": "trees"}, lambda: None, 8),
        "grounding": (lambda: open_dataset(heldout / "neon-grounding"), {}, lambda: None, 32),
    }
    path = Path(source)
    label = path.parent.name if path.is_dir() and path.name in {"final", "last"} else model.name
    label += " (grey image)" * (args.blind and not label.endswith("(grey image)"))
    result: dict[str, Any] = {"model": source, "name": label, "tasks": {}}
    for name in args.tasks:
        opener, options, subset_of, max_new = jobs[name]
        dataset, subset = opener(), subset_of()
        task_name = name.split("-")[0]
        task = make_task(task_name, dataset, **options)
        t0 = time.time()
        report = evaluate_chat(
            model,
            task,
            dataset,
            folder / name,
            limit=args.limit,
            subset=subset,
            config=GenerationConfig(max_new_tokens=max_new, batch_size=args.batch_size),
        )
        entry: dict[str, Any] = {"metrics": report["metrics"], "seconds": time.time() - t0}
        if name.startswith("vqa"):
            source_name = "rsvqa-" + name.split("-")[1]
            entry["baseline"] = majority_baseline(dataset, train_image_names(instr, source_name), subset or set())
        if name == "counting":
            entry["baseline"] = mean_count_baseline(instr, dataset, task)
        result["tasks"][name] = entry
        print(f"{source} {name}: {time.time() - t0:.0f}s", file=sys.stderr)
    result["training"] = training_record(Path(source))
    return result


def _names(path: Path) -> set[str]:
    if not path.is_file():
        raise SystemExit(f"{path}: not found; build the instruction data first (see this script's docstring)")
    return set(path.read_text(encoding="utf-8").split())


def training_record(folder: Path) -> dict[str, Any]:
    """Alignment layer, trainable parameters and seconds per step from a trained folder and its run."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        return {}
    config = json.loads(config_path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"alignment": config.get("model", {}).get("alignment"), "steps": config.get("steps")}
    weights = folder / "model.safetensors"
    if weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as f:
            shapes = {k: f.get_slice(k).get_shape() for k in f.keys() if k != "vocab_subset"}  # noqa: SIM118
        sizes = {k: math.prod(v) for k, v in shapes.items()}
        out["alignment_params"] = sum(v for k, v in sizes.items() if k.startswith("alignment."))
        out["lora_params"] = sum(v for k, v in sizes.items() if not k.startswith("alignment."))
    for log in (folder / "training_log.jsonl", folder.parent / "metrics.jsonl"):
        if log.is_file():
            rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
            if rows:
                out["seconds_per_step"] = statistics.fmean(r["seconds_per_step"] for r in rows)
                out["final_loss"] = rows[-1]["loss"]
            break
    return out


def _f(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | alignment | trained params | s/step | final loss | BLEU-4 | METEOR | ROUGE-L | CIDEr | "
        "NEON count MAE | NEON grounding acc@0.5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, tr = r["tasks"], r.get("training", {})
        cap = t.get("caption", {}).get("metrics", {})
        cnt = t.get("counting", {}).get("metrics", {})
        grd = t.get("grounding", {}).get("metrics", {})
        params = (tr.get("alignment_params") or 0) + (tr.get("lora_params") or 0)
        lines.append(
            f"| {r['name']} | {tr.get('alignment', '—')} | {params / 1e6:.2f} M | {_f(tr.get('seconds_per_step'))} | "
            f"{_f(tr.get('final_loss'), 3)} | {_f(cap.get('BLEU-4'))} | {_f(cap.get('METEOR'))} | "
            f"{_f(cap.get('ROUGE-L'))} | {_f(cap.get('CIDEr'))} | {_f(cnt.get('mae'))} | {_f(grd.get('acc@0.5'))} |"
        )
    base = next((r["tasks"]["counting"]["baseline"] for r in results if "counting" in r["tasks"]), None)
    if base:
        lines.append(
            f"| mean count of {base['train_tiles']} training tiles ({base['mean']:.2f}) | | | | | | | | | "
            f"{_f(base['mae'])} | |"
        )
    for name, (b4, cider) in PUBLISHED_RSICD.items():
        lines.append(f"| {name} (published, all 1,093 test images) | | | | | {b4:.2f} | | | {cider:.2f} | | |")
    for source in ("vqa-lr", "vqa-hr"):
        rows = [r for r in results if source in r["tasks"]]
        if not rows:
            continue
        base = rows[0]["tasks"][source]["baseline"]
        types = sorted({k for r in rows for k in r["tasks"][source]["metrics"]["per_type"]} | set(base["per_type"]))
        lines += ["", f"RSVQA {source[-2:].upper()}, held-out images, accuracy % (count: exact; MAE in objects)", ""]
        lines.append("| model | " + " | ".join(types) + " | count MAE | overall | average |")
        lines.append("|---" * (len(types) + 4) + "|")
        baselines = [("majority per type", base), ("question prior (no image)", base["question_prior"])]
        for label, m in [*[(r["name"], r["tasks"][source]["metrics"]) for r in rows], *baselines]:
            cells = [_f(m["per_type"].get(t, {}).get("accuracy")) for t in types]
            mae = m["per_type"].get("count", {}).get("mae")
            lines.append(
                f"| {label} | " + " | ".join(cells) + f" | {_f(mae)} | {_f(m['overall'])} | {_f(m['average'])} |"
            )
        n = {t: base["per_type"][t]["n"] for t in types if t in base["per_type"]}
        lines.append(f"\nquestions per type: {n}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name or folder (repeatable)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--instructions", default=str(ROOT / "runs" / "instructions"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-chat"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--blind", action="store_true", help="replace every image by uniform grey (ablation)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    results = [run_model(m, args) for m in (args.model or ["rsvlm-lite-chat"])]
    table = markdown(results)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
