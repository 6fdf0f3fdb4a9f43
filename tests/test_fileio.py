"""The shared file helpers: locks, atomic writes, readable unique names, user text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import atomic_write, read_text, run_lock, slug, unique_slugs

HOLD = (
    "import sys, time; from rsvlm.fileio import run_lock\n"
    "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"
)


def test_run_lock_is_reentrant_in_one_process_and_refuses_another(tmp_path: Path) -> None:
    with run_lock(tmp_path), run_lock(tmp_path / "."):  # a command may lock the folder around steps that lock it
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from rsvlm.fileio import run_lock\nwith run_lock(sys.argv[1]): pass",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 1 and f"in use by rsvlm process {os.getpid()}" in probe.stderr
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DataError, match=f"in use by rsvlm process {holder.pid}"), run_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path):  # the kernel released the killed holder's lock
        pass


def test_atomic_write_gives_an_ordinary_file_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    atomic_write(target, "{}\n")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.read_text() == "{}\n" and (target.stat().st_mode & 0o777) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]
    (tmp_path / "blocked").write_text("a file where a folder belongs")
    with pytest.raises(DataError, match=r"blocked/x\.json: cannot write"):
        atomic_write(tmp_path / "blocked" / "x.json", b"x")


def test_names_keep_unicode_and_never_collide() -> None:
    assert slug("森林") == "森林" and slug("Town with houses!") == "town-with-houses"
    assert slug("?!") != slug("…") and slug("?!").startswith("item-")
    names = unique_slugs(["scene", "scene", "other"], keys=["a/scene.tif", "b/scene.tif", "other.tif"])
    assert len(set(names)) == 3 and names[2] == "other" and all(n.startswith("scene-") for n in names[:2])
    with pytest.raises(RsvlmError, match="given more than once: x"):
        unique_slugs(["x", "x"])


def test_read_text_names_the_file_and_the_problem(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: names file is not UTF-8 text \(byte 6, line 2\)"):
        read_text(tmp_path / "latin1.txt", "names file")
    with pytest.raises(DataError, match="is a directory, expected a names file"):
        read_text(tmp_path, "names file")
    assert read_text(_bom(tmp_path), "names file") == "a\n"


def _bom(folder: Path) -> Path:
    path = folder / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfa\n")
    return path
