"""What the chat kinds share: reading back the predictions a chat evaluation wrote."""

from __future__ import annotations

from pathlib import Path

from rsvlm.bench.kinds._chat import predictions
from rsvlm.tasks.predictions import PredictionLog


def test_predictions_are_read_back_whole_with_line_separators_inside_answers(tmp_path: Path) -> None:
    """The counting, grounding and caption kinds read the predictions file after ``evaluate_chat``: its last line
    ends with a newline (a reader that parsed the empty tail as JSON failed every such task), and U+2028 inside
    an answer is text, not a line break."""
    log = PredictionLog(tmp_path, {"task": "counting", "model": "m"})
    log.append([{"id": "a", "prediction": "12"}, {"id": "b", "prediction": "two\u2028trees"}])
    log.append([{"id": "c", "prediction": "none"}])
    assert (tmp_path / "predictions.jsonl").read_bytes().endswith(b"\n")
    assert predictions(tmp_path) == {"a": "12", "b": "two\u2028trees", "c": "none"}
