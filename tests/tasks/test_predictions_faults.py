"""The prediction log on a failing disk and on damaged files: a batch that cannot be written whole leaves
no part of itself, and a damaged log or run record is a one-line error naming the file, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsvlm.errors import DataError
from rsvlm.tasks.predictions import PredictionLog

HEADER = {"model": "m", "task": "vqa"}
APPEND_PAST_LIMIT = """
import json, resource, sys
from rsvlm.errors import RsvlmError
from rsvlm.tasks.predictions import PredictionLog
log = PredictionLog(sys.argv[1], json.loads(sys.argv[2]))
size = log.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, size + 300))
try:
    log.append({"id": f"late-{i}", "prediction": "x" * 200} for i in range(3))
except RsvlmError as exc:
    print(exc)
"""


def test_batch_that_cannot_be_written_whole_leaves_nothing(tmp_path: Path) -> None:
    """The write stops part-way at a file-size limit (EFBIG, as on a full disk): the log is cut back."""
    log = PredictionLog(tmp_path, HEADER)
    log.append([{"id": "a", "prediction": "yes"}, {"id": "b", "prediction": "no"}])
    before = (tmp_path / "predictions.jsonl").read_bytes()
    run = [sys.executable, "-c", APPEND_PAST_LIMIT, str(tmp_path), json.dumps(HEADER)]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (
        done.stdout.strip()
        == f"{tmp_path / 'predictions.jsonl'}: cannot write (file too large for this file system or limit)"
    )
    assert (tmp_path / "predictions.jsonl").read_bytes() == before
    assert list(PredictionLog(tmp_path, HEADER).records) == ["a", "b"]


def test_prediction_with_a_unicode_line_separator_survives_reopening(tmp_path: Path) -> None:
    """U+2028 is a line break to ``str.splitlines`` but not to JSON lines: it must not split a record."""
    text = "two lines\u2028in one answer\u0085and a NEL"
    PredictionLog(tmp_path, HEADER).append([{"id": "a", "prediction": text}, {"id": "b", "prediction": "no"}])
    again = PredictionLog(tmp_path, HEADER)
    assert again.records["a"]["prediction"] == text and len(again) == 2


@pytest.mark.parametrize(
    ("content", "line"),
    [(b'{"id": "a"}\nnot json\n', 2), (b'{"id": "a"}\n{"no_id": 1}\n', 2), (b'\xff\xfe{"id": 1}\n', 1), (b"[1]\n", 1)],
)
def test_damaged_prediction_line_is_one_line_naming_it(tmp_path: Path, content: bytes, line: int) -> None:
    PredictionLog(tmp_path, HEADER)
    (tmp_path / "predictions.jsonl").write_bytes(content)
    with pytest.raises(DataError) as caught:
        PredictionLog(tmp_path, HEADER)
    assert str(caught.value).startswith(f"{tmp_path / 'predictions.jsonl'}:{line}: not a prediction line")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_damaged_run_record_is_one_line_naming_it(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "run.json").write_bytes(content)
    with pytest.raises(DataError) as caught:
        PredictionLog(tmp_path, HEADER)
    assert str(caught.value).startswith(f"{tmp_path / 'run.json'}: ") and "\n" not in str(caught.value)


def test_run_record_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run.json").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        PredictionLog(tmp_path, HEADER)
