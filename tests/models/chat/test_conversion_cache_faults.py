"""Converted chat-model folders under faults: a full disk or a cache folder that is a file is one line and
leaves no temporary folder, a damaged marker means convert again, and when two processes convert at once
the folder that was finished first is kept (never deleted under a process that may be loading it)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rsvlm.errors import DataError
from rsvlm.models.chat.cache import DONE_MARKER, build_once, read_record
from tests.fsfaults import small_tmpfs


def _writer(record: dict[str, Any], size: int = 10) -> Callable[[Path], dict[str, Any]]:
    def build(folder: Path) -> dict[str, Any]:
        (folder / "model.safetensors").write_bytes(b"\1" * size)
        return record

    return build


def test_full_disk_during_conversion_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        target = disk / "chat" / "model-1234"
        with pytest.raises(DataError) as caught:
            build_once(target, _writer({"family": "llava"}, size=1 << 20))
        assert str(caught.value) == (
            f"{target}: cannot write (no space left on the device) (free some space or choose another output folder)"
        )
        assert not target.exists() and list((disk / "chat").iterdir()) == []


def test_cache_folder_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    cache = tmp_path / "chat"
    cache.write_text("not a folder")
    expected = "cannot be used as the model cache folder (not a directory) (set RSVLM_CACHE_DIR"
    with pytest.raises(DataError, match=re.escape(expected)):
        build_once(cache / "model-1234", _writer({"family": "llava"}))


@pytest.mark.parametrize("marker", [b"{truncated", b"[]", b"\xff"])
def test_damaged_marker_means_convert_again(tmp_path: Path, marker: bytes) -> None:
    target = tmp_path / "model-1234"
    target.mkdir()
    (target / DONE_MARKER).write_bytes(marker)
    assert read_record(target) is None
    assert build_once(target, _writer({"family": "llava"})) == target
    assert read_record(target) == {"family": "llava"}


def test_folder_another_process_finished_first_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "model-1234"

    def build_while_another_finishes(folder: Path) -> dict[str, Any]:
        other = tmp_path / ".other-process"
        other.mkdir()
        _writer({"by": "first"})(other)
        (other / DONE_MARKER).write_text(json.dumps({"by": "first"}), encoding="utf-8")
        other.rename(target)  # the other process publishes while this one is still converting
        return _writer({"by": "second"})(folder)

    assert build_once(target, build_while_another_finishes) == target
    assert read_record(target) == {"by": "first"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-1234"]  # our copy is gone


def test_unfinished_leftover_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "model-1234"
    (target / "half-written.safetensors").parent.mkdir()
    (target / "half-written.safetensors").write_bytes(b"\0")
    assert build_once(target, _writer({"family": "llava"})) == target
    assert read_record(target) == {"family": "llava"} and not (target / "half-written.safetensors").exists()
