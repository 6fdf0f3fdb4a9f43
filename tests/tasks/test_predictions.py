import json
from pathlib import Path

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.tasks.predictions import PredictionLog


def test_appends_survive_reopen(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, {"model": "m", "task": "vqa"})
    log.append([{"id": "a", "prediction": "yes"}, {"id": "b", "prediction": "no"}])
    again = PredictionLog(tmp_path, {"model": "m", "task": "vqa"})
    assert "a" in again and "b" in again and len(again) == 2
    assert again.records["b"]["prediction"] == "no"


def test_line_cut_by_a_crash_is_dropped_and_appends_stay_clean(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, {"model": "m"})
    log.append([{"id": "a", "prediction": "yes"}])
    with (tmp_path / "predictions.jsonl").open("ab") as f:
        f.write(b'{"id": "b", "predic')  # the process died mid-write
    again = PredictionLog(tmp_path, {"model": "m"})
    assert list(again.records) == ["a"]
    again.append([{"id": "c", "prediction": "2"}])
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "c"]


def test_a_different_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    PredictionLog(tmp_path, {"model": "m", "task": "vqa"})
    with pytest.raises(RsvlmError, match="differs in: model"):
        PredictionLog(tmp_path, {"model": "other", "task": "vqa"})
