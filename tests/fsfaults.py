"""Real file-system faults for tests: a full disk (a small tmpfs) and a file-size limit (``RLIMIT_FSIZE``).

A tmpfs needs root (CI runs as root); where mounting is not permitted the test is skipped with a message
saying so. The file-size limit needs no privilege: a process started under it gets ``EFBIG`` on any write
past the limit (Python ignores ``SIGXFSZ``), which is how a full quota or a size-capped file system fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "64k") -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` for the block; skips the test where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill a disk for real (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` until writing fails with ENOSPC; returns the filler file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        chunk = b"\0" * 4096
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return filler


def rsvlm_limited(
    max_file_bytes: int, *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m rsvlm ARGS`` with every file write capped at ``max_file_bytes`` (writes past it: EFBIG)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "rsvlm", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        preexec_fn=limit,
    )


def temporary_files(folder: Path) -> list[Path]:
    """Files left behind by an interrupted atomic write (``.tmp`` in their names)."""
    return sorted(p for p in folder.rglob("*") if ".tmp" in p.name)
