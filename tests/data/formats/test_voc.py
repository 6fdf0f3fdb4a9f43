from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsvlm.data.formats.voc import VocDataset, parse_voc_xml
from rsvlm.data.registry import detect_format
from rsvlm.errors import AnnotationError


def test_folder_of_xml(fixtures: Path) -> None:
    root = fixtures / "voc"
    assert detect_format(root) == "voc"
    ds = VocDataset(root)
    by_id = {r.id: r for r in ds.records}
    a = by_id["tile_a"]
    assert a.boxes is not None and a.boxes.labels == ("Tree",) * 3
    np.testing.assert_array_equal(a.boxes.xyxy[1], [20, 10, 28, 16])
    assert a.boxes.angles is None
    assert a.image_path is not None and a.image_path.name == "tile_a.png"  # XML names a missing .tif
    assert any("tile_a.tif" in n for n in ds.notes)
    b = by_id["tile_b"].boxes
    assert b is not None and b.angles is not None
    np.testing.assert_allclose(b.xyxy[0], [15, 18, 25, 22])
    np.testing.assert_allclose(b.angles, [30.0])
    assert [(u.name, u.reason) for u in ds.unmatched] == [("tile_c.png", "image not found")]


def test_external_entity_is_refused(fixtures: Path) -> None:
    with pytest.raises(AnnotationError, match="unsafe XML refused") as err:
        parse_voc_xml(fixtures / "broken/xxe.xml")
    assert "xxe.xml" in str(err.value)


def test_inverted_box_and_truncated_xml(fixtures: Path, tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="inverted"):
        parse_voc_xml(fixtures / "broken/bad_box.xml")
    cut = tmp_path / "cut.xml"
    cut.write_text((fixtures / "voc/tile_a.xml").read_text()[:120])
    with pytest.raises(AnnotationError, match="malformed XML"):
        parse_voc_xml(cut)
    other = tmp_path / "other.xml"
    other.write_text("<svg/>")
    with pytest.raises(AnnotationError, match="not <annotation>"):
        parse_voc_xml(other)


def test_real_neon_trees(shared_data: Path) -> None:
    ds = VocDataset(shared_data / "neon_trees")
    counts = {r.id: len(r.boxes or ()) for r in ds.records}
    assert counts == {"2019_YELL_2_541000_4977000_image_crop": 279, "OSBS_029": 61, "SOAP_061": 37}
    assert ds.unmatched == []
    osbs = next(r for r in ds.records if r.id == "OSBS_029")
    assert osbs.boxes is not None
    np.testing.assert_array_equal(osbs.boxes.xyxy[0], [203, 67, 227, 90])  # first row of OSBS_029.csv
    sample = ds[ds.records.index(osbs)]
    assert sample.image is not None and sample.image.geo is not None  # the GeoTIFF carries its CRS
    assert sample.geo is not None and sample.geo.crs == "EPSG:32617"


def test_described_objects_become_grounding_samples(fixtures: Path) -> None:
    ds = VocDataset(fixtures / "rsvg")
    assert [r.id for r in ds.records] == ["scene_1#0", "scene_1#1"]
    car = ds.records[1]
    assert car.question == "the car at the lower right"
    assert car.boxes is not None and car.boxes.labels == ("vehicle",)
    np.testing.assert_array_equal(car.boxes.xyxy, [[50, 20, 70, 36]])
