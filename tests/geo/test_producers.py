"""Chat models as box producers: a grounding question per tile, every box of the answer in tile pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rsvlm.data.sample import RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.geo.boxes import BoxProducer, TileDetections, stitch
from rsvlm.geo.producers import ChatGroundingProducer
from rsvlm.models.chat.protocol import ChatModel, ChatRequest, GenerationConfig
from rsvlm.tasks.chat.box_parsing import parse_boxes


class ScriptedChat:
    """A stand-in chat model: answers every request with a fixed string in its box format."""

    name = "scripted"

    def __init__(self, family: str, box_format: str, answer: str) -> None:
        self.family = family
        self.box_format = box_format
        self.answer = answer
        self.requests: list[ChatRequest] = []
        self.configs: list[GenerationConfig | None] = []

    def generate(self, requests: Sequence[ChatRequest], config: GenerationConfig | None = None) -> list[str]:
        self.requests.extend(requests)
        self.configs.append(config)
        return [self.answer for _ in requests]


def tile_image(width: int, height: int) -> RasterImage:
    return RasterImage(np.zeros((3, height, width), dtype=np.uint8), ("red", "green", "blue"))


def test_chat_producer_reads_unit_boxes_as_tile_pixels() -> None:
    model = ScriptedChat("llava", "unit", "Sure: [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.75, 1.0]")
    assert isinstance(model, ChatModel)
    producer = ChatGroundingProducer(model, "tree")
    assert isinstance(producer, BoxProducer)
    detections = producer(tile_image(200, 100))  # non-square: x scales by 200, y by 100
    got = np.array([(d.x1, d.y1, d.x2, d.y2) for d in detections])
    np.testing.assert_allclose(got, [(20, 20, 60, 40), (100, 50, 150, 100)], rtol=0, atol=1e-9)
    assert {(d.score, d.label) for d in detections} == {(1.0, "tree")}
    (request,) = model.requests
    assert request.images[0].width == 200
    assert request.turns[0].text == (
        "Please provide the bounding box coordinate of the region this sentence describes: all trees"
    )
    config = model.configs[0]
    assert config is not None and config.max_new_tokens >= 256  # room for many boxes

    # Into the scene: the tile sits at (512, 256).
    scene_boxes = stitch([TileDetections.from_detections(detections, col_off=512, row_off=256)])
    np.testing.assert_allclose(sorted(scene_boxes.boxes.tolist()), [[532, 276, 572, 296], [612, 306, 662, 356]])


def test_chat_producer_qwen_and_geochat_formats() -> None:
    qwen = ScriptedChat(
        "qwen2-vl",
        "qwen-1000",
        "<|box_start|>(100,250),(300,500)<|box_end|> and <|box_start|>(0,0),(1000,1000)<|box_end|>",
    )
    detections = ChatGroundingProducer(qwen, "car").detect_many([tile_image(400, 200), tile_image(100, 100)])
    assert [[(d.x1, d.y1, d.x2, d.y2) for d in ds] for ds in detections] == [
        [(40, 50, 120, 100), (0, 0, 400, 200)],
        [(10, 25, 30, 50), (0, 0, 100, 100)],
    ]
    assert "<|object_ref_start|>all cars<|object_ref_end|>" in qwen.requests[0].turns[0].text

    # GeoChat's rotated box: 90° about its centre swaps width and height of the enclosing box.
    geochat = ScriptedChat("geochat", "geochat-100", "{<10><40><50><60>|<90>} {<60><60><80><80>|<0>}")
    ((rotated, upright),) = ChatGroundingProducer(geochat, "ship").detect_many([tile_image(100, 100)])
    assert (rotated.x1, rotated.y1, rotated.x2, rotated.y2) == pytest.approx((20, 30, 40, 70))
    assert (upright.x1, upright.y1, upright.x2, upright.y2) == (60, 60, 80, 80)
    assert geochat.requests[0].turns[0].text.startswith("[refer]")


def test_chat_producer_without_boxes_and_off_grid_values() -> None:
    assert ChatGroundingProducer(ScriptedChat("llava", "unit", "I see no trees."), "tree")(tile_image(64, 64)) == []
    # A unit answer above 1 is unreadable, not guessed at; the readable box is still kept.
    boxes = parse_boxes("[0.1, 0.1, 0.2, 0.2] [0.5, 0.5, 1.5, 1.5]", "unit", width=10, height=10)
    np.testing.assert_allclose([(b.x1, b.y1, b.x2, b.y2) for b in boxes], [(1, 1, 2, 2)], rtol=0, atol=1e-9)
    assert [(b.x1, b.x2) for b in parse_boxes("[3, 4, 30, 40]; [5, 6, 7, 8]", "pixel", width=1, height=1)] == [
        (3, 30),
        (5, 7),
    ]
    with pytest.raises(RsvlmError, match="unknown box format"):
        ChatGroundingProducer(ScriptedChat("llava", "inches", ""), "tree")
