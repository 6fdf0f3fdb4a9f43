"""Boxes in PIXELS and their IoU, rotated boxes included.

IoU is not invariant to scaling x and y differently: computed on coordinates normalised to [0, 1] of a
non-square image it differs from the IoU in pixels (a published grounding evaluation made this mistake).
So ``iou`` accepts only ``PixelBox`` values, and the only way from a model's normalised output to a
``PixelBox`` goes through the image's width and height (``PixelBox.from_fractions`` or the parsers).

Rotated boxes are compared as polygons: the intersection of two convex polygons is found by clipping
one against each edge of the other (Sutherland–Hodgman), and areas by the shoelace formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True)
class PixelBox:
    """A box in pixel coordinates of a full image (x right, y down), optionally rotated.

    ``angle`` is in degrees about the box centre, counter-clockwise as displayed (image y pointing down),
    the convention of ``rsvlm.data.sample.Boxes`` and of GeoChat's (OpenCV) box drawing.
    """

    x1: float
    y1: float
    x2: float
    y2: float
    angle: float = 0.0

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2, self.angle)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"box coordinates must be finite, got {values}")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"box must satisfy x1 <= x2 and y1 <= y2, got {values[:4]}")

    @classmethod
    def from_corners(cls, xa: float, ya: float, xb: float, yb: float, angle: float = 0.0) -> PixelBox:
        """A box from two opposite corners in any order."""
        return cls(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb), angle)

    @classmethod
    def from_fractions(
        cls, fx1: float, fy1: float, fx2: float, fy2: float, *, width: float, height: float, angle: float = 0.0
    ) -> PixelBox:
        """A box given as fractions of the image size: x scales by WIDTH, y by HEIGHT."""
        if not (width > 0 and height > 0):
            raise ValueError(f"image width and height must be positive, got {width} x {height}")
        return cls.from_corners(fx1 * width, fy1 * height, fx2 * width, fy2 * height, angle)

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    def corners(self) -> list[Point]:
        """The four corners, counter-clockwise in the usual math orientation (positive polygon area)."""
        cx, cy = (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2
        hw, hh = (self.x2 - self.x1) / 2, (self.y2 - self.y1) / 2
        theta = math.radians(self.angle)
        c, s = math.cos(theta), math.sin(theta)
        # Counter-clockwise on screen with y down: (dx, dy) -> (dx c + dy s, -dx s + dy c).
        offsets = ((-hw, hh), (hw, hh), (hw, -hh), (-hw, -hh))
        points = [(cx + dx * c + dy * s, cy - dx * s + dy * c) for dx, dy in offsets]
        return points if polygon_area(points) >= 0 else points[::-1]


def polygon_area(points: list[Point]) -> float:
    """Signed shoelace area (positive for counter-clockwise vertices in x-right, y-up orientation)."""
    total = 0.0
    for i, (x0, y0) in enumerate(points):
        x1, y1 = points[(i + 1) % len(points)]
        total += x0 * y1 - x1 * y0
    return total / 2


def convex_intersection(subject: list[Point], clip: list[Point]) -> list[Point]:
    """The intersection polygon of two convex polygons with positively oriented vertices."""
    output = subject
    for i in range(len(clip)):
        if not output:
            break
        ax, ay = clip[i]
        bx, by = clip[(i + 1) % len(clip)]

        def side(p: Point, ax: float = ax, ay: float = ay, bx: float = bx, by: float = by) -> float:
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)  # >= 0: left of (inside) the edge

        def cross(p: Point, q: Point, sp: float, sq: float) -> Point:
            t = sp / (sp - sq)
            return (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))

        points, output = output, []
        for j, p in enumerate(points):
            q = points[(j + 1) % len(points)]
            sp, sq = side(p), side(q)
            if sp >= 0:
                output.append(p)
                if sq < 0:
                    output.append(cross(p, q, sp, sq))
            elif sq >= 0:
                output.append(cross(p, q, sp, sq))
    return output


def iou(a: PixelBox, b: PixelBox) -> float:
    """Intersection over union of two pixel boxes, in [0, 1]; 0 when both are empty."""
    if not isinstance(a, PixelBox) or not isinstance(b, PixelBox):
        raise TypeError("iou compares PixelBox values only; convert model output with the image width and height")
    if a.angle % 180 == 0 and b.angle % 180 == 0:
        w = min(a.x2, b.x2) - max(a.x1, b.x1)
        h = min(a.y2, b.y2) - max(a.y1, b.y1)
        inter = max(w, 0.0) * max(h, 0.0)
    elif a.area == 0 or b.area == 0:
        inter = 0.0
    else:
        inter = abs(polygon_area(convex_intersection(a.corners(), b.corners())))
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0
