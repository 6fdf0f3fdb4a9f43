"""A learned spectral adapter: N-band imagery (Sentinel-2, Landsat, uint16 reflectance) into rsvlm's RGB towers.

The adapter is a 1x1 convolution N → 3 that starts as the familiar stretched RGB composite
(``composite_tensor``), so on day one a multispectral model behaves exactly like the RGB model fed with the
composite, and training can only move it from there (e.g. to let near-infrared brighten vegetation).

Order of operations, shared by every path so they agree pixel for pixel: raw band values → nodata set to the
band's ``lo`` → ``resize_bands`` to the tower's input size → adapter (or composite) in [0, 1] → ``* 2 - 1`` →
EfficientNet-Lite tower. Resizing comes first because the clamp in the composite does not commute with
interpolation.

Parametrisation: every band is first normalised by its fixed stretch, ``z = (x - lo) / (hi - lo)``, and the
trainable weights act on ``z``. The composed affine map is the composite's (weight ``1 / (hi - lo)``, bias
``-lo / (hi - lo)`` on the chosen band), but (1) at init it reproduces the composite bit for bit (a weight of
exactly 1 and 0 elsewhere), and (2) the trainable numbers are O(1) for every band whatever the sensor's units,
so one Adam learning rate suits uint8 Landsat and uint16 Sentinel-2 alike (raw-unit weights of ~1e-4 would
move by a factor of 10 per step at lr 1e-3).

Clamp and gradients: the output keeps a plain hard clamp to [0, 1] (the range the tower was trained on, and
what makes init equal the composite), with its true gradient: zero for a saturated pixel. That does not stall
training, because a 2/98 percentile stretch leaves most pixels strictly inside the linear range (~90 % on
the quantised uint8 Landsat-7 scene, where many sit exactly on a limit), and every in-range
pixel carries gradient to all N weights of its output channel (the near-infrared ones included, although
they are 0 at init). A straight-through gradient for saturated pixels was tried and rejected: on Landsat-7
tiles its pseudo-gradient from the 4 % saturated pixels was ~20x the true gradient, pointed elsewhere, and
made the loss rise. The cost of the plain clamp: an output channel that training drives entirely out of
range stops learning; with learning rates that keep the composite recognisable that does not happen.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.models.chat.lite_vision import LiteVision

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.chat.lite_chat_model import LiteChatModel
    from rsvlm.models.lite import LiteModel
    from rsvlm.models.protocols import TextTokens, Tower

FORMAT = "rsvlm-spectral-adapter"
"""``adapter.json["format"]``: how ``load_adapter`` recognises its folder."""
WEIGHTS_FILE = "adapter.safetensors"
CONFIG_FILE = "adapter.json"

Limits = Sequence[float] | torch.Tensor | np.ndarray[Any, Any]


def _check_rgb(rgb: Sequence[int], in_bands: int) -> tuple[int, int, int]:
    picked = tuple(int(i) for i in rgb)
    if len(picked) != 3 or not all(0 <= i < in_bands for i in picked):
        raise RsvlmError(f"rgb must be 3 band indexes in 0..{in_bands - 1} (0-based), got {list(rgb)}")
    return picked[0], picked[1], picked[2]


def _as_values(values: Limits) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().flatten()
    return torch.from_numpy(np.asarray(values, dtype=np.float64)).flatten()


def _limits(lo: Limits, hi: Limits, in_bands: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``lo`` and ``hi`` as 1-D tensors of ``in_bands`` values with ``hi > lo`` everywhere."""
    lo_t, hi_t = (_as_values(v).to(dtype) for v in (lo, hi))
    if lo_t.numel() != in_bands or hi_t.numel() != in_bands:
        raise RsvlmError(f"lo and hi need one value per band ({in_bands}), got {lo_t.numel()} and {hi_t.numel()}")
    if not bool(torch.isfinite(lo_t).all() and torch.isfinite(hi_t).all()):
        raise RsvlmError("lo and hi must be finite numbers (compute them on valid pixels only)")
    bad = (hi_t - lo_t <= 0).nonzero().flatten().tolist()
    if bad:
        raise RsvlmError(f"band {bad[0]}: hi must be above lo (a constant band cannot be stretched; widen its limits)")
    return lo_t, hi_t


def _band_axis(pixels: torch.Tensor, in_bands: int | None = None) -> int:
    if pixels.ndim not in (3, 4):
        raise RsvlmError(f"pixels must be (bands, H, W) or (batch, bands, H, W), got shape {tuple(pixels.shape)}")
    axis = pixels.ndim - 3
    if in_bands is not None and pixels.shape[axis] != in_bands:
        raise RsvlmError(
            f"the spectral adapter takes {in_bands} bands, these pixels have {pixels.shape[axis]} "
            "(use an adapter made for this sensor's bands)"
        )
    return axis


def composite_tensor(pixels: torch.Tensor, rgb: Sequence[int], lo: Limits, hi: Limits) -> torch.Tensor:
    """The reference RGB composite in [0, 1]: bands ``rgb`` of ``pixels``, each stretched from [lo, hi].

    ``pixels`` is ``(N, H, W)`` or ``(B, N, H, W)`` raw band values; ``lo``/``hi`` hold one limit per band
    (e.g. the scene's 2nd and 98th percentiles).
    """
    axis = _band_axis(pixels)
    n = int(pixels.shape[axis])
    index = list(_check_rgb(rgb, n))
    dtype = pixels.dtype if pixels.is_floating_point() else torch.float32
    lo_t, hi_t = _limits(lo, hi, n, dtype)
    x = pixels.to(dtype).index_select(axis, torch.tensor(index, device=pixels.device))
    lo3 = lo_t[index].to(pixels.device)[:, None, None]
    hi3 = hi_t[index].to(pixels.device)[:, None, None]
    return ((x - lo3) / (hi3 - lo3)).clamp(0, 1)


def resize_bands(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, H, W)`` or ``(B, N, H, W)`` → the same at ``size`` x ``size`` (bilinear, antialiased; integer
    input becomes float32).

    Every path (adapter, composite, chat) resizes with this one call before any band mixing, so they agree.
    """
    _band_axis(pixels)
    x = pixels if pixels.is_floating_point() else pixels.float()
    if tuple(x.shape[-2:]) == (size, size):
        return x
    batched = x if x.ndim == 4 else x[None]
    out = torch.nn.functional.interpolate(
        batched, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return out if x.ndim == 4 else out[0]


class SpectralAdapter(torch.nn.Module):
    """N raw bands → RGB in [0, 1]; starts as ``composite_tensor(x, rgb, lo, hi)`` exactly, then trains.

    ``weight`` ``(3, N)`` and ``bias`` ``(3,)`` are a 1x1 convolution on the per-band normalised input
    ``(x - lo) / (hi - lo)`` (see the module docstring). It is computed as a channel matmul rather than
    ``conv2d``: cuDNN runs convolutions in TF32 on recent GPUs, which would break equality with the composite.
    """

    lo: torch.Tensor
    hi: torch.Tensor

    def __init__(
        self, in_bands: int, rgb: Sequence[int], lo: Limits, hi: Limits, bands: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        if in_bands < 1:
            raise RsvlmError(f"in_bands must be >= 1, got {in_bands}")
        if bands is not None and len(bands) != in_bands:
            raise RsvlmError(f"{len(bands)} band names for an adapter of {in_bands} bands")
        self.in_bands = int(in_bands)
        self.rgb = _check_rgb(rgb, self.in_bands)
        self.bands = None if bands is None else tuple(str(b) for b in bands)
        lo_t, hi_t = _limits(lo, hi, self.in_bands, torch.float32)
        self.register_buffer("lo", lo_t)
        self.register_buffer("hi", hi_t)
        weight = torch.zeros(3, self.in_bands)
        weight[torch.arange(3), torch.tensor(self.rgb)] = 1.0
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(torch.zeros(3))

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Each band stretched by its fixed limits (the same arithmetic as ``composite_tensor``)."""
        axis = _band_axis(pixels, self.in_bands)
        shape = [self.in_bands, 1, 1] if axis == 0 else [1, self.in_bands, 1, 1]
        lo, hi = self.lo.view(shape), self.hi.view(shape)
        return (pixels.to(self.lo.dtype) - lo) / (hi - lo)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(N, H, W)`` or ``(B, N, H, W)`` raw values → ``(3, H, W)`` / ``(B, 3, H, W)`` in [0, 1]."""
        z = self.normalise(pixels)
        y = torch.einsum("oc,...chw->...ohw", self.weight, z) + self.bias[:, None, None]
        return y.clamp(0, 1)

    def digest(self) -> str:
        """Identifies the current weights (changes as the adapter trains), e.g. for feature-cache keys."""
        h = hashlib.sha256(json.dumps([self.in_bands, list(self.rgb)]).encode())
        for t in (self.weight, self.bias, self.lo, self.hi):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def scene_limits(image: RasterImage, low: float = 2.0, high: float = 98.0) -> tuple[list[float], list[float]]:
    """Per-band ``low``/``high`` percentiles over the valid pixels: the usual stretch limits for an adapter.

    The same limits (and nodata rule) as the scene composites of ``rsvlm.geo``, so an adapter initialised
    from them starts as exactly the composite the maps and reports show.
    """
    from rsvlm.data.bands import band_stats, data_mask

    if not data_mask(image).any():
        raise RsvlmError("the image has no valid pixels to compute stretch limits from (check its nodata value)")
    stats = band_stats(image, (low, high))
    return list(stats.lo), list(stats.hi)


def spectral_pixels(image: RasterImage, adapter: SpectralAdapter, size: int, name: str) -> torch.Tensor:
    """An N-band image → ``(N, size, size)`` float32 raw values ready for the adapter.

    Pixels with nodata in any band become each band's ``lo`` first (black in the initial composite), so they
    never leak huge fill values into the interpolation. (Stricter than the scene rule of ``data.bands.data_mask``
    on purpose: an adapter mixes all bands, so one missing band spoils the whole pixel.)
    """
    if image.band_count != adapter.in_bands:
        raise RsvlmError(
            f"{name}: its spectral adapter takes {adapter.in_bands} bands, this image has {image.band_count} "
            f"{image.bands} (read the bands the adapter was made for, in its order)"
        )
    data = torch.from_numpy(np.ascontiguousarray(image.data, dtype=np.float32))
    valid = torch.from_numpy(image.valid_mask())
    if not bool(valid.all()):
        data = torch.where(valid, data, adapter.lo.detach().cpu()[:, None, None])
    return resize_bands(data, size)


class SpectralContrastiveModel:
    """A ``LiteModel`` behind a ``SpectralAdapter``, in the ``ContrastiveModel`` protocol.

    ``preprocess`` returns raw band values (resized), not RGB: band mixing happens in ``encode_images``, so
    the adapter can train through it (``image_embeddings`` is the same path with gradients).
    """

    def __init__(
        self, lite: LiteModel, adapter: SpectralAdapter, name: str | None = None, image_size: int | None = None
    ) -> None:
        """``image_size`` overrides the tower's input side (default: the lite model's, 160): the tower is fully
        convolutional, and small tiles (e.g. 32 px of 30 m Landsat) need not be blown up 5x to be embedded."""
        if image_size is not None and image_size < 32:
            raise RsvlmError(f"image_size must be >= 32 (the tower downsamples 32x), got {image_size}")
        self.lite = lite
        self.adapter = adapter
        self.image_size = image_size or lite.net.config.image_size
        self.name = name or f"{lite.name}+spectral{adapter.in_bands}"
        self.embed_dim = lite.embed_dim
        self.preprocess_id = f"spectral{adapter.in_bands}-nodata-lo-resize{self.image_size}-bilinear-aa"

    @property
    def weights_id(self) -> str:
        """The tower's and the adapter's current weights: embeddings change when either does."""
        return f"{self.lite.weights_id}+{self.adapter.digest()}"

    @property
    def in_bands(self) -> int:
        """Band count ``preprocess`` takes; scene maps hand such a model raw N-band tiles, not a composite."""
        return self.adapter.in_bands

    @property
    def logit_scale(self) -> float:
        return self.lite.logit_scale

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        return spectral_pixels(image, self.adapter, self.image_size, self.name)

    def tower_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, N, size, size)`` raw values → the tower's ``(B, 3, size, size)`` input in [-1, 1]."""
        if tuple(pixels.shape[-2:]) != (self.image_size, self.image_size):
            raise RsvlmError(
                f"{self.name}: pixels must be {self.image_size}x{self.image_size}, got {tuple(pixels.shape[-2:])} "
                "(run preprocess or resize_bands first)"
            )
        rgb: torch.Tensor = self.adapter(pixels)
        return rgb * 2 - 1

    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """The training path: normalised embeddings with gradients flowing back into the adapter."""
        rgb = self.tower_pixels(pixels).contiguous(memory_format=torch.channels_last)
        return self.lite.net.encode_image(rgb)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        self.lite.net.eval()
        with torch.inference_mode():
            return self.image_embeddings(pixels).float()

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.lite.encode_texts(texts)

    # -- TunableContrastive: the lite model's, with this adapter in front of the image tower -------------------
    @property
    def network(self) -> torch.nn.Module:
        return torch.nn.ModuleList([self.lite.net, self.adapter])

    def tokenize(self, texts: Sequence[str]) -> TextTokens:
        return self.lite.tokenize(texts)

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lite.word_embeddings(ids)

    def encode_word_embeddings(self, embeddings: torch.Tensor, tokens: TextTokens) -> torch.Tensor:
        return self.lite.encode_word_embeddings(embeddings, tokens)

    def tower_copy(self, tower: Tower) -> torch.nn.Module:
        return self.lite.tower_copy(tower)

    def lora_targets(self, tower: Tower, blocks: int) -> list[str]:
        return self.lite.lora_targets(tower, blocks)

    def with_towers(self, towers: Mapping[Tower, torch.nn.Module], tag: str) -> SpectralContrastiveModel:
        return SpectralContrastiveModel(self.lite.with_towers(towers, tag), self.adapter, self.name, self.image_size)


def train_adapter(
    model: SpectralContrastiveModel,
    tiles: torch.Tensor,
    labels: Sequence[int],
    class_texts: Sequence[str],
    steps: int,
    lr: float = 1e-2,
    seed: int = 0,
    batch_size: int | None = None,
) -> list[float]:
    """Tune only the adapter so tiles match their class text; returns the loss before each step.

    ``tiles`` are ``(B, N, H, W)`` raw values (resized here with ``resize_bands``). The loss is cross-entropy
    of ``logit_scale * image @ text.T`` against frozen text embeddings; the image tower is frozen and in eval
    mode. ``batch_size`` (default: all tiles) draws batches from a generator seeded with ``seed``, so a run is
    reproducible and leaves the global RNG alone.
    """
    if tiles.ndim != 4:
        raise RsvlmError(f"tiles must be (batch, bands, H, W), got shape {tuple(tiles.shape)}")
    _band_axis(tiles, model.adapter.in_bands)
    if len(labels) != len(tiles):
        raise RsvlmError(f"{len(labels)} labels for {len(tiles)} tiles")
    if len(class_texts) < 2:
        raise RsvlmError("train_adapter needs at least 2 class texts to tell apart")
    if any(not 0 <= int(y) < len(class_texts) for y in labels):
        raise RsvlmError(f"labels must be class indexes in 0..{len(class_texts) - 1}")
    if steps < 0 or lr <= 0:
        raise RsvlmError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
    size = batch_size or len(tiles)
    pixels = resize_bands(tiles, model.image_size).to(model.adapter.lo.device)
    targets = torch.tensor([int(y) for y in labels], device=pixels.device)
    texts = model.encode_texts(class_texts).clone()  # a normal tensor (not inference-mode) for the autograd graph
    scale = model.logit_scale
    net = model.lite.net
    frozen = {p: p.requires_grad for p in net.parameters()}
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.adapter.parameters(), lr=lr)
    losses: list[float] = []
    try:
        net.requires_grad_(False)  # only the adapter's gradients are computed, not the tower's trainable suffix
        net.eval()
        model.adapter.train()
        for _ in range(steps):
            pick = torch.randperm(len(pixels), generator=generator)[:size].to(pixels.device)
            logits = scale * model.image_embeddings(pixels[pick]) @ texts.T
            loss = torch.nn.functional.cross_entropy(logits, targets[pick])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.adapter.eval()
    return losses


def save_adapter(adapter: SpectralAdapter, folder: str | Path) -> Path:
    """``adapter.safetensors`` (weight, bias, lo, hi) and ``adapter.json`` (band count, rgb, band names)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in adapter.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    record = {"format": FORMAT, "in_bands": adapter.in_bands, "rgb": list(adapter.rgb), "bands": adapter.bands}
    atomic_write_json(folder / CONFIG_FILE, record)
    return folder


def load_adapter(folder: str | Path, in_bands: int | None = None) -> SpectralAdapter:
    """An adapter saved by ``save_adapter``; ``in_bands`` (the images' band count) is checked when given."""
    from safetensors.torch import load_file

    from rsvlm.models.checkpoint import read_saved_config

    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    record = read_saved_config(folder, CONFIG_FILE, WEIGHTS_FILE, FORMAT, "spectral adapter")
    try:
        n, rgb, bands = int(record["in_bands"]), list(record["rgb"]), record.get("bands")
    except (KeyError, TypeError, ValueError) as exc:
        raise RsvlmError(f"{config_path}: missing or malformed key {exc}") from None
    if in_bands is not None and in_bands != n:
        raise RsvlmError(
            f"{folder}: this spectral adapter takes {n} bands, the images have {in_bands} "
            "(use or train an adapter for this sensor's bands)"
        )
    try:
        state = load_file(str(weights_path))
    except Exception as exc:
        raise RsvlmError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    expected = {"weight": (3, n), "bias": (3,), "lo": (n,), "hi": (n,)}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        raise RsvlmError(f"{weights_path}: tensors {found} do not match {CONFIG_FILE} ({n} bands: {expected})")
    adapter = SpectralAdapter(n, rgb, state["lo"], state["hi"], bands)
    adapter.load_state_dict(state)
    return adapter.eval()


class SpectralLiteVision(torch.nn.Module):
    """``LiteVision`` with a spectral adapter in front, for the lite chat model.

    Images with the adapter's band count go through the adapter (in ``pixels``, so batching, caching and the
    tower's ``forward`` stay as they are); any other image takes the plain RGB path (so a 3-band adapter
    takes every 3-band image). In the chat path the
    adapter is fixed preprocessing (no gradients); train it with ``train_adapter``.
    """

    def __init__(self, base: LiteVision, adapter: SpectralAdapter) -> None:
        super().__init__()
        self.base = base
        self.adapter = adapter
        self.spec = base.spec
        self.image_size = base.image_size

    def train(self, mode: bool = True) -> SpectralLiteVision:
        super().train(False)
        return self

    def pixels(self, image: RasterImage, name: str) -> torch.Tensor:
        if image.band_count != self.adapter.in_bands:
            try:
                return self.base.pixels(image, name)
            except RsvlmError:
                raise RsvlmError(
                    f"{name}: this image has {image.band_count} bands {image.bands}; its spectral adapter takes "
                    f"{self.adapter.in_bands} and the RGB path 8-bit RGB (read the adapter's bands)"
                ) from None
        raw = spectral_pixels(image, self.adapter, self.image_size, name).to(self.adapter.lo.device)
        with torch.no_grad():
            out: torch.Tensor = self.adapter(raw) * 2 - 1
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.base(pixels)
        return out


def with_spectral_adapter(chat_model: LiteChatModel, adapter: SpectralAdapter) -> LiteChatModel:
    """A lite chat model that also reads N-band images through ``adapter``; ``chat_model`` is left as it is.

    The new model shares every weight with ``chat_model`` (the LLM is not copied); only its vision slot
    differs. Applying it to an already adapted model replaces the adapter.
    """
    from rsvlm.models.chat.lite_chat_model import LiteChatModel

    vision = chat_model.net.vision
    base = vision.base if isinstance(vision, SpectralLiteVision) else vision
    if not isinstance(base, LiteVision):
        raise RsvlmError(f"{chat_model.name}: its vision tower is not rsvlm-lite's, so it takes no spectral adapter")
    net = copy.copy(chat_model.net)
    net._modules = dict(net._modules)  # a slot table of its own: setting `vision` must not touch chat_model
    net.add_module("vision", SpectralLiteVision(base, adapter))
    return LiteChatModel(net, chat_model.name)
