from __future__ import annotations

import pytest

from rsvlm.data.sample import Turn
from rsvlm.models.chat.templates import LLAVA_V1_SYSTEM, TEMPLATES, render, to_messages

TURNS = (Turn("human", "What is it?"), Turn("gpt", "An airport."), Turn("human", "How many runways?"))


def test_llava_v1_is_geochats_conversation_format() -> None:
    expected = (
        f"{LLAVA_V1_SYSTEM} USER: <image>\nWhat is it? ASSISTANT: An airport.</s>USER: How many runways? ASSISTANT:"
    )
    assert render("llava_v1", TURNS, 1) == expected
    assert render("llava-1.5", TURNS[:1], 1) == "USER: <image>\nWhat is it? ASSISTANT:"
    assert render("llava_v1", TURNS[:1], 0) == f"{LLAVA_V1_SYSTEM} USER: What is it? ASSISTANT:"


def test_chatml_and_mistral() -> None:
    assert render("chatml", TURNS[:1], 1) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is it?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render("mistral-instruct", TURNS, 1) == (
        "[INST] <image>\nWhat is it? [/INST] An airport.</s>[INST] How many runways? [/INST]"
    )


def test_messages_put_images_in_the_first_user_turn() -> None:
    messages = to_messages(TURNS, 2)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [c["type"] for c in messages[0]["content"]] == ["image", "image", "text"]
    assert messages[2]["content"] == [{"type": "text", "text": "How many runways?"}]


def test_unknown_template() -> None:
    with pytest.raises(ValueError, match=", ".join(TEMPLATES)):
        render("vicuna_v0", TURNS, 0)
