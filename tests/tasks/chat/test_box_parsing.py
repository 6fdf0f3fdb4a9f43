from __future__ import annotations

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.models.chat.protocol import BOX_FORMATS
from rsvlm.tasks.chat.box_parsing import parse_box
from rsvlm.tasks.chat.geometry import PixelBox

W, H = 400, 200  # a non-square image: x scales by 400, y by 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{<10><20><50><60>|<30>}", PixelBox(40, 40, 200, 120, 30)),
        ("<p>the plane</p>{<10><20><50><60>|30}", PixelBox(40, 40, 200, 120, 30)),
        ("{<10><20><50><60>}", PixelBox(40, 40, 200, 120)),
        ("{<50><60><10><20>|<0>}", PixelBox(40, 40, 200, 120)),  # corners in any order
        ("{<10><20><150><60>}", None),  # off the 0-100 grid
        ("I cannot find it.", None),
    ],
)
def test_geochat_100(text: str, expected: PixelBox | None) -> None:
    assert parse_box(text, "geochat-100", width=W, height=H) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[0.1, 0.2, 0.5, 0.6]", PixelBox(40, 40, 200, 120)),
        ("The car is at [0.10,0.20,0.50,0.60].", PixelBox(40, 40, 200, 120)),
        ("[10, 20, 50, 60]", None),  # not fractions
    ],
)
def test_unit(text: str, expected: PixelBox | None) -> None:
    assert parse_box(text, "unit", width=W, height=H) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<|object_ref_start|>the car<|object_ref_end|><|box_start|>(100,200),(500,600)<|box_end|>",
        "<|box_start|>(100, 200), (500, 600)<|box_end|>",
        "the car(100,200),(500,600)",  # special tokens stripped on decoding
        "[100, 200, 500, 600]",
    ],
)
def test_qwen_1000(text: str) -> None:
    assert parse_box(text, "qwen-1000", width=W, height=H) == PixelBox(40, 40, 200, 120)


def test_pixel() -> None:
    assert parse_box("x1=12, y1=30.5, x2=300, y2=199", "pixel", width=W, height=H) is None  # "=" breaks the run
    assert parse_box("(12, 30.5), (300, 199)", "pixel", width=W, height=H) == PixelBox(12, 30.5, 300, 199)


def test_every_box_format_is_parsed() -> None:
    for box_format in BOX_FORMATS:
        assert parse_box("nothing here", box_format, width=W, height=H) is None


def test_size_is_required_and_checked() -> None:
    with pytest.raises(TypeError):
        parse_box("[0.1, 0.2, 0.5, 0.6]", "unit")  # type: ignore[call-arg]
    with pytest.raises(RsvlmError, match="not positive"):
        parse_box("[0.1, 0.2, 0.5, 0.6]", "unit", width=0, height=H)
    with pytest.raises(RsvlmError, match="unknown box format 'xywh'"):
        parse_box("[0.1, 0.2, 0.5, 0.6]", "xywh", width=W, height=H)
