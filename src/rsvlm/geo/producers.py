"""Chat models as box producers: a grounding question per tile, every box of the answer as a ``Detection``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.errors import RsvlmError
from rsvlm.geo.boxes import Detection
from rsvlm.tasks.chat.box_parsing import parse_boxes

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.chat.protocol import ChatModel, GenerationConfig

GROUNDING_PROTOCOL = "grounding/1"
"""The shipped grounding protocol whose per-family prompt ``ChatGroundingProducer`` asks with."""

DEFAULT_MAX_NEW_TOKENS = 512
"""A box costs a chat model about 20-30 tokens, so a tile with a dozen objects needs far more than the
64-token default of ``GenerationConfig``; a cut-off answer loses its last boxes."""


class ChatGroundingProducer:
    """A chat model as a box producer: asks it to locate every ``object_name`` in a tile.

    The question is the shipped grounding protocol's prompt for the model's family with the expression
    ``all <plural>`` (GeoChat's ``[refer]`` wording, LLaVA's RefCOCO wording …); the answer is read in the
    model's ``box_format`` with the grounding parser, scaled by the TILE's width and height, since the tile
    is the image the model saw. Chat models give no confidence, so every box scores 1.0; a rotated
    (GeoChat) box becomes the axis-aligned box around it.
    """

    def __init__(
        self,
        chat_model: ChatModel,
        object_name: str,
        *,
        protocol: str | Path = GROUNDING_PROTOCOL,
        config: GenerationConfig | None = None,
    ) -> None:
        from rsvlm.models.chat.protocol import GenerationConfig
        from rsvlm.tasks.chat.box_parsing import check_box_format
        from rsvlm.tasks.chat.counting import plural
        from rsvlm.tasks.chat.protocols import load_protocol

        if not object_name.strip():
            raise RsvlmError("object name is empty: say what to find, e.g. 'tree'")
        check_box_format(chat_model.box_format)
        loaded = load_protocol(protocol)
        if loaded.task != "grounding":
            raise RsvlmError(f"protocol {loaded.id} is for the {loaded.task} task; pass a grounding protocol")
        self.chat_model = chat_model
        self.label = object_name.strip()
        self.prompt = loaded.prompt(chat_model.family, expression=f"all {plural(self.label)}")
        self.config = config or GenerationConfig(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)

    def __call__(self, image: RasterImage) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[RasterImage]) -> list[list[Detection]]:
        """One answer per tile, asked in the model's batches (same results as one tile at a time)."""
        from rsvlm.models.chat.protocol import ChatRequest

        answers = self.chat_model.generate([ChatRequest.ask(image, self.prompt) for image in images], self.config)
        if len(answers) != len(images):
            raise RsvlmError(f"chat model {self.chat_model.name} gave {len(answers)} answers for {len(images)} tiles")
        out: list[list[Detection]] = []
        for image, answer in zip(images, answers, strict=True):
            detections = []
            for box in parse_boxes(answer, self.chat_model.box_format, width=image.width, height=image.height):
                if box.angle % 180 == 0:
                    detections.append(Detection(box.x1, box.y1, box.x2, box.y2, 1.0, self.label))
                else:
                    xs, ys = zip(*box.corners(), strict=True)
                    detections.append(Detection(min(xs), min(ys), max(xs), max(ys), 1.0, self.label))
            out.append(detections)
        return out
