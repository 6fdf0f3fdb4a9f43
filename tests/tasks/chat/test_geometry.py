from __future__ import annotations

import math

import pytest

from rsvlm.tasks.chat.geometry import PixelBox, convex_intersection, iou, polygon_area


def test_axis_aligned_iou_by_hand() -> None:
    a = PixelBox(0, 0, 10, 10)
    b = PixelBox(5, 0, 15, 10)
    assert iou(a, b) == pytest.approx(50 / 150)
    assert iou(a, a) == 1.0
    assert iou(a, PixelBox(20, 20, 30, 30)) == 0.0
    assert iou(a, PixelBox(10, 0, 20, 10)) == 0.0  # touching edges share no area
    assert iou(PixelBox(1, 1, 1, 1), PixelBox(1, 1, 1, 1)) == 0.0  # empty boxes


def test_rotated_square_against_itself_and_at_45_degrees() -> None:
    square = PixelBox(-1, -1, 1, 1)
    assert iou(square, PixelBox(-1, -1, 1, 1, angle=90)) == pytest.approx(1.0)
    # two unit-area squares with the same centre, one turned 45°: the overlap is a regular octagon of
    # area 2(√2 − 1) (for side 1), so IoU = 2(√2−1) / (2 − 2(√2−1)) = √2 / 2
    assert iou(square, PixelBox(-1, -1, 1, 1, angle=45)) == pytest.approx(math.sqrt(2) / 2)


def test_rotated_rectangle_by_hand() -> None:
    wide = PixelBox(-2, -1, 2, 1)  # 4 x 2
    tall = PixelBox(-2, -1, 2, 1, angle=90)  # the same box turned upright: 2 x 4
    # overlap is the 2 x 2 centre square: IoU = 4 / (8 + 8 - 4)
    assert iou(wide, tall) == pytest.approx(4 / 12)
    assert iou(wide, PixelBox(-2, -1, 2, 1, angle=180)) == pytest.approx(1.0)
    assert iou(wide, PixelBox(-2, -1, 2, 1, angle=-90)) == pytest.approx(4 / 12)


def test_rotation_is_counter_clockwise_as_displayed() -> None:
    # a 20 x 2 bar turned +45°: its right end rises on screen (y down), to the upper right of the centre
    bar = PixelBox(-10, -1, 10, 1, angle=45)
    d = 7 / math.sqrt(2)
    probe = PixelBox(d - 0.2, -d - 0.2, d + 0.2, -d + 0.2)  # small box on the bar, up and to the right
    assert iou(bar, probe) == pytest.approx(probe.area / bar.area)
    assert iou(PixelBox(-10, -1, 10, 1, angle=-45), probe) == 0.0


def test_convex_clipping_by_hand() -> None:
    a = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
    b = [(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0)]
    assert polygon_area(convex_intersection(a, b)) == pytest.approx(1.0)
    triangle = [(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)]
    assert polygon_area(convex_intersection(a, triangle)) == pytest.approx(4.0)  # the square lies inside
    assert convex_intersection(a, [(5.0, 5.0), (6.0, 5.0), (6.0, 6.0)]) == []


def test_pixel_boxes_only() -> None:
    with pytest.raises(TypeError, match="PixelBox"):
        iou((0, 0, 1, 1), PixelBox(0, 0, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x1 <= x2"):
        PixelBox(5, 0, 1, 1)
    with pytest.raises(ValueError, match="finite"):
        PixelBox(0, 0, math.nan, 1)
    assert PixelBox.from_corners(5, 6, 1, 2) == PixelBox(1, 2, 5, 6)
    assert PixelBox.from_fractions(0.5, 0.5, 1, 1, width=400, height=100) == PixelBox(200, 50, 400, 100)
    with pytest.raises(ValueError, match="positive"):
        PixelBox.from_fractions(0, 0, 1, 1, width=0, height=100)
