from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from defusedxml import ElementTree

from rsvlm.adapt.regression import CountTile, RegressionHead, count_tiles, embed_rasters, regression_metrics
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.protocols import ContrastiveModel

REGIONS = ("OSBS_029", "SOAP_061")  # the two 400x400 images: 32 non-overlapping 100-px tiles, quick to embed


class OtherModel:
    """A contrastive model whose embeddings are not rsvlm-lite's (different size or preprocessing)."""

    weights_id = ""
    logit_scale = 100.0
    in_bands = None

    def __init__(self, name: str, embed_dim: int, preprocess_id: str) -> None:
        self.name, self.embed_dim, self.preprocess_id = name, embed_dim, preprocess_id

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        return torch.zeros(3, 8, 8)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.ones(len(pixels), self.embed_dim), dim=-1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.ones(len(texts), self.embed_dim), dim=-1)


@pytest.fixture(scope="module")
def model(shared_data: Path) -> ContrastiveModel:
    """rsvlm-lite; every test that embeds also needs the real tiles, so skip before loading it without them."""
    from rsvlm.models.openclip import load_contrastive

    loaded: ContrastiveModel = load_contrastive("rsvlm-lite")
    return loaded


@pytest.fixture(scope="module")
def neon(shared_data: Path) -> list[CountTile]:
    return count_tiles(shared_data / "neon_trees", 100, regions=REGIONS)


@pytest.fixture(scope="module")
def features(model: ContrastiveModel, neon: list[CountTile]) -> npt.NDArray[np.float32]:
    return embed_rasters(model, [t.image for t in neon])


@pytest.fixture(scope="module")
def counts(neon: list[CountTile]) -> npt.NDArray[np.float64]:
    return np.array([t.count for t in neon], dtype=np.float64)


@pytest.fixture(scope="module")
def head(model: ContrastiveModel, features: npt.NDArray[np.float32], counts: Any) -> RegressionHead:
    return RegressionHead.for_model(model).fit(features, counts)


def _voc_centres(path: Path) -> list[tuple[float, float]]:
    """Box centres straight from the XML, independently of rsvlm's VOC reader."""
    root = ElementTree.parse(path).getroot()
    assert root is not None
    centres = []
    for o in root.iter("object"):
        x1, y1, x2, y2 = (float(o.findtext(f"bndbox/{k}") or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
    return centres


@pytest.mark.shared
def test_count_tiles_match_box_centres_read_from_the_xml(shared_data: Path) -> None:
    from rsvlm.data.raster import read_image

    tiles = count_tiles(shared_data / "neon_trees", 100, regions=["OSBS_029"])
    assert len(tiles) == 16 and [t.window[:2] for t in tiles[:5]] == [(0, 0), (100, 0), (200, 0), (300, 0), (0, 100)]
    centres = _voc_centres(shared_data / "neon_trees" / "OSBS_029.xml")
    assert len(centres) == 61 and sum(t.count for t in tiles) == 61  # non-overlapping tiles: each tree once
    region, (x, y, w, h), pixels, count = tiles[9].region, tiles[9].window, tiles[9].image, tiles[9].count
    manual = sum(x <= cx < x + w and y <= cy < y + h for cx, cy in centres)
    assert region == "OSBS_029" and (x, y) == (100, 200) and count == manual and manual > 0
    source = read_image(shared_data / "neon_trees" / "OSBS_029.tif")
    np.testing.assert_array_equal(pixels.data, source.data[:, 200:300, 100:200])
    assert pixels.geo is not None and source.geo is not None and pixels.geo.transform is not None
    assert pixels.geo.transform[2:6:3] == pytest.approx(source.geo.pixel_to_map(100, 200))
    overlapping = count_tiles(shared_data / "neon_trees", 200, 100, regions=["OSBS_029"])
    assert len(overlapping) == 9 and sum(t.count for t in overlapping) > 61


@pytest.mark.shared
def test_count_tiles_errors(shared_data: Path) -> None:
    with pytest.raises(RsvlmError, match="no box-annotated image 'OSBS_999'"):
        count_tiles(shared_data / "neon_trees", 100, regions=["OSBS_999"])
    with pytest.raises(RsvlmError, match="must be positive"):
        count_tiles(shared_data / "neon_trees", 100, 0)


@pytest.mark.shared
def test_head_fits_neon_tiles_better_than_the_mean_count(
    head: RegressionHead, model: ContrastiveModel, features: npt.NDArray[np.float32], counts: npt.NDArray[np.float64]
) -> None:
    fitted = regression_metrics(head.predict(features), counts)
    baseline = regression_metrics(np.full(len(counts), counts.mean()), counts)
    assert fitted["n"] == baseline["n"] == 32
    assert fitted["mae"] < baseline["mae"] and fitted["rmse"] < baseline["rmse"]
    assert head.alpha in head.alphas and head.cv == "loo" and head.n_train == 32
    log_head = RegressionHead.for_model(model, transform="log1p").fit(features, counts)
    assert regression_metrics(log_head.predict(features), counts)["mae"] < baseline["mae"]


@pytest.mark.shared
def test_predictions_are_clipped_at_zero(head: RegressionHead, features: npt.NDArray[np.float32]) -> None:
    # extrapolate away from the most crowded tile: a linear head goes negative there, a count cannot
    crowded = features[int(np.argmax(head.predict(features)))]
    far = (features.mean(0) - 3 * (crowded - features.mean(0)))[None].repeat(2, 0)
    head.nonnegative = False
    try:
        raw = head.predict(np.concatenate([features, far]))
    finally:
        head.nonnegative = True
    clipped = head.predict(np.concatenate([features, far]))
    assert raw.min() < 0 and clipped.min() == 0.0
    np.testing.assert_array_equal(clipped, np.maximum(raw, 0.0))


@pytest.mark.shared
def test_grouped_cross_validation(
    model: ContrastiveModel, neon: list[CountTile], features: npt.NDArray[np.float32], counts: Any
) -> None:
    grouped = RegressionHead.for_model(model).fit(features, counts, groups=[t.region for t in neon])
    assert grouped.cv == "group-kfold-2" and grouped.alpha in grouped.alphas
    with pytest.raises(RsvlmError, match="3 groups for 32 targets"):
        RegressionHead.for_model(model).fit(features, counts, groups=["a", "b", "c"])


@pytest.mark.shared
def test_save_load_round_trip(
    head: RegressionHead, model: ContrastiveModel, features: npt.NDArray[np.float32], tmp_path: Path
) -> None:
    folder = head.save(tmp_path / "head")
    assert sorted(p.name for p in folder.iterdir()) == ["regression.json", "regression.safetensors"]
    config = json.loads((folder / "regression.json").read_text())
    assert config["model"]["name"] == "rsvlm-lite" and config["model"]["embed_dim"] == model.embed_dim
    assert config["model"]["preprocess_id"] == model.preprocess_id and config["alpha"] == head.alpha
    loaded = RegressionHead.load(folder, model)
    np.testing.assert_array_equal(loaded.predict(features), head.predict(features))
    assert (loaded.target, loaded.transform, loaded.nonnegative) == ("count", "none", True)


@pytest.mark.shared
def test_other_models_embeddings_are_refused(
    head: RegressionHead, model: ContrastiveModel, neon: list[CountTile], tmp_path: Path
) -> None:
    folder = head.save(tmp_path / "head")
    wider = OtherModel("rsvlm-lite", 768, model.preprocess_id)
    with pytest.raises(RsvlmError, match=r"fitted on rsvlm-lite embeddings \(512-d.*not rsvlm-lite \(768-d"):
        RegressionHead.load(folder, wider)
    resized = OtherModel("rsvlm-lite", model.embed_dim, "resize224-bicubic")
    with pytest.raises(RsvlmError, match="refit the head"):
        RegressionHead.load(folder, resized)
    with pytest.raises(RsvlmError, match="not openai-vit-b-32"):
        head.predict_images(OtherModel("openai-vit-b-32", 512, "clip-224"), [neon[0].image])
    with pytest.raises(RsvlmError, match=r"shape \(2, 768\) do not fit this head"):
        head.predict(np.zeros((2, 768), np.float32))
    direct = head.predict(embed_rasters(model, [neon[0].image]))
    np.testing.assert_allclose(head.predict_images(model, [neon[0].image]), direct)


@pytest.mark.shared
def test_embed_rasters_matches_file_embeddings_and_caches(
    model: ContrastiveModel, shared_data: Path, tmp_path: Path
) -> None:
    from rsvlm.data.raster import read_image
    from rsvlm.pipeline import embed_images

    path = shared_data / "neon_trees" / "SOAP_061.png"
    from_file = embed_images(model, [path], use_cache=False)
    first = embed_rasters(model, [read_image(path)], cache_dir=tmp_path, use_cache=True)
    np.testing.assert_allclose(first, from_file, atol=1e-5)
    assert len(list(tmp_path.rglob("*.emb"))) == 1
    again = embed_rasters(OtherModelSameKey(model), [read_image(path)], cache_dir=tmp_path, use_cache=True)
    np.testing.assert_array_equal(again, first)  # served from the cache: the wrapper cannot encode


class OtherModelSameKey:
    """Same cache identity as the wrapped model, but encoding fails: proves a read came from the cache."""

    def __init__(self, model: ContrastiveModel) -> None:
        self.name, self.embed_dim, self.preprocess_id = model.name, model.embed_dim, model.preprocess_id
        self.weights_id, self.logit_scale, self.in_bands = model.weights_id, model.logit_scale, model.in_bands
        self.preprocess = model.preprocess

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        raise AssertionError("should have been read from the cache")

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        raise AssertionError("unused")


def test_regression_metrics_by_hand() -> None:
    m = regression_metrics([3.0, 0.0, 5.0, 2.0], [1.0, 1.0, 5.0, 2.0])
    assert m == {"mae": 0.75, "rmse": pytest.approx(np.sqrt(5 / 4)), "n": 4, "bias": 0.25}
    with pytest.raises(ValueError, match="2 predictions for 3 targets"):
        regression_metrics([1, 2], [1, 2, 3])


def test_user_errors_name_the_fix(tmp_path: Path) -> None:
    head = RegressionHead("m", "p", 4)
    x = np.arange(20, dtype=np.float64).reshape(5, 4)
    with pytest.raises(RsvlmError, match="not fitted"):
        head.predict(x)
    with pytest.raises(RsvlmError, match="5 feature rows but 4 targets"):
        head.fit(x, [1, 2, 3, 4])
    with pytest.raises(RsvlmError, match="use transform='none'"):
        RegressionHead("m", "p", 4, transform="log1p").fit(x, [1, 2, -3, 4, 5])
    with pytest.raises(RsvlmError, match="transform 'log' is unknown"):
        RegressionHead("m", "p", 4, transform="log")
    with pytest.raises(RsvlmError, match=r"regression\.json: not found"):
        RegressionHead.load(tmp_path)
