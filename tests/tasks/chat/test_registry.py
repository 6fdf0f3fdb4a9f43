from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.base import ChatTask
from rsvlm.tasks.chat.captioning import CaptionTask
from rsvlm.tasks.chat.classify import ClassifyTask
from rsvlm.tasks.chat.counting import CountingTask
from rsvlm.tasks.chat.grounding import GroundingTask
from rsvlm.tasks.chat.registry import TASKS, make_task
from rsvlm.tasks.chat.vqa import VqaTask


def test_every_cli_name_builds_its_task() -> None:
    assert list(TASKS) == ["caption", "vqa", "grounding", "counting", "chat-classify"]
    options: dict[str, dict[str, Any]] = {"chat-classify": {"class_names": ["forest"]}}
    built = {name: make_task(name, **options.get(name, {})) for name in TASKS}
    expected = {
        "caption": (CaptionTask, "caption-coco/1"),
        "vqa": (VqaTask, "vqa-rsvqa/1"),
        "grounding": (GroundingTask, "grounding/1"),
        "counting": (CountingTask, "counting/1"),
        "chat-classify": (ClassifyTask, "chat-classify/1"),
    }
    for name, task in built.items():
        cls, protocol_id = expected[name]
        assert isinstance(task, cls)
        assert task.name == name
        assert task.protocol_id == protocol_id
        assert task.protocol()["id"] == protocol_id


def test_tasks_satisfy_the_protocol() -> None:
    tasks: list[ChatTask] = [CaptionTask(), VqaTask(), GroundingTask(), CountingTask(), ClassifyTask(["a"])]
    assert len(tasks) == 5  # the assignment above is the check (mypy)


def test_options_and_errors() -> None:
    assert make_task("counting", object_name="trees").protocol()["object_name"] == "trees"
    with pytest.raises(RsvlmError, match="unknown chat task 'detect'"):
        make_task("detect")
    with pytest.raises(RsvlmError, match="needs the dataset's class names"):
        make_task("chat-classify")
    with pytest.raises(RsvlmError, match="takes no option 'object_name'"):
        make_task("vqa", object_name="x")
    with pytest.raises(RsvlmError, match="is for the vqa task, not grounding"):
        make_task("grounding", protocol="vqa-rsvqa/1")


@pytest.mark.shared
def test_classes_from_the_dataset(shared_data: Path) -> None:
    from rsvlm.data.registry import open_dataset

    aid = open_dataset(shared_data / "aid")
    task = make_task("chat-classify", aid)  # the dataset may be passed positionally
    assert task.protocol()["classes"] == list(aid.class_names.values())
