"""Conversation templates: a conversation (``Turn`` objects) → the exact prompt string a model was tuned on.

Used when a model folder carries no chat template of its own (LLaVA-repository checkpoints never do).
Each template is written from its family's documentation:

- ``llava_v1``: the LLaVA repository's ``conv_llava_v1`` (``llava/conversation.py``), which GeoChat
  copies unchanged into ``geochat/conversation.py`` and selects with ``--conv-mode llava_v1`` in its
  evaluation scripts (``geochat/eval/batch_geochat_*.py``); SkySenseGPT's evaluation scripts import the
  same module. Separator style TWO: the system line, ``" "``, then ``ROLE: message`` with ``" "`` after a
  user turn and ``"</s>"`` after an assistant turn, ending with ``"ASSISTANT:"``; the image placeholder
  ``<image>`` followed by a newline opens the first user message;
- ``llava-1.5``: the prompt format of the llava-hf model cards (``USER: <image>\\n<prompt> ASSISTANT:``,
  turns closed by ``</s>``), i.e. ``llava_v1`` without the system line;
- ``mistral-instruct``: LLaVA-NeXT on Mistral (``[INST] <image>\\n<prompt> [/INST]``);
- ``chatml``: Qwen2-VL's chat format, with ``<|vision_start|><|image_pad|><|vision_end|>`` per image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rsvlm.data.sample import Turn

LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
QWEN_SYSTEM = "You are a helpful assistant."
LLAVA_IMAGE = "<image>"
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def _vicuna(turns: Sequence[Turn], n_images: int) -> str:
    parts = []
    for i, turn in enumerate(turns):
        if turn.role == "human":
            images = f"{LLAVA_IMAGE}\n" * n_images if i == 0 else ""
            parts.append(f"USER: {images}{turn.text} ")
        else:
            parts.append(f"ASSISTANT: {turn.text}</s>")
    return "".join(parts) + "ASSISTANT:"


def llava_v1(turns: Sequence[Turn], n_images: int) -> str:
    return f"{LLAVA_V1_SYSTEM} {_vicuna(turns, n_images)}"


def llava_15(turns: Sequence[Turn], n_images: int) -> str:
    return _vicuna(turns, n_images)


def mistral_instruct(turns: Sequence[Turn], n_images: int) -> str:
    parts = []
    for i, turn in enumerate(turns):
        if turn.role == "human":
            images = f"{LLAVA_IMAGE}\n" * n_images if i == 0 else ""
            parts.append(f"[INST] {images}{turn.text} [/INST]")
        else:
            parts.append(f" {turn.text}</s>")
    return "".join(parts)


def chatml(turns: Sequence[Turn], n_images: int) -> str:
    parts = [f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n"]
    for i, turn in enumerate(turns):
        role = "user" if turn.role == "human" else "assistant"
        images = QWEN_IMAGE * n_images if i == 0 else ""
        parts.append(f"<|im_start|>{role}\n{images}{turn.text}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


TEMPLATES: dict[str, Callable[[Sequence[Turn], int], str]] = {
    "llava_v1": llava_v1,
    "llava-1.5": llava_15,
    "mistral-instruct": mistral_instruct,
    "chatml": chatml,
}

LLAVA_V1_JINJA = (
    "{{ '" + LLAVA_V1_SYSTEM.replace("'", "\\'") + " ' }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] if item['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %} "
    "{% else %}ASSISTANT: "
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
"""``llava_v1`` as a Jinja chat template, written into converted folders so plain transformers code
(``processor.apply_chat_template``) builds the same prompt."""


def render(template: str, turns: Sequence[Turn], n_images: int) -> str:
    try:
        renderer = TEMPLATES[template]
    except KeyError:
        raise ValueError(f"unknown conversation template {template!r} (known: {', '.join(TEMPLATES)})") from None
    return renderer(turns, n_images)


def to_messages(turns: Sequence[Turn], n_images: int) -> list[dict[str, Any]]:
    """The conversation as transformers chat messages; the images open the first user message."""
    messages: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        content: list[dict[str, Any]] = [{"type": "image"}] * n_images if i == 0 else []
        content = [*content, {"type": "text", "text": turn.text}]
        messages.append({"role": "user" if turn.role == "human" else "assistant", "content": content})
    return messages
