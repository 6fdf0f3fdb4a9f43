"""The contract between chat tasks and chat models: batched, deterministic (image(s), conversation) → text.

Tasks build ``ChatRequest`` objects and read back strings; they never see a tokenizer, a processor or
a prompt template. Where a model family needs its own wording (GeoChat's ``[grounding]`` task tokens,
say) the task protocol selects it through ``ChatModel.family``; where a family writes boxes its own way,
``ChatModel.box_format`` tells the grounding parser how to read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rsvlm.data.sample import Turn

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage

BOX_FORMATS = ("geochat-100", "unit", "qwen-1000", "pixel")
"""How a family writes boxes: GeoChat ``{<x1><y1><x2><y2>|θ}`` on a 0–100 grid; coordinates in [0, 1];
Qwen2-VL ``(x1,y1),(x2,y2)`` on a 0–1000 grid; plain pixels of the input image."""


@dataclass(frozen=True)
class ChatRequest:
    """One conversation to continue. ``turns`` alternate human/gpt and end with a human turn; the images
    belong to the first human turn (where the model's template puts image tokens)."""

    images: tuple[RasterImage, ...]
    turns: tuple[Turn, ...]

    def __post_init__(self) -> None:
        if not self.turns or self.turns[-1].role != "human":
            raise ValueError("a chat request must end with a human turn")
        for i, turn in enumerate(self.turns):
            expected = "human" if i % 2 == 0 else "gpt"
            if turn.role != expected:
                raise ValueError(f"turn {i} has role {turn.role!r}; turns alternate human, gpt, human …")

    @classmethod
    def ask(cls, image: RasterImage | None, prompt: str) -> ChatRequest:
        """The common case: one image (or none) and one question."""
        return cls(images=() if image is None else (image,), turns=(Turn("human", prompt),))


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding is greedy, so the same request always gives the same answer, alone or in a batch."""

    max_new_tokens: int = 64
    batch_size: int = 8


@runtime_checkable
class ChatModel(Protocol):
    """Answers batched requests. ``generate(reqs)`` equals ``[generate([r])[0] for r in reqs]``."""

    name: str
    family: str
    """Selects the prompt wording in task protocols (``llava``, ``geochat``, ``qwen2-vl`` …)."""
    box_format: str
    """One of ``BOX_FORMATS``."""

    def generate(self, requests: Sequence[ChatRequest], config: GenerationConfig | None = None) -> list[str]:
        """One answer per request, in order; special tokens and the prompt are stripped."""
        ...
