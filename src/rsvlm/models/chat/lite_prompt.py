"""Gemma chat turns with visual-token slots: conversation → token ids, image slots and answer mask.

Format (Gemma's own chat template, so an instruction-tuned Gemma needs no relearning)::

    <bos><start_of_turn>user\\n<image>\\nWhat is this?<end_of_turn>\\n<start_of_turn>model\\nAn airport.<end_of_turn>\\n

Each ``<image>`` becomes ``tokens_per_image`` slots that the alignment layer's outputs fill. Text is
tokenised piece by piece between placeholders (like the LLaVA repository's ``tokenizer_image_token``), so
the placeholder never reaches the tokenizer. Answer tokens (every ``gpt`` turn including its
``<end_of_turn>``) are the only ones the loss sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rsvlm.data.sample import Turn
from rsvlm.errors import RsvlmError

IMAGE = "<image>"
START, END = "<start_of_turn>", "<end_of_turn>"
ROLES = {"human": "user", "gpt": "model"}


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    """Token ids; image slots hold the pad id (their embeddings are replaced)."""
    image_slots: list[bool]
    answer: list[bool]
    """True where the token belongs to a model turn: the positions the loss is computed on."""


def with_placeholders(turns: Sequence[Turn], n_images: int) -> list[Turn]:
    """Puts ``<image>`` lines at the start of the first human turn when the text has none."""
    found = sum(t.text.count(IMAGE) for t in turns)
    if found == n_images:
        return list(turns)
    if found:
        raise RsvlmError(f"the conversation has {found} {IMAGE} placeholders for {n_images} images")
    first = Turn(turns[0].role, (IMAGE + "\n") * n_images + turns[0].text)
    return [first, *turns[1:]]


def encode_turns(
    tokenizer: Any, turns: Sequence[Turn], n_images: int, tokens_per_image: int, *, generation_prompt: bool
) -> Encoded:
    """Ids, slots and answer mask; ``generation_prompt`` ends with an open model turn (inference)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    slots, answer = [False] * len(ids), [False] * len(ids)

    def text(piece: str, is_answer: bool) -> None:
        if piece:
            new = list(tokenizer(piece, add_special_tokens=False).input_ids)
            ids.extend(new)
            slots.extend([False] * len(new))
            answer.extend([is_answer] * len(new))

    for turn in with_placeholders(turns, n_images):
        text(f"{START}{ROLES[turn.role]}\n", False)
        is_answer = turn.role == "gpt"
        for i, chunk in enumerate(turn.text.split(IMAGE)):
            if i:
                ids.extend([pad] * tokens_per_image)
                slots.extend([True] * tokens_per_image)
                answer.extend([False] * tokens_per_image)
            text(chunk, is_answer)
        text(END, is_answer)
        text("\n", False)
    if generation_prompt:
        text(f"{START}model\n", False)
    return Encoded(ids, slots, answer)


def stop_ids(tokenizer: Any) -> set[int]:
    """``<end_of_turn>`` and the tokenizer's EOS: either ends an answer."""
    found = {tokenizer.convert_tokens_to_ids(END), tokenizer.eos_token_id}
    unk = tokenizer.unk_token_id
    return {int(i) for i in found if i is not None and (i != unk or unk is None)}
