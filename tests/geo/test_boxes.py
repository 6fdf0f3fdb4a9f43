"""Scene boxes: tile boxes → scene pixels → map coordinates, stitching across tile overlaps, counts per region.

The rasters are real GeoTIFFs written with rasterio and read back through ``rsvlm.data.raster``, so the
transform the boxes go through is the one a user's file would give.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform
from shapely.geometry import shape

from rsvlm.data.raster import Window, inspect_raster, read_image
from rsvlm.data.sample import Affine6, RasterImage
from rsvlm.errors import AnnotationError, RsvlmError
from rsvlm.geo.boxes import BoxProducer, Detection, SceneBoxes, TileDetections, stitch
from rsvlm.geo.geojson import write_geojson
from rsvlm.geo.regions import count_boxes, read_regions

UTM = "EPSG:32618"
TRANSFORM: Affine6 = (10.0, 0.0, 435730.0, 0.0, -10.0, 4179460.0)
WIDTH, HEIGHT = 1000, 800
# The drawn object: scene pixel columns 612..661 and rows 456..515, i.e. corners (612, 456) and (662, 516).
OBJECT_PX = (612, 456, 662, 516)
TILE_OFF = (512, 256)


def make_scene(path: Path) -> Path:
    """A 1000 x 800 single-band UTM GeoTIFF, dark except for one bright rectangle at ``OBJECT_PX``."""
    data = np.zeros((1, HEIGHT, WIDTH), dtype=np.uint8)
    x1, y1, x2, y2 = OBJECT_PX
    data[0, y1:y2, x1:x2] = 255
    profile = {
        "driver": "GTiff",
        "width": WIDTH,
        "height": HEIGHT,
        "count": 1,
        "dtype": "uint8",
        "crs": UTM,
        "transform": Affine(*TRANSFORM),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


class BrightBlobProducer:
    """A stand-in detector: the box around all bright pixels of the tile, in corner convention."""

    def __call__(self, image: RasterImage) -> list[Detection]:
        rows, cols = np.nonzero(image.data[0] > 128)
        if not len(rows):
            return []
        return [
            Detection(float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1), 0.9, "car")
        ]


def utm_corners(x1: float, y1: float, x2: float, y2: float) -> list[tuple[float, float]]:
    """Expected map corners, computed by hand from the transform (10 m pixels, north up)."""
    west, east = 435730 + x1 * 10, 435730 + x2 * 10
    north, south = 4179460 - y1 * 10, 4179460 - y2 * 10
    return [(west, north), (west, south), (east, south), (east, north)]


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, SceneBoxes]:
    """The scene file and the boxes the stand-in detector finds in one tile of it, stitched."""
    path = make_scene(tmp_path / "scene.tif")
    info = inspect_raster(path)
    col_off, row_off = TILE_OFF
    tile = read_image(path, window=Window(col_off, row_off, 400, 400))
    detections = BrightBlobProducer()(tile)
    assert [(d.x1, d.y1, d.x2, d.y2) for d in detections] == [(100.0, 200.0, 150.0, 260.0)]
    boxes = stitch(
        [TileDetections.from_detections(detections, col_off=col_off, row_off=row_off)],
        scene_size=(info.width, info.height),
    )
    return path, boxes


# ---- acceptance: pixels → map -------------------------------------------------------------------------


def test_box_drawn_at_known_pixels_lands_at_its_utm_corners(scene: tuple[Path, SceneBoxes]) -> None:
    path, boxes = scene
    assert isinstance(BrightBlobProducer(), BoxProducer)
    np.testing.assert_array_equal(boxes.boxes, [OBJECT_PX])
    geo = inspect_raster(path).geo
    assert geo is not None and geo.transform is not None and geo.crs is not None
    assert geo.transform == TRANSFORM

    fc = boxes.to_geojson(geo.transform, geo.crs, wgs84=False)
    assert fc["crs"] == {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32618"}}
    (feature,) = fc["features"]
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    expected = utm_corners(*OBJECT_PX)
    assert [tuple(p) for p in ring[:-1]] == expected  # exact: 435730 + 612 * 10 = 441850 …
    assert ring[0] == [441850.0, 4174900.0]
    assert shapely.Polygon(ring).exterior.is_ccw  # RFC 7946 winding
    assert feature["properties"] == {"label": "car", "score": 0.9, "pixel_bbox": [612.0, 456.0, 662.0, 516.0]}


def test_wgs84_corners_are_the_reprojected_utm_corners(scene: tuple[Path, SceneBoxes]) -> None:
    _, boxes = scene
    fc = boxes.to_geojson(TRANSFORM, UTM, wgs84=True)
    assert "crs" not in fc  # RFC 7946: WGS84 lon/lat, no crs member
    ring = np.array(fc["features"][0]["geometry"]["coordinates"][0])
    xs, ys = zip(*utm_corners(*OBJECT_PX), strict=True)
    lons, lats = warp_transform(UTM, "EPSG:4326", list(xs), list(ys))
    np.testing.assert_allclose(ring[:-1], np.column_stack([lons, lats]), rtol=0, atol=1e-9)
    # 435730 E / 4179460 N in zone 18N (central meridian 75° W) lies about 0.7° west of it, at 37.7° N.
    assert np.all((ring[:, 0] > -75.7) & (ring[:, 0] < -75.6)), ring
    assert np.all((ring[:, 1] > 37.7) & (ring[:, 1] < 37.75)), ring
    assert shapely.Polygon(ring).exterior.is_ccw


def test_geojson_written_to_disk_reads_back(scene: tuple[Path, SceneBoxes], tmp_path: Path) -> None:
    _, boxes = scene
    out = write_geojson(tmp_path / "out" / "boxes.geojson", boxes.to_geojson(TRANSFORM, UTM, wgs84=False))
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and data["crs"]["properties"]["name"].endswith("EPSG::32618")
    (feature,) = data["features"]
    geometry = shape(feature["geometry"])
    assert geometry.geom_type == "Polygon" and geometry.is_valid
    assert geometry.bounds == (441850.0, 4174300.0, 442350.0, 4174900.0)
    assert geometry.area == pytest.approx(500 * 600)  # 50 x 60 pixels of 10 m
    assert feature["properties"]["label"] == "car"
    assert feature["properties"]["pixel_bbox"] == [612, 456, 662, 516]

    wgs = json.loads(write_geojson(tmp_path / "wgs.geojson", boxes.to_geojson(TRANSFORM, UTM)).read_text())
    lon, lat = shape(wgs["features"][0]["geometry"]).centroid.coords[0]
    (x,), (y,) = warp_transform("EPSG:4326", UTM, [lon], [lat])
    assert (x, y) == pytest.approx((442100.0, 4174600.0), abs=0.01)  # centre of the UTM box


def test_rotated_transform_keeps_ccw_rings_and_exact_corners() -> None:
    # A south-up raster (e > 0) flips orientation; the ring must still wind counter-clockwise.
    boxes = SceneBoxes(np.array([[1.0, 2.0, 3.0, 5.0]]), np.array([1.0]), ("tree",))
    transform: Affine6 = (2.0, 0.0, 100.0, 0.0, 2.0, 200.0)
    ring = boxes.to_geojson(transform, UTM, wgs84=False)["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == [102.0, 204.0]  # top-left pixel corner first
    assert sorted(map(tuple, ring[:-1])) == [(102.0, 204.0), (102.0, 210.0), (106.0, 204.0), (106.0, 210.0)]
    assert shapely.Polygon(ring).exterior.is_ccw


def test_bad_transform_or_crs_is_a_one_line_error() -> None:
    boxes = SceneBoxes(np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([1.0]), ("tree",))
    with pytest.raises(RsvlmError, match="degenerate"):
        boxes.to_geojson((0.0, 0.0, 1.0, 0.0, 0.0, 1.0), UTM)
    with pytest.raises(RsvlmError, match="unknown scene CRS 'EPSG:99999999'"):
        boxes.to_geojson(TRANSFORM, "EPSG:99999999")


# ---- stitching --------------------------------------------------------------------------------------


def tile(col_off: int, row_off: int, *boxes: tuple[float, float, float, float, float, str]) -> TileDetections:
    return TileDetections.from_detections([Detection(*b) for b in boxes], col_off=col_off, row_off=row_off)


# Tiles of 512 px overlapping by 64: A covers columns 0..512, B columns 448..960. A 70-px-wide tree at scene
# columns 490..560 is cut by A's right border (A sees only columns 490..512) and whole in B.
FULL_IN_SCENE = [490.0, 100.0, 560.0, 140.0]


def cut_tree(partial_score: float, full_score: float) -> list[TileDetections]:
    return [
        tile(0, 0, (490, 100, 512, 140, partial_score, "tree")),
        tile(448, 0, (42, 100, 112, 140, full_score, "tree")),
    ]


def test_object_cut_by_tile_border_is_kept_once_as_the_full_box() -> None:
    stitched = stitch(cut_tree(0.6, 0.8))
    np.testing.assert_array_equal(stitched.boxes, [FULL_IN_SCENE])
    assert stitched.labels == ("tree",) and stitched.scores.tolist() == [0.8]
    # The IoU (22/70 = 0.31) alone does not catch it: plain NMS keeps both.
    assert len(stitch(cut_tree(0.6, 0.8), ios_threshold=None)) == 2


def test_cut_object_scoring_higher_is_still_counted_once() -> None:
    stitched = stitch(cut_tree(0.9, 0.8))
    np.testing.assert_array_equal(stitched.boxes, [[490, 100, 512, 140]])  # the visible part, one object
    assert stitched.scores.tolist() == [0.9]


def test_equal_scores_keep_the_larger_box() -> None:
    # Chat producers score every box 1.0; the full box must win over the partial one, whatever the tile order.
    tiles = cut_tree(1.0, 1.0)
    for ordered in (tiles, tiles[::-1]):
        np.testing.assert_array_equal(stitch(ordered).boxes, [FULL_IN_SCENE])


def test_two_nearby_objects_stay_two() -> None:
    # Two touching crowns overlapping by 4 px: IoU 0.05, intersection 10% of each box.
    stitched = stitch([tile(0, 0, (100, 100, 140, 140, 0.9, "tree"), (136, 100, 176, 140, 0.8, "tree"))])
    np.testing.assert_array_equal(stitched.boxes, [[100, 100, 140, 140], [136, 100, 176, 140]])


def test_different_labels_are_not_suppressed_against_each_other() -> None:
    stitched = stitch([tile(0, 0, (10, 10, 50, 50, 0.9, "car")), tile(0, 0, (10, 10, 50, 50, 0.5, "tree"))])
    assert sorted(stitched.labels) == ["car", "tree"]
    assert len(stitch([tile(0, 0, (10, 10, 50, 50, 0.9, "car")), tile(0, 0, (10, 10, 50, 50, 0.5, "car"))])) == 1


def test_suppression_is_greedy_a_dropped_box_suppresses_nothing() -> None:
    # b overlaps a (dropped), c overlaps b but not a: c must survive because b was dropped.
    a, b, c = (0, 0, 10, 10, 0.9, "x"), (2, 0, 12, 10, 0.8, "x"), (9, 0, 19, 10, 0.7, "x")
    stitched = stitch([tile(0, 0, a, b, c)], ios_threshold=None)
    np.testing.assert_array_equal(stitched.boxes, [[0, 0, 10, 10], [9, 0, 19, 10]])


def test_without_ios_it_is_torchvision_batched_nms() -> None:
    torch = pytest.importorskip("torch")
    from torchvision.ops import batched_nms  # type: ignore[import-untyped]

    rng = np.random.default_rng(0)
    n = 400
    xy = rng.uniform(0, 300, size=(n, 2))
    wh = rng.uniform(5, 40, size=(n, 2))
    boxes = np.column_stack([xy, xy + wh])
    scores = rng.permutation(n) / n  # distinct, so the order is unambiguous
    labels = rng.choice(["car", "tree", "roof"], size=n)
    tiles = [TileDetections(0, 0, boxes, scores, tuple(labels.tolist()))]
    for threshold in (0.3, 0.5):
        ours = stitch(tiles, iou_threshold=threshold, ios_threshold=None)
        codes = torch.as_tensor(np.unique(labels, return_inverse=True)[1])
        keep = batched_nms(torch.as_tensor(boxes), torch.as_tensor(scores), codes, threshold).numpy()
        np.testing.assert_array_equal(ours.boxes, boxes[keep])  # same boxes, same (score) order
        assert 0 < len(ours) < n


def test_clipping_to_the_scene_and_dropping_boxes_outside() -> None:
    stitched = stitch(
        [tile(900, 700, (50, 50, 150, 120, 0.9, "car"), (150, 10, 180, 40, 0.8, "car"))], scene_size=(1000, 800)
    )
    np.testing.assert_array_equal(stitched.boxes, [[950, 750, 1000, 800]])
    assert stitched.size == (1000, 800)


def test_bad_thresholds_and_shapes_are_refused() -> None:
    with pytest.raises(RsvlmError, match=r"iou_threshold 1\.5"):
        stitch([], iou_threshold=1.5)
    with pytest.raises(ValueError, match="x1 <= x2"):
        TileDetections(0, 0, np.array([[5.0, 0.0, 1.0, 1.0]]), np.array([1.0]), ("a",))
    with pytest.raises(ValueError, match="2 scores for 1 boxes"):
        TileDetections(0, 0, np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([1.0, 2.0]), ("a",))
    assert len(stitch([])) == 0


# ---- counts -------------------------------------------------------------------------------------------


def write_regions(path: Path, features: list[dict[str, Any]], crs: str | None = None) -> Path:
    data: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def wgs84_rectangle(col1: float, row1: float, col2: float, row2: float) -> list[list[float]]:
    """A ring in lon/lat through the four scene-pixel corners (as a user would draw it on a web map)."""
    a, _, c, _, e, f = TRANSFORM
    xs = [a * col + c for col in (col1, col2, col2, col1, col1)]
    ys = [e * row + f for row in (row1, row1, row2, row2, row1)]
    lons, lats = warp_transform(UTM, "EPSG:4326", xs, ys)
    return [[lon, lat] for lon, lat in zip(lons, lats, strict=True)]


def test_counts_per_class_and_per_wgs84_region(tmp_path: Path) -> None:
    # West region: columns 0..500, east region: columns 500..1000, both rows 0..400; nothing below row 400.
    regions_file = write_regions(
        tmp_path / "regions.geojson",
        [
            {
                "type": "Feature",
                "properties": {"name": "west"},
                "geometry": {"type": "Polygon", "coordinates": [wgs84_rectangle(0, 0, 500, 400)]},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [wgs84_rectangle(500, 0, 1000, 400)]},
            },
        ],
    )
    regions = read_regions(regions_file, UTM)
    assert [name for name, _ in regions] == ["west", "1"]  # unnamed → feature index
    west = regions[0][1]
    # Back in UTM metres: the drawn corners exactly, and edges that were straight in lon/lat (densified before
    # reprojecting) bow by well under a metre over 5 km.
    corners = {(435730.0, 4179460.0), (440730.0, 4179460.0), (440730.0, 4175460.0), (435730.0, 4175460.0)}
    vertices = {(round(x, 6), round(y, 6)) for x, y in west.exterior.coords}
    assert corners <= vertices and len(vertices) > 4
    assert west.bounds == pytest.approx((435730.0, 4175460.0, 440730.0, 4179460.0), abs=1.0)

    scene_boxes = stitch(
        [
            tile(
                0,
                0,
                (100, 100, 120, 120, 1.0, "tree"),  # west
                (200, 300, 220, 320, 1.0, "tree"),  # west
                (300, 50, 330, 70, 1.0, "car"),  # west
                (700, 100, 720, 120, 1.0, "tree"),  # east
                (480, 200, 530, 220, 1.0, "car"),  # centre at column 505: east
                (100, 600, 120, 620, 1.0, "tree"),  # in no region
            )
        ]
    )
    counts = count_boxes(scene_boxes, regions, transform=TRANSFORM)
    assert counts["total"] == 6
    assert counts["by_class"] == {"car": 2, "tree": 4}
    assert counts["regions"] == {
        "west": {"total": 3, "by_class": {"car": 1, "tree": 2}},
        "1": {"total": 2, "by_class": {"car": 1, "tree": 1}},
    }
    assert "regions" not in count_boxes(scene_boxes)
    with pytest.raises(RsvlmError, match="transform"):
        count_boxes(scene_boxes, regions)


def test_regions_in_the_scene_crs_and_same_named_parts(tmp_path: Path) -> None:
    # A legacy crs member in UTM: no reprojection; two features named "farm" form one region.
    def square(x: float, y: float) -> dict[str, Any]:
        ring = [[x, y], [x + 100, y], [x + 100, y + 100], [x, y + 100], [x, y]]
        return {
            "type": "Feature",
            "properties": {"name": "farm"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    path = write_regions(
        tmp_path / "r.geojson", [square(435730, 4179360), square(436730, 4179360)], "urn:ogc:def:crs:EPSG::32618"
    )
    ((name, farm),) = read_regions(path, UTM)
    assert name == "farm" and farm.geom_type == "MultiPolygon" and farm.area == pytest.approx(20000)
    # Pixel (5, 5) → (435780, 4179410), inside the first square; pixel (105, 5) inside the second.
    scene_boxes = SceneBoxes(
        np.array([[4.0, 4.0, 6.0, 6.0], [104.0, 4.0, 106.0, 6.0], [50.0, 4.0, 52.0, 6.0]]), np.ones(3), ("a",) * 3
    )
    assert count_boxes(scene_boxes, [(name, farm)], transform=TRANSFORM)["regions"]["farm"]["total"] == 2


def one_feature(geometry: Any, **extra: Any) -> str:
    return json.dumps({"type": "FeatureCollection", **extra, "features": [{"type": "Feature", "geometry": geometry}]})


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not readable as JSON"),
        ('{"type": "Polygon", "coordinates": []}', "not a FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "no features"),
        (one_feature({"type": "Point", "coordinates": [0, 0]}), "feature 0 has geometry 'Point'"),
        (one_feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}), "feature 0 has malformed coordinates"),
        (one_feature(None), "feature 0 has geometry 'NoneType'"),
        (one_feature(None, crs={"type": "name"}), "'crs' member has no name"),
        (one_feature(None, crs={"type": "name", "properties": {"name": "EPSG:0"}}), "unknown CRS 'EPSG:0'"),
        (  # latitude 95° does not exist
            one_feature({"type": "Polygon", "coordinates": [[[0, 95], [1, 95], [1, 96], [0, 95]]]}),
            "feature 0 cannot be put into the scene CRS",
        ),
    ],
)
def test_malformed_regions_file_is_a_one_line_error_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad_regions.geojson"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AnnotationError) as info:
        read_regions(path, UTM)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_missing_regions_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="regions file not found"):
        read_regions(tmp_path / "nope.geojson", UTM)
