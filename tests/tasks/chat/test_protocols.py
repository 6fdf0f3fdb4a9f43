from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.protocols import FAMILIES, load_protocol, protocol_ids

VALID = """
id: my-vqa/2
task: vqa
description: test protocol
prompts:
  default: "{question}?"
matching:
  rule: per-question-type
  question_types: {presence: yes-no}
"""


def test_every_shipped_protocol_loads_and_prints_as_json() -> None:
    ids = protocol_ids()
    assert ids == ["caption-coco/1", "chat-classify/1", "counting/1", "grounding/1", "vqa-rsvqa/1"]
    for protocol_id in ids:
        p = load_protocol(protocol_id)
        assert p.id == protocol_id
        assert set(p.prompts) == set(FAMILIES) - {"llava-next"}
        data = p.as_dict()
        assert json.loads(json.dumps(data)) == data  # plain data, ready for reports
        assert data["id"] == protocol_id


def test_prompts_per_family_and_fallback() -> None:
    grounding = load_protocol("grounding/1")
    expected = "[refer] Give me the location of <p> the red car </p>"
    assert grounding.prompt("geochat", expression="the red car") == expected
    assert grounding.prompt("some-new-family", expression="x") == grounding.prompt("default", expression="x")
    assert grounding.prompt("llava-next", expression="x") == grounding.prompt("llava", expression="x")
    vqa = load_protocol("vqa-rsvqa/1")
    assert vqa.prompt("geochat", question="Is a road present?") == (
        "Is a road present?\nAnswer the question using a single word or phrase."
    )


def test_yaml_file_with_the_same_schema_loads(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(VALID)
    p = load_protocol(path)
    assert p.id == "my-vqa/2"
    assert p.matching.question_types["presence"] == "yes-no"
    assert p.normalisation.lowercase is False  # omitted block = no normalisation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("task: vqa", "task: vqa\ncolour: blue"), "unknown key 'colour'"),
        (("  rule: per-question-type", "  rule: per-question-type\n  threshold: 3"), "unknown key 'threshold'"),
        (('  default: "{question}?"', '  default: "{query}?"'), r"unknown placeholder \{query\}"),
        (('  default: "{question}?"', '  default: "{question}?"\n  gpt4: "x"'), "unknown key 'gpt4'"),
        (('  default: "{question}?"', '  llava: "{question}?"'), "missing key 'default'"),
        (("question_types: {presence: yes-no}", "question_types: {presence: fuzzy}"), "unknown rule 'fuzzy'"),
        (("id: my-vqa/2", "id: my vqa"), "malformed protocol id"),
        (("task: vqa", "task: detection"), "unknown task 'detection'"),
        (
            ("description: test protocol\n", "description: test protocol\nnormalisation: {yes_no: {yeah: maybe}}\n"),
            "must be yes or no",
        ),
    ],
)
def test_strict_schema(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in VALID
    path = tmp_path / "bad.yaml"
    path.write_text(VALID.replace(old, new))
    with pytest.raises(RsvlmError, match=message):
        load_protocol(path)


def test_unknown_and_malformed_ids() -> None:
    with pytest.raises(RsvlmError, match="unknown protocol 'vqa-rsvqa/9'"):
        load_protocol("vqa-rsvqa/9")
    with pytest.raises(RsvlmError, match="malformed protocol id"):
        load_protocol("vqa")


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    with pytest.raises(RsvlmError, match="malformed YAML"):
        load_protocol(path)
