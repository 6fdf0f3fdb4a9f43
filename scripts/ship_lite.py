"""Copy a finished lite training run into the package as the shipped default model.

Usage: python scripts/ship_lite.py RUN_DIR [--name rsvlm-lite]
Writes src/rsvlm/models/weights/<name>/{model.safetensors (float16), config.json, training_log.jsonl};
the model card (MODEL_CARD.md) in that folder is written by hand from the benchmark output.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default="rsvlm-lite")
    args = parser.parse_args()

    from rsvlm.models.lite import load_lite, save_lite

    best = args.run / "best"
    model = load_lite(best, args.name)
    meta = json.loads((best / "config.json").read_text())
    run_config = json.loads((args.run / "config.json").read_text())
    target = ROOT / "src" / "rsvlm" / "models" / "weights" / args.name
    save_lite(
        model.net,
        target,
        {"epoch": meta.get("epoch"), "val": meta.get("val"), "fingerprint": run_config.get("fingerprint")},
        half=True,
    )
    shutil.copy(args.run / "metrics.jsonl", target / "training_log.jsonl")
    size = (target / "model.safetensors").stat().st_size / 2**20
    print(f"shipped {best} (epoch {meta.get('epoch')}) to {target}: {size:.1f} MiB")


if __name__ == "__main__":
    main()
