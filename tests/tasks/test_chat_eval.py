"""The chat evaluation runner: resumable by sample id, identical metrics after an interruption.

The model here is a deterministic rule (answers from the image's mean brightness) that satisfies the
``ChatModel`` protocol, so the test isolates the runner; real back-ends are exercised in the CLI tests.
"""

from collections.abc import Sequence
from pathlib import Path

import pytest

from rsvlm.data.registry import open_dataset
from rsvlm.errors import RsvlmError
from rsvlm.models.chat.protocol import ChatModel, ChatRequest, GenerationConfig
from rsvlm.tasks.chat.registry import make_task
from rsvlm.tasks.chat_eval import evaluate_chat


class BrightnessModel:
    name = "brightness-rule"
    family = "default"
    box_format = "unit"

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after
        self.seen: list[str] = []

    def generate(self, requests: Sequence[ChatRequest], config: GenerationConfig | None = None) -> list[str]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # the process is killed mid-run
        self.calls += 1
        answers = []
        for r in requests:
            self.seen.append(r.turns[0].text)
            mean = float(r.images[0].data.mean())
            answers.append("yes" if mean > 127 else f"{int(mean) % 7}")
        return answers


def test_rule_model_satisfies_the_protocol() -> None:
    assert isinstance(BrightnessModel(), ChatModel)


def test_interrupted_run_resumes_to_the_same_metrics(fixtures: Path, tmp_path: Path) -> None:
    data = open_dataset(fixtures / "rsvqa")
    task = make_task("vqa", data)
    config = GenerationConfig(batch_size=2)
    whole = evaluate_chat(BrightnessModel(), task, data, tmp_path / "whole", config=config)

    with pytest.raises(KeyboardInterrupt):
        evaluate_chat(BrightnessModel(fail_after=1), task, data, tmp_path / "cut", config=config)
    lines = (tmp_path / "cut" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the first batch was kept, the one in flight was lost
    second = BrightnessModel()
    resumed = evaluate_chat(second, task, data, tmp_path / "cut", config=config)
    assert len(second.seen) == whole["n"] - 2  # finished samples are not asked again
    assert resumed["metrics"] == whole["metrics"]
    assert resumed["protocol"]["id"] == "vqa-rsvqa/1" and resumed["data"]["annotations_sha256"]


def test_run_folder_of_another_model_is_refused(fixtures: Path, tmp_path: Path) -> None:
    data = open_dataset(fixtures / "rsvqa")
    task = make_task("vqa", data)
    evaluate_chat(BrightnessModel(), task, data, tmp_path / "run", limit=2)
    other = BrightnessModel()
    other.name = "another"
    with pytest.raises(RsvlmError, match="different run"):
        evaluate_chat(other, task, data, tmp_path / "run", limit=2)
