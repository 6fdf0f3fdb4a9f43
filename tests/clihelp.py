"""Running the real ``rsvlm`` command in a subprocess and checking that failures reach the user as one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest


def rsvlm(
    *args: str | Path, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m rsvlm ARGS`` as a user runs it; ``env`` entries are added to the current environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rsvlm", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2, no traceback, and an ``error:`` line on stderr holding every fragment; returns that line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """``rsvlm ARGS`` in this process through the console-script entry point (which maps RsvlmError to exit
    code 2); returns (exit code, stderr)."""
    code, _, err = run_main_output(monkeypatch, capsys, *args)
    return code, err


def run_main_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: object
) -> tuple[int, str, str]:
    """``run_main`` that also returns what the command printed: (exit code, stdout, stderr); arguments are
    passed as ``str(arg)`` (paths, numbers)."""
    from rsvlm.cli.main import main

    monkeypatch.setattr(sys, "argv", ["rsvlm", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    captured = capsys.readouterr()
    return code if isinstance(code, int) else 1, captured.out, captured.err
