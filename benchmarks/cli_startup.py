"""Wall time of `rsvlm --help` (target: under 1 s on the 2-core machines). Prints a table.

Usage: python benchmarks/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def time_command(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache once
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    entry = shutil.which("rsvlm", path=str(Path(sys.executable).parent)) or "rsvlm"
    rows = [
        ("rsvlm --help", [entry, "--help"]),
        ("rsvlm data --help", [entry, "data", "--help"]),
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
    ]
    print("| command | median s | max s | runs |\n|---|---|---|---|")
    for name, command in rows:
        times = time_command(command, args.runs)
        print(f"| {name} | {statistics.median(times):.3f} | {max(times):.3f} | {args.runs} |")


if __name__ == "__main__":
    main()
