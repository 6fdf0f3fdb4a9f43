"""Floors and ceilings for the chat tasks, from the annotations alone (no model), under the shipped protocols.

- RSVQA LR and HR (demo subsets, 50 images each): the majority answer per question type. Held out: the
  images are shuffled with a fixed seed and halved; the majority answers of one half (A) are scored on
  the other (B), and the reverse. In-sample: majority of all questions scored on all of them (an
  optimistic floor: it has seen the test answers). Accuracy per type, overall and average (vqa-rsvqa/1).
- RSICD test captions: human agreement, leave one caption out (caption k of every image scored against
  the other four with pycocoevalcap, caption-coco/1), for k = 0 and averaged over k = 0..4; on the 1,027
  test images that are AID images (what a chat-model run on this data scores) and on all 1,093. RSICD
  repeats captions, so a held-out caption often has a verbatim copy among the references; the
  ``distinct`` column removes repeats first (images with one distinct caption are dropped).

Usage: python benchmarks/chat_baselines.py [DATA_DIR] [--seed 0] [--skip-captions] [--json OUT]
DATA_DIR defaults to $RSVLM_SHARED_DATA or ../shared/data. Cite RSVQA (Lobry et al., TGRS 2020) and
RSICD (Lu et al., TGRS 2018) when using these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))

PUBLISHED_RSICD = {  # model scores on the full RSICD test set (BLEU-4 / CIDEr), from the data README
    "SAA": (28.08, 132.35),
    "RSGPT": (36.83, 102.94),
    "SkyEyeGPT": (59.99, 83.65),
}


def split_images(samples: list[Any], seed: int) -> tuple[list[Any], list[Any]]:
    """Two halves of the questions, split by image: sorted image ids shuffled with ``seed``, first half = A."""
    images = sorted({s.meta["image_id"] for s in samples})
    random.Random(seed).shuffle(images)
    first = set(images[: len(images) // 2])
    return [s for s in samples if s.meta["image_id"] in first], [s for s in samples if s.meta["image_id"] not in first]


def rsvqa_baselines(folder: Path, seed: int) -> dict[str, Any]:
    from rsvlm.data.registry import open_dataset
    from rsvlm.tasks.chat.protocols import load_protocol
    from rsvlm.tasks.chat.vqa import VqaTask, canonical_type, majority_answers

    dataset = open_dataset(folder)
    samples = dataset.records
    task = VqaTask()
    protocol = load_protocol(task.protocol_id)
    a, b = split_images(samples, seed)

    def score(train: list[Any], test: list[Any]) -> dict[str, Any]:
        majority = majority_answers(train, protocol)
        predictions = [majority.get(canonical_type(s.question_type, protocol), "") for s in test]
        return {"majority": majority, **task.score(test, predictions, "pixel")}

    return {
        "questions": len(samples),
        "unmatched": len(dataset.unmatched),
        "images": len({s.meta["image_id"] for s in samples}),
        "split": {"seed": seed, "A_questions": len(a), "B_questions": len(b)},
        "A->B": score(a, b),
        "B->A": score(b, a),
        "in-sample": score(samples, samples),
    }


def _fmt(value: Any, width: int = 9) -> str:
    if value is None:
        return "—".rjust(width)
    return f"{value:{width}.2f}" if isinstance(value, float) else str(value).rjust(width)


def print_rsvqa(results: dict[str, dict[str, Any]]) -> None:
    runs = ("A->B", "B->A", "in-sample")
    header = "".join(f"{name.upper()} {run}".rjust(16) for name in results for run in runs)
    print("RSVQA majority answer per question type, accuracy % (protocol vqa-rsvqa/1)")
    print("row".ljust(22) + header)
    rows: list[tuple[str, str, str | None]] = []
    types = sorted({t for r in results.values() for t in r["in-sample"]["per_type"]})
    for t in types:
        rows.append((f"{t} (n)", t, "n"))
        rows.append((f"{t}", t, "accuracy"))
    rows += [
        ("count binned", "count", "binned"),
        ("count MAE (objects)", "count", "mae"),
        ("area binned", "area", "binned"),
        ("overall", "", "overall"),
        ("average (mean of types)", "", "average"),
    ]
    for label, qtype, key in rows:
        cells = []
        for r in results.values():
            for run in runs:
                m = r[run]
                value = m.get(key) if not qtype else m["per_type"].get(qtype, {}).get(key or "")
                cells.append(_fmt(value, 16))
        print(label.ljust(22) + "".join(cells))
    for name, r in results.items():
        split = r["split"]
        print(
            f"{name.upper()}: {r['questions']} questions on {r['images']} images; split by image "
            f"(seed {split['seed']}): A {split['A_questions']} / B {split['B_questions']} questions; majority A->B "
            f"{r['A->B']['majority']}, in-sample {r['in-sample']['majority']}"
        )


def rsicd_references(root: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Test captions of the AID-matched images (via the dataset reader) and of all test images (raw files)."""
    from rsvlm.data.registry import open_dataset

    matched = open_dataset(root / "rsicd", images=root / "aid", split="test")
    aid = {s.id: list(s.captions) for s in matched.records}
    names = (root / "rsicd" / "test_filename.txt").read_text(encoding="utf-8").splitlines()
    caps = (root / "rsicd" / "test_caps.txt").read_text(encoding="utf-8").splitlines()
    if len(names) != len(caps):
        raise SystemExit(f"{root / 'rsicd'}: test_filename.txt and test_caps.txt differ in length")
    every: dict[str, list[str]] = {}
    for name, cap in zip(names, caps, strict=True):
        every.setdefault(Path(name.strip()).stem, []).append(cap.strip())
    return aid, every


def rsicd_agreement(root: Path) -> dict[str, dict[str, Any]]:
    from rsvlm.tasks.chat.captioning import human_agreement

    aid, every = rsicd_references(root)
    return {
        "AID 1,027, k=0": human_agreement(aid, held_out=0),
        "AID 1,027, mean k": human_agreement(aid, held_out=None),
        "AID 1,027, distinct k=0": human_agreement(aid, held_out=0, distinct=True),
        "all 1,093, k=0": human_agreement(every, held_out=0),
    }


def print_rsicd(results: dict[str, dict[str, Any]]) -> None:
    from rsvlm.tasks.chat.captioning import METRICS

    print("RSICD test human agreement, leave one caption out, x100 (protocol caption-coco/1)")
    print("metric".ljust(18) + "".join(name.rjust(25) for name in results))
    for key in (*METRICS, "duplicate_share", "n", "dropped"):
        print(key.ljust(18) + "".join(_fmt(r.get(key), 25) for r in results.values()))
    notes = sorted({note for r in results.values() for note in r.get("notes", [])})
    for note in notes:
        print(f"note: {note}")
    print(
        "duplicate_share: % of images whose held-out caption has a verbatim copy among its references. "
        "k=0 uses 4 references per image (models are scored against 5)."
    )
    refs = ", ".join(f"{name} {b4:.2f} / {cider:.2f}" for name, (b4, cider) in PUBLISHED_RSICD.items())
    print(f"published model scores, full RSICD test (BLEU-4 / CIDEr): {refs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image split (default 0)")
    parser.add_argument("--skip-captions", action="store_true", help="skip the RSICD agreement (needs Java)")
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    args = parser.parse_args(argv)
    root: Path = args.data.resolve()
    if not (root / "rsvqa").is_dir():
        print(f"data not found at {root} (pass DATA_DIR or set RSVLM_SHARED_DATA)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    vqa = {name: rsvqa_baselines(root / "rsvqa" / name, args.seed) for name in ("lr", "hr")}
    print_rsvqa(vqa)
    out: dict[str, Any] = {"rsvqa": vqa}
    if not args.skip_captions:
        print()
        captions = rsicd_agreement(root)
        print_rsicd(captions)
        out["rsicd_human_agreement"] = captions
    print(f"\n({time.perf_counter() - started:.0f} s; data {root})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
