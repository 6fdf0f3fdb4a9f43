"""Every registry family through one path: build the open_clip architecture, read the weights file
safely in whatever layout the family ships, strict-load, wrap in the ``ContrastiveModel`` protocol."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.digests import file_digest
from rsvlm.errors import RsvlmError
from rsvlm.models.checkpoint import WeightsError, load_into, read_state_dict, weights_file
from rsvlm.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch

    from rsvlm.data.sample import RasterImage
    from rsvlm.models.protocols import ContrastiveModel, TextTokens, Tower


def weights_dir() -> Path:
    return Path(os.environ.get("RSVLM_WEIGHTS_DIR", Path.home() / ".cache" / "rsvlm" / "weights"))


def resolve_weights(spec: ModelSpec, weights: str | Path | None, download: bool) -> Path:
    """The local weights file: given, already in the weights folder, or (only if asked) downloaded."""
    if weights is not None:
        return Path(weights)
    if spec.weights is None:
        raise WeightsError(f"{spec.name} has no released weights; pass --weights PATH")
    local = weights_dir() / spec.name / Path(spec.weights.filename).name
    if local.is_file():
        return local
    where = (spec.weights.hf_repo and f"huggingface.co/{spec.weights.hf_repo}") or spec.weights.url or "its authors"
    if not download:
        raise WeightsError(
            f"no weights for {spec.name}: pass --weights PATH to {spec.weights.filename} (released at {where}), "
            f"put it at {local}, or add --download"
        )
    if spec.weights.hf_repo is None:
        raise WeightsError(f"{spec.name}: download {spec.weights.filename} from {where} by hand and pass --weights")
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(spec.weights.hf_repo, spec.weights.filename, local_dir=local.parent)
    except Exception as exc:  # offline, DNS, HTTP errors: all mean "not downloadable now"
        raise WeightsError(
            f"{spec.name}: download from {where} failed ({type(exc).__name__}); pass --weights PATH"
        ) from None
    return Path(path)


@dataclass
class OpenClipModel:
    """An open_clip CLIP in the ``ContrastiveModel`` protocol."""

    name: str
    model: Any
    tokenizer: Any
    transform: Any
    embed_dim: int
    preprocess_id: str
    weights_id: str
    in_bands: int | None = None
    """Takes RGB (any band count is reduced to RGB by ``preprocess``): no multispectral input of its own."""

    @property
    def logit_scale(self) -> float:
        """The learned inverse temperature (100 for the released CLIP-family weights)."""
        return float(self.model.logit_scale.detach().exp().clamp(max=100.0))

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        from rsvlm.models.preprocess import to_pil_rgb

        tensor: torch.Tensor = self.transform(to_pil_rgb(image, self.name))
        return tensor

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            features = self.model.encode_image(pixels)
            result: torch.Tensor = torch.nn.functional.normalize(features.float(), dim=-1)
        return result

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            features = self.model.encode_text(self.tokenizer(list(texts)))
            result: torch.Tensor = torch.nn.functional.normalize(features.float(), dim=-1)
        return result

    # -- TunableContrastive: prompt learning and LoRA ------------------------------------------------------
    @property
    def network(self) -> torch.nn.Module:
        net: torch.nn.Module = self.model
        return net

    def _text_model(self) -> Any:
        if not hasattr(self.model, "token_embedding") or not hasattr(self.model, "transformer"):
            raise RsvlmError(f"{self.name}: its text tower is not open_clip's CLIP transformer, so it cannot be tuned")
        return self.model

    def tokenize(self, texts: Sequence[str]) -> TextTokens:
        import torch

        from rsvlm.models.protocols import TextTokens

        ids = self.tokenizer(list(texts))
        ends = ids.argmax(dim=-1)  # the end-of-text token has the highest id, as CLIP's pooling assumes
        length = int(ends.max()) + 1 if len(ids) else 1
        ids = ids[:, :length]  # causal attention: padding after the last end token changes nothing before it
        mask = (torch.arange(length)[None, :] <= ends[:, None]).long()
        return TextTokens(ids, mask, 1)

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._text_model().token_embedding(ids)
        return out

    def encode_word_embeddings(self, embeddings: torch.Tensor, tokens: TextTokens) -> torch.Tensor:
        """``CLIP.encode_text`` from the token-embedding layer on, over the tokens up to the last end token (the
        causal mask makes later padding irrelevant, and prompts are ~15 of the 77 positions)."""
        import torch
        from open_clip.transformer import text_global_pool

        m = self._text_model()
        length = embeddings.shape[1]
        mask = None if m.attn_mask is None else m.attn_mask[:length, :length]
        x = embeddings + m.positional_embedding[:length].to(embeddings.dtype)
        x = m.ln_final(m.transformer(x, attn_mask=mask))
        x = text_global_pool(x, tokens.ids, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
        if m.text_projection is not None:
            x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
        return torch.nn.functional.normalize(x.float(), dim=-1)

    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)

    def tower_copy(self, tower: Tower) -> torch.nn.Module:
        from rsvlm.models.tunable import frozen_copy, split_attention

        module = self._text_model().transformer if tower == "text" else self.model.visual
        return split_attention(frozen_copy(module))

    def lora_targets(self, tower: Tower, blocks: int) -> list[str]:
        """Query/key/value of the transformer blocks; for a ResNet tower the pointwise convolutions of its
        bottlenecks and the projections of its attention pooling."""
        from rsvlm.models.tunable import last

        qkv = ("q_proj", "k_proj", "v_proj")
        if tower == "text":
            n = len(self._text_model().transformer.resblocks)
            return last([[f"resblocks.{i}.attn.{p}" for p in qkv] for i in range(n)], blocks)
        visual = self.model.visual
        if hasattr(visual, "transformer"):
            n = len(visual.transformer.resblocks)
            return last([[f"transformer.resblocks.{i}.attn.{p}" for p in qkv] for i in range(n)], blocks)
        if hasattr(visual, "attnpool"):
            units = [
                [f"layer{s}.{j}.conv1", f"layer{s}.{j}.conv3"]
                for s in range(1, 5)
                for j in range(len(getattr(visual, f"layer{s}")))
            ]
            return last([*units, [f"attnpool.{p}" for p in qkv]], blocks)
        return []

    def with_towers(self, towers: Mapping[Tower, torch.nn.Module], tag: str) -> OpenClipModel:
        import copy
        import dataclasses

        model = copy.copy(self.model)
        model._modules = dict(self.model._modules)  # its own slot table: setting a tower leaves self.model alone
        for tower, module in towers.items():
            model._modules["transformer" if tower == "text" else "visual"] = module
        return dataclasses.replace(self, model=model, weights_id=f"{self.weights_id}+{tag}")


MAX_PARAMETERS = 5_000_000_000
"""More than the largest released CLIP (ViT-bigG/14, 2.5 B): a spec asking for more is a typo or an attack."""
_MAX_LAYERS = 256


def _layer_count(value: object) -> int:
    if isinstance(value, list):
        return sum(_layer_count(v) for v in value)
    return value if isinstance(value, int) else 0


def _checked_config(spec: ModelSpec) -> dict[str, Any]:
    """The spec's ``arch_config`` once it is known to build a model of sane size, counted on the meta device.

    Building on ``meta`` allocates nothing, so a config asking for a trillion parameters is refused in
    milliseconds instead of exhausting memory; the layer bound keeps that dry build itself quick.
    """
    import torch
    from open_clip.model import CLIP

    config: dict[str, Any] = json.loads(json.dumps(spec.arch_config))
    config["quick_gelu"] = spec.quick_gelu
    for tower in ("vision_cfg", "text_cfg"):
        layers = _layer_count(config.get(tower, {}).get("layers", 0) if isinstance(config.get(tower), dict) else 0)
        if layers > _MAX_LAYERS:
            raise WeightsError(f"{spec.name}: arch_config {tower} asks for {layers} layers (at most {_MAX_LAYERS})")
    try:
        with torch.device("meta"):
            dry = CLIP(**config)
    except Exception as exc:  # open_clip validates with asserts, TypeErrors and ValueErrors alike
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise WeightsError(f"{spec.name}: arch_config does not describe an open_clip CLIP ({detail})") from None
    count = sum(p.numel() for p in dry.parameters())
    if count > MAX_PARAMETERS:
        raise WeightsError(
            f"{spec.name}: arch_config describes {count / 1e9:.1f} B parameters (at most {MAX_PARAMETERS / 1e9:.0f} B)"
        )
    return config


def build_architecture(spec: ModelSpec) -> Any:
    """The randomly initialised open_clip model a spec describes (weights are loaded separately)."""
    import open_clip
    from open_clip.model import CLIP

    if spec.arch_config is not None:
        return CLIP(**_checked_config(spec))
    if spec.arch not in open_clip.list_models():
        raise WeightsError(
            f"{spec.name}: unknown open_clip architecture {spec.arch!r} "
            "(use a name from open_clip.list_models(), e.g. ViT-B-32, or describe it in arch_config)"
        )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip warns "initialized randomly": weights are loaded next
    try:
        return open_clip.create_model(spec.arch, pretrained=None, force_quick_gelu=spec.quick_gelu)
    finally:
        root.setLevel(level)


def load_openclip(spec: ModelSpec, weights: str | Path) -> OpenClipModel:
    import open_clip
    import torch

    path = Path(weights)
    state = read_state_dict(path)  # fail on a bad file before building a large model
    model = build_architecture(spec)
    load_into(model, state, path, f"{spec.name} ({spec.arch})")
    model.eval()
    vision = model.visual
    size = spec.image_size or vision.image_size
    size = size[0] if isinstance(size, tuple | list) else int(size)
    transform = open_clip.image_transform(size, is_train=False, mean=spec.mean, std=spec.std)
    context = int(model.context_length)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context)  # BPE vocab ships with open_clip
    preprocess_id = f"resize-shortest{size}-bicubic-centercrop-mean{spec.mean}-std{spec.std}"
    weights_id = file_digest(weights_file(path), 16)  # content, as for every model: a copied file is the same weights
    embed_dim = (
        int(model.text_projection.shape[1])
        if isinstance(model.text_projection, torch.Tensor)
        else int(model.text_projection.weight.shape[0])
    )
    return OpenClipModel(spec.name, model, tokenizer, transform, embed_dim, preprocess_id, weights_id)


def load_contrastive(
    name_or_spec: str | ModelSpec | None = None, weights: str | Path | None = None, *, download: bool = False
) -> ContrastiveModel:
    """Load a registry model (the default one when no name is given) through its family's loader."""
    from rsvlm.models.registry import default_spec, get_spec

    if name_or_spec is None:
        spec = default_spec()
    else:
        spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    if spec.loader == "lite":
        from rsvlm.models.lite import load_lite, packaged_weights

        return load_lite(weights if weights is not None else packaged_weights(spec.name), spec.name)
    return load_openclip(spec, resolve_weights(spec, weights, download))


def save_weights(model: OpenClipModel, path: str | Path) -> Path:
    """Write the model's tensors as safetensors (what rsvlm ships and caches; loads without pickle)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.model.state_dict().items()}
    save_file(state, str(path))
    return path
