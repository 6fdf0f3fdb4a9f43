"""The CLI's last line of defence: the machine's own failures are one line, real bugs keep their traceback.

A full disk is produced for real (stdout on ``/dev/full``). Permission and memory failures cannot be
produced reliably here (tests may run as root), so they are raised from inside a real command, the
dataset-format table that ``rsvlm data formats`` reads, and the console script's ``main`` handles them.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

from rsvlm.cli.main import main
from tests.clihelp import assert_one_line_error, rsvlm


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failure: BaseException) -> str:
    """``rsvlm data formats`` with ``failure`` raised where it reads the format table; returns stderr."""

    def broken(name: str) -> None:
        raise failure

    monkeypatch.setattr("rsvlm.data.registry.format_class", broken)
    monkeypatch.setattr(sys, "argv", ["rsvlm", "data", "formats"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_permission_denied_names_the_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", "/data/aid/Airport/airport_1.jpg")
    assert _run(monkeypatch, capsys, denied) == "error: /data/aid/Airport/airport_1.jpg: permission denied"


def test_disk_full_without_a_file_name(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    assert _run(monkeypatch, capsys, full) == "error: no space left on the device"


def test_out_of_memory(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    line = _run(monkeypatch, capsys, MemoryError())
    assert line.startswith("error: out of memory") and "--batch-size" in line


@pytest.mark.parametrize("bug", [ValueError("a bug"), ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")])
def test_bugs_keep_their_traceback(
    bug: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anything that is not the machine's fault (no file named, not a resource errno) is not hidden."""

    def broken(name: str) -> None:
        raise bug

    monkeypatch.setattr("rsvlm.data.registry.format_class", broken)
    monkeypatch.setattr(sys, "argv", ["rsvlm", "data", "formats"])
    with pytest.raises(type(bug)):
        main()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_for_real(tmp_path: Path) -> None:
    """stdout on a device that is always full: one line on stderr, nothing from the interpreter's exit."""
    with Path("/dev/full").open("w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "rsvlm", "models", "--json"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert "Exception ignored" not in result.stderr, result.stderr
    assert_one_line_error(
        subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr), "no space left on the device"
    )
    assert result.stderr.strip().count("\n") == 0


def test_usage_errors_are_untouched() -> None:
    """typer's own usage errors stay as they were (exit code 2, no traceback)."""
    result = rsvlm("eval", "linear-probe", "--shots", "many")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--shots" in result.stderr
