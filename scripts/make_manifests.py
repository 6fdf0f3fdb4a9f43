"""Build the benchmark data manifests (``src/rsvlm/bench/manifests/*.txt``) from the shared real data.

Usage: python scripts/make_manifests.py [--shared ../shared/data] [--config configs/instructions-rs.yaml]
                                        [--out src/rsvlm/bench/manifests]

Each manifest lists the files one benchmark data selection reads (images and annotation files), by path
relative to the data root and SHA-256. Everything is derived deterministically from the data and the
instruction-builder config, never from a run folder, so rerunning gives byte-identical files:

- ``aid``: all AID images; ``aid-smoke``: 10 per class (seed 0) drawn from the AID images of the RSICD test
  split, which neither default model was trained on;
- ``rsicd-test``: the 1,027 AID-matched RSICD test images and the test caption files;
- ``rsvqa-lr-heldout`` / ``rsvqa-hr-heldout``: the images the instruction builder holds out (its own split
  code, its config's seed) and the RSVQA JSON files;
- ``neon``: the held-out NEON region(s) of the builder config (image and VOC XML);
- ``golden-whurs19``: the released WHU-RS19 embeddings, class names and published results;
- ``loveda``, ``sen1floods11``, ``rsvqa-lr``: every file of those folders (the rs-adapt few-shot suite).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DATA = PurePosixPath("../shared/data")
"""How configs/instructions-rs.yaml spells the data root (paths relative to the repository root)."""
MADE_BY = "made by scripts/make_manifests.py"
OUT_OF_DOMAIN = (
    ("loveda", "segmentation/loveda", "LoveDA tiles and masks (the few-shot suite's 64-px patches)"),
    ("sen1floods11", "flood/sen1floods11", "Sen1Floods11 chip: S1, S2 and hand labels (the few-shot suite's patches)"),
    ("rsvqa-lr", "rsvqa/lr", "RSVQA-LR, all 50 images + JSON files (rural/urban scene labels)"),
)
"""Folders the rs-adapt suite reads whole: (manifest name, folder under the data root, description)."""


def _rebase(path: str, shared: Path) -> str:
    """A config path under ``../shared/data`` moved under ``shared``."""
    try:
        return str(shared / PurePosixPath(path).relative_to(CONFIG_DATA))
    except ValueError:
        raise SystemExit(f"config path {path} is not under {CONFIG_DATA}; cannot relocate it to {shared}") from None


def builder_config(config_path: Path, shared: Path) -> Any:
    """The instruction-builder config with its data paths moved to ``shared``."""
    from rsvlm.build.instructions import load_instruction_config

    config = load_instruction_config(config_path)

    def moved(source: Any) -> Any:
        images = None if source.images is None else _rebase(source.images, shared)
        return replace(source, path=_rebase(source.path, shared), images=images)

    return replace(config, sources=tuple(map(moved, config.sources)), exclude=tuple(map(moved, config.exclude)))


def heldout_vqa(config: Any) -> dict[str, list[str]]:
    """Held-out image names per VQA source, computed by the builder's own split code (nothing is written)."""
    from rsvlm.build.instructions import BUILDERS, _Context

    with tempfile.TemporaryDirectory() as tmp:
        ctx = _Context(config, Path(tmp))
        out = {}
        for src in config.sources:
            if src.task == "vqa":
                name = src.name or Path(src.path).name
                out[name] = BUILDERS["vqa"](ctx, src, name).split["test"]
    return out


def _image_paths(path: Path, **kwargs: Any) -> list[Path]:
    from rsvlm.data.registry import open_dataset

    dataset = open_dataset(path, **kwargs)
    return [r.image_path for r in dataset.records if r.image_path is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_shared = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser.add_argument("--shared", type=Path, default=default_shared, help="the shared data root")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "instructions-rs.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "rsvlm" / "bench" / "manifests")
    args = parser.parse_args()

    from rsvlm.bench.manifest import write_manifest

    shared: Path = args.shared.resolve()
    if not (shared / "README.md").is_file():
        raise SystemExit(f"{shared}: not the shared data folder (no README.md); pass --shared")
    started = time.perf_counter()

    def write(name: str, paths: list[Path], what: str) -> None:
        t0 = time.perf_counter()
        manifest = write_manifest(shared, paths, args.out / f"{name}.txt", f"suite data: {what}; {MADE_BY}")
        print(f"{name}: {len(manifest)} files, {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    aid = _image_paths(shared / "aid")
    write("aid", aid, f"AID scene classification, all {len(aid):,} images (30 classes, 150 px)")

    rsicd = shared / "rsicd"
    test = _image_paths(rsicd, images=shared / "aid", split="test")
    captions = [rsicd / "test_filename.txt", rsicd / "test_caps.txt"]
    write("rsicd-test", [*test, *captions], f"RSICD test, {len(test):,} AID-matched images + caption files")

    by_class: dict[str, list[Path]] = {}
    for p in sorted(test):
        by_class.setdefault(p.parent.name, []).append(p)
    rng = random.Random(0)
    smoke = [p for cls in sorted(by_class) for p in rng.sample(by_class[cls], 10)]
    write(
        "aid-smoke",
        smoke,
        f"AID, 10 images per class (seed 0) = {len(smoke)}, drawn from the RSICD test images (held out of training)",
    )

    config = builder_config(args.config, shared)
    for name, held in heldout_vqa(config).items():
        folder = shared / "rsvqa" / name.removeprefix("rsvqa-")
        prefix = folder.name.upper()
        jsons = [folder / f"{prefix}_{part}.json" for part in ("images", "questions", "answers")]
        images = [folder / "images" / n for n in held]
        previous = ROOT / "runs" / "instructions" / "heldout" / f"{name}.txt"
        if previous.is_file() and sorted(previous.read_text(encoding="utf-8").split()) != sorted(held):
            print(f"note: {previous} differs from the recomputed split (built from another config?)", file=sys.stderr)
        write(
            f"{name}-heldout",
            [*images, *jsons],
            f"{name} images held out by the instruction builder ({len(held)}, seed {config.seed}) + JSON files",
        )

    regions: set[str] = set()
    box_root: Path | None = None
    for src in config.sources:
        if src.task in ("counting", "grounding"):
            regions |= set(src.test_images)
            box_root = Path(src.path)
    if box_root is None or not regions:
        raise SystemExit(f"{args.config}: no held-out box region (counting/grounding test_images)")
    held_images = [p for p in _image_paths(box_root) if p.name in regions]
    xmls = [p.with_suffix(".xml") for p in held_images]
    if len(held_images) != len(regions) or not all(x.is_file() for x in xmls):
        raise SystemExit(f"{box_root}: held-out regions {sorted(regions)} lack an image or a VOC XML file")
    write("neon", [*held_images, *xmls], f"NEON held-out region {', '.join(sorted(regions))} (image + VOC boxes)")

    for name, where, what in OUT_OF_DOMAIN:  # the few-shot suite's patch and scene readers read whole folders
        write(name, sorted(p for p in (shared / where).rglob("*") if p.is_file()), what)

    golden = shared / "golden" / "whurs19"
    files = sorted(p for p in golden.rglob("*") if p.is_file())
    write("golden-whurs19", files, "WHU-RS19 released embeddings of 4 RS-CLIP models, class names, published results")
    print(f"done in {time.perf_counter() - started:.1f} s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
