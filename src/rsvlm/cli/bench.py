"""``rsvlm bench SUITE``: run a benchmark suite for several models; leaderboard and HTML report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer


def bench(
    suite: Annotated[str, typer.Argument(help="Suite name (smoke, rs-core) or a suite YAML file.")],
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            "-m",
            help="Comma-separated models (default: rsvlm-lite,rsvlm-lite-chat; with --adapter: the adapter's model).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default: runs/bench/SUITE); rerun to resume.")
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root", help="Where the suite's datasets live (default: $RSVLM_SHARED_DATA or ../shared/data)."
        ),
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip checking data files against the manifests.")
    ] = False,
    adapter: Annotated[
        Path | None,
        typer.Option(
            "--adapter",
            help="Adapter folder (`rsvlm adapt fit`): score its model as MODEL+METHOD on the tasks of its classes.",
        ),
    ] = None,
) -> None:
    """Run every (model, task) pair of a suite, resumably; writes leaderboard.md/csv/json and report.html."""
    from rsvlm.bench.runner import run_suite
    from rsvlm.bench.spec import load_suite

    spec = load_suite(suite)
    default = "rsvlm-lite,rsvlm-lite-chat"
    if adapter is not None:
        from rsvlm.adapt.saved import read_adapter_config

        base = read_adapter_config(adapter)["base"]
        default = str(base.get("name")) if isinstance(base, dict) else default
    names = [m.strip() for m in (models or default).split(",") if m.strip()]
    root = data_root or Path(os.environ.get("RSVLM_SHARED_DATA", "../shared/data"))
    folder = out or Path("runs") / "bench" / spec.name
    from rsvlm.bench.report import finish_run
    from rsvlm.fileio import run_lock

    with run_lock(folder, "bench run folder"):  # the leaderboards and report too, not only the pairs
        run_suite(spec, names, folder, root, log=_log, progress=_progress, verify=not no_verify, adapter=adapter)
        written = finish_run(folder)
    for path in written:
        typer.echo(str(path))


def _log(message: str) -> None:
    print(f"[rsvlm bench] {message}", file=sys.stderr, flush=True)


def _progress(label: str) -> Callable[[int, int], None]:
    import time

    start = [time.perf_counter(), -1.0]
    first: list[int] = []  # samples already done when this process started (a resumed run)

    def update(done: int, total: int) -> None:
        now = time.perf_counter()
        if not first:
            first.append(done)
        if done != total and now - start[1] < 2.0:
            return
        start[1] = now
        rate = (done - first[0]) / max(now - start[0], 1e-9)
        eta = (total - done) / rate if rate > 0 else float("nan")
        end = "\n" if done == total else ""
        print(f"\r[rsvlm bench] {label}: {done}/{total}, ETA {eta:.0f} s   ", end=end, file=sys.stderr, flush=True)

    return update
