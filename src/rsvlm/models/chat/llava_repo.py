"""Checkpoints in the original LLaVA-repository layout (GeoChat, SkySenseGPT, LLaVA-1.5 …) → a transformers
``LlavaForConditionalGeneration`` folder, converted once and cached. No GeoChat or LLaVA code is used.

What the layout is, from the projects' own code and releases:

- ``config.json`` is a LLaMA config plus ``mm_*`` keys (``geochat/model/geochat_arch.py``,
  ``initialize_vision_modules``): ``mm_vision_tower`` (a CLIP name such as
  ``openai/clip-vit-large-patch14-336``), ``mm_projector_type`` (``linear`` or ``mlp2x_gelu``),
  ``mm_hidden_size``, ``mm_vision_select_layer`` (-2: the penultimate layer), ``mm_vision_select_feature``
  (``patch`` drops the CLS token, ``cls_patch`` keeps it), ``mm_use_im_start_end``,
  ``mm_use_im_patch_token``; GeoChat's config class has ``model_type: geochat``
  (``geochat/model/language_model/geochat_llama.py``), which the hub shows as the ``geochat`` tag of
  ``MBZUAI/geochat-7B`` and ``ll-13/SkySenseGPT-7B-CLIP-ViT``.
- Weights: ``model.embed_tokens``, ``model.layers.*``, ``model.norm``, ``lm_head``, ``model.mm_projector.*``
  (an ``nn.Sequential``: ``0`` and ``2`` are the two linears of ``mlp2x_gelu``), and the CLIP tower as
  ``model.vision_tower.vision_tower.vision_model.*`` when it was saved with the model. GeoChat-7B on the hub
  is ``pytorch_model-0000{1,2}-of-00002.bin`` + ``pytorch_model.bin.index.json`` (76 kB) +
  ``tokenizer.model``: 14.1 GB, which is LLaMA-7B (13.5 GB) plus a CLIP ViT-L/14 tower (0.6 GB) in fp16,
  with an index almost three times that of a LLaVA-7B upload without the tower (``jtjtxie/ll-7b``: 27 kB,
  13.5 GB), so the tower is inside. GeoChat's own loader builds the tower with ``delay_load``, skips those
  saved weights and reloads ``mm_vision_tower`` before interpolating it (``geochat/model/builder.py``);
  the tower is frozen in training, so both are the same weights. LLaVA-1.5 releases
  (``liuhaotian/llava-v1.5-7b``) leave the tower out and name it by ``mm_vision_tower``. Both are handled:
  an explicit ``vision_tower=`` folder wins, then weights inside the checkpoint, then a local folder named
  by ``mm_vision_tower``.
- GeoChat's tower is CLIP ViT-L/14 trained at 336 px whose position embeddings are interpolated to 504 px
  on load (``geochat/model/multimodal_encoder/clip_encoder.py``, ``clip_interpolate_embeddings``: the CLS
  embedding is kept, the 24×24 grid goes to 36×36 by bicubic interpolation with ``align_corners=True``,
  giving 1297 positions); images are resized and centre-cropped to 504 (``crop_size``/``size`` overrides
  in ``geochat/eval/batch_geochat_*.py``, without the square padding of the demo). The interpolation here
  is the same computation, so a tower saved at 336 px and one saved after interpolation give equal weights.
- The prompt is ``conv_llava_v1`` (``templates.llava_v1``) and the image placeholder ``<image>`` is split
  out of the text and replaced by ``IMAGE_TOKEN_INDEX = -200`` (``geochat/mm_utils.py``,
  ``tokenizer_image_token``): each text chunk is tokenised on its own. Here ``<image>`` becomes a real
  added token whose embedding row is never read (image features replace it) and which generation
  suppresses; the chat model reproduces the chunk-wise tokenisation (``encoding: llava-repo``).
- SkySenseGPT releases the same layout: its evaluation scripts import GeoChat's ``geochat.*`` modules with
  ``--conv-mode llava_v1`` and 504 px crops (``Eval_scripts/batch_geochat_vqa.py`` in Luo-Z13/SkySenseGPT);
  ``ll-13/SkySenseGPT-7B-CLIP-ViT`` is tagged ``geochat`` and was uploaded as 8 files like GeoChat-7B
  (its ``generation_config.json``: transformers 4.31.0, bos 1, eos 2, pad 0); the authors' README links
  ``ll-13/SkySenseGPT-7B-clip-lora``, which third-party harnesses load as merged ``.bin`` shards through
  GeoChat's loader. Its exact file list was not visible from here.

``.bin`` shards are read with ``torch.load(weights_only=True)`` (``rsvlm.models.checkpoint``). The tokenizer
of these releases is a sentencepiece ``tokenizer.model``; transformers converts it once (this needs the
``sentencepiece`` and ``protobuf`` packages) and the converted folder stores the result as
``tokenizer.json``. Conversion holds the whole model in memory once (about 14 GB for a 7B fp16 model).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rsvlm.errors import RsvlmError
from rsvlm.models.chat.cache import build_once, default_cache_dir, fingerprint
from rsvlm.models.chat.clip_tower import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    POSITION_KEY,
    check_tower,
    clip_config,
    infer_clip_config,
    interpolate_position_embedding,
    read_clip_tower,
)
from rsvlm.models.chat.llava_weights import PROJECTOR_EXPORTS, VISION_PREFIX, export_projector, read_checkpoint
from rsvlm.models.checkpoint import WeightsError

if TYPE_CHECKING:
    import torch

CONVERTER_VERSION = 1
IMAGE_TOKEN = "<image>"
PATCH_TOKEN = "<im_patch>"
FEATURE_STRATEGY: dict[str, Literal["default", "full"]] = {"patch": "default", "cls_patch": "full"}
FAMILY_IMAGE_SIZE = {"geochat": 504}
"""Input size a family runs its tower at when the caller does not say (GeoChat hard-codes 504)."""
FAMILY_PAD_TO_SQUARE = {"geochat": False}
"""Square padding per family when the caller does not say: GeoChat's evaluation scripts resize and crop
without padding (only its demo pads), whatever ``image_aspect_ratio`` the config records."""
LLAMA_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "initializer_range",
    "attention_bias",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def is_llava_repo_config(config: dict[str, Any]) -> bool:
    """An original-LLaVA config: LLaMA keys plus ``mm_*`` keys, no transformers ``text_config``."""
    return "text_config" not in config and ("mm_vision_tower" in config or "mm_projector_type" in config)


@dataclass(frozen=True)
class RepoConfig:
    """The multimodal facts of a LLaVA-repository ``config.json``."""

    raw: dict[str, Any]
    family: str
    projector: str
    vision_tower: str
    select_layer: int
    select_strategy: Literal["default", "full"]
    mm_hidden_size: int | None
    pad_to_square: bool
    use_patch_token: bool


def read_repo_config(folder: Path) -> RepoConfig:
    path = folder / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RsvlmError(f"{path}: cannot read the model config ({exc})") from None
    if not isinstance(raw, dict) or not is_llava_repo_config(raw):
        raise RsvlmError(f"{path}: not a LLaVA-repository config (no mm_vision_tower / mm_projector_type)")
    if raw.get("mm_use_im_start_end"):
        raise RsvlmError(f"{path}: mm_use_im_start_end=true (<im_start>/<im_end> image wrapping) is not supported")
    if raw.get("rope_scaling"):
        raise RsvlmError(f"{path}: rope_scaling {raw['rope_scaling']} is not supported by the converter")
    projector = str(raw.get("mm_projector_type", "linear"))
    if projector not in PROJECTOR_EXPORTS:
        known = ", ".join(PROJECTOR_EXPORTS)
        raise RsvlmError(f"{path}: mm_projector_type {projector!r} is not supported (known: {known})")
    feature = str(raw.get("mm_vision_select_feature", "patch"))
    if feature not in FEATURE_STRATEGY:
        raise RsvlmError(f"{path}: mm_vision_select_feature {feature!r} is not one of {', '.join(FEATURE_STRATEGY)}")
    return RepoConfig(
        raw=raw,
        family="geochat" if raw.get("model_type") == "geochat" else "llava",
        projector=projector,
        vision_tower=str(raw.get("mm_vision_tower", "")),
        select_layer=int(raw.get("mm_vision_select_layer", -2)),
        select_strategy=FEATURE_STRATEGY[feature],
        mm_hidden_size=raw.get("mm_hidden_size"),
        pad_to_square=raw.get("image_aspect_ratio") == "pad",
        # the LLaVA/GeoChat builder adds <im_patch> unless the config says otherwise
        use_patch_token=bool(raw.get("mm_use_im_patch_token", True)),
    )


def _no_tower(source: Path, repo: RepoConfig) -> str:
    return (
        f"{source}: the vision tower {repo.vision_tower!r} is neither inside the checkpoint nor a local folder; "
        "download it and pass vision_tower=PATH (rsvlm never downloads)"
    )


def _local_tower(name: str, source: Path) -> Path | None:
    """``mm_vision_tower`` when it names a local folder (absolute, or relative to the checkpoint)."""
    if not name:
        return None
    for candidate in (Path(name).expanduser(), source / name):
        if (candidate / "config.json").is_file():
            return candidate
    return None


def _grow_rows(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """Append rows (the mean of the existing ones) for tokens the original vocabulary lacked."""
    import torch

    if weight.shape[0] >= rows:
        return weight
    mean = weight.float().mean(dim=0, keepdim=True).to(weight.dtype)
    return torch.cat([weight, mean.expand(rows - weight.shape[0], -1)])


def _load_tokenizer(source: Path, repo: RepoConfig) -> Any:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    try:  # the LLaMA+mm_* config (model_type geochat, rope_scaling null) makes transformers chatter
        hf_logging.set_verbosity_error()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    except Exception as exc:  # transformers raises many types for a missing/unconvertible tokenizer
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise RsvlmError(
            f"{source}: cannot read the tokenizer ({detail}); a sentencepiece tokenizer.model is converted once "
            "with the sentencepiece and protobuf packages (pip install sentencepiece protobuf)"
        ) from None
    finally:
        hf_logging.set_verbosity(level)
    if repo.use_patch_token:  # same order as the original builder, so token ids match the checkpoint rows
        tokenizer.add_tokens([PATCH_TOKEN], special_tokens=True)
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:  # LLaVA's v1 training pads with <unk>
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def _native_names(model: Any, parts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Component tensors under the names the installed transformers gives the model's parameters."""
    modules = dict(model.named_modules())
    prefixes = {
        "vision": "model.vision_tower",
        "projector": "model.multi_modal_projector",
        "language": "model.language_model",
        "lm_head": "lm_head",
    }
    if any(p not in modules for p in prefixes.values()):
        raise RsvlmError("this transformers version lays out LlavaForConditionalGeneration differently")
    vision_keys = modules[prefixes["vision"]].state_dict()
    strip_vision = not any(k.startswith("vision_model.") for k in vision_keys)
    state = {}
    for component, tensors in parts.items():
        for key, tensor in tensors.items():
            if component == "vision" and strip_vision:
                key = key.removeprefix("vision_model.")
            state[f"{prefixes[component]}.{key}"] = tensor
    return state


def _check_fits(model: Any, state: dict[str, torch.Tensor], source: Path) -> None:
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != own[k]]
    if missing or unexpected or wrong:
        example = (missing or unexpected or wrong)[0]
        raise WeightsError(
            f"{source}: the checkpoint does not fit its own config ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong)} mis-shaped tensors; e.g. {example})"
        )


@dataclass(frozen=True)
class _Plan:
    source: Path
    repo: RepoConfig
    family: str
    tower_dir: Path | None
    """Where the tower's weights come from; None: from the checkpoint."""
    tower_config_dir: Path | None
    """Where the tower's architecture comes from; None: inferred from its weights."""
    image_size: int | None
    pad_to_square: bool


def _plan(
    source: Path, vision_tower: Path | None, image_size: int | None, pad_to_square: bool | None, family: str | None
) -> _Plan:
    from rsvlm.models.chat.shards import weight_names

    repo = read_repo_config(source)
    if vision_tower is not None and not (vision_tower / "config.json").is_file():
        raise RsvlmError(
            f"{vision_tower}: vision tower folder not found (pass the local CLIP folder, with config.json)"
        )
    named = _local_tower(repo.vision_tower, source)
    names = weight_names(source)
    embedded = names is None or any(k.startswith(VISION_PREFIX) for k in names)
    tower_dir = vision_tower or (None if embedded else named)
    if tower_dir is None and not embedded:
        raise RsvlmError(_no_tower(source, repo))
    family = family or repo.family
    return _Plan(
        source=source,
        repo=repo,
        family=family,
        tower_dir=tower_dir,
        tower_config_dir=vision_tower or named,
        image_size=image_size or FAMILY_IMAGE_SIZE.get(family),
        pad_to_square=FAMILY_PAD_TO_SQUARE.get(family, repo.pad_to_square) if pad_to_square is None else pad_to_square,
    )


def _convert(plan: _Plan, out: Path) -> dict[str, Any]:
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaImageProcessor,
        LlavaProcessor,
    )

    from rsvlm.models.chat.templates import LLAVA_V1_JINJA

    repo, source = plan.repo, plan.source
    tokenizer = _load_tokenizer(source, repo)
    parts = read_checkpoint(source, keep_vision=plan.tower_dir is None)
    tower_dir = plan.tower_dir
    if not parts["vision"]:
        tower_dir = plan.tower_dir or plan.tower_config_dir
        if tower_dir is None:
            raise RsvlmError(_no_tower(source, repo))
        parts["vision"] = read_clip_tower(tower_dir)
    tower = parts["vision"]
    check_tower(tower, tower_dir or source)
    vision_cfg = clip_config(plan.tower_config_dir) if plan.tower_config_dir else infer_clip_config(tower)
    patch = int(vision_cfg["patch_size"])
    native = math.isqrt(tower[POSITION_KEY].shape[0] - 1) * patch
    size = plan.image_size or native
    if size % patch:
        raise RsvlmError(f"{source}: image size {size} is not a multiple of the patch size {patch}")
    tower[POSITION_KEY] = interpolate_position_embedding(tower[POSITION_KEY], size // patch)
    vision_cfg["image_size"] = size

    vision_dim = int(tower["vision_model.embeddings.patch_embedding.weight"].shape[0])
    if repo.mm_hidden_size not in (None, vision_dim):
        raise WeightsError(f"{source}: mm_hidden_size {repo.mm_hidden_size} but the vision tower is {vision_dim} wide")
    embed = parts["language"].get("embed_tokens.weight")
    if embed is None or "weight" not in parts["lm_head"]:
        raise WeightsError(f"{source}: the checkpoint lacks model.embed_tokens or lm_head")
    text_dim = int(embed.shape[1])
    parts["projector"], act = export_projector(parts["projector"], repo.projector, vision_dim, text_dim, source)
    rows = max(len(tokenizer), int(embed.shape[0]))
    parts["language"]["embed_tokens.weight"] = _grow_rows(embed, rows)
    parts["lm_head"]["weight"] = _grow_rows(parts["lm_head"]["weight"], rows)

    text_cfg = {k: repo.raw[k] for k in LLAMA_KEYS if k in repo.raw}
    text_cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": float(repo.raw.get("rope_theta", 10000.0))}
    text_cfg["pad_token_id"] = tokenizer.pad_token_id
    grid = size // patch
    n_image_tokens = grid * grid + (1 if repo.select_strategy == "full" else 0)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**vision_cfg),
        text_config=LlamaConfig(vocab_size=rows, tie_word_embeddings=False, **text_cfg),
        image_token_index=image_id,
        image_seq_length=n_image_tokens,
        vision_feature_layer=repo.select_layer,
        vision_feature_select_strategy=repo.select_strategy,
        projector_hidden_act=act,
        multimodal_projector_bias=True,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    state = _native_names(model, parts)
    _check_fits(model, state, source)
    model.load_state_dict(state, strict=True, assign=True)
    model.config.dtype = embed.dtype
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(out), max_shard_size="4GB")

    mean, std = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    preprocessor = (plan.tower_config_dir or source) / "preprocessor_config.json"
    if preprocessor.is_file():
        pre = json.loads(preprocessor.read_text(encoding="utf-8"))
        mean, std = tuple(pre.get("image_mean", mean)), tuple(pre.get("image_std", std))
    image_processor = LlavaImageProcessor(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        do_pad=plan.pad_to_square,
        image_mean=list(mean),
        image_std=list(std),
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy=repo.select_strategy,
        num_additional_image_tokens=1,
        chat_template=LLAVA_V1_JINJA,
    )
    processor.save_pretrained(str(out))
    return {
        "format": "llava-repo",
        "converter_version": CONVERTER_VERSION,
        "source": str(source.resolve()),
        "family": plan.family,
        "template": "llava_v1",
        "encoding": "llava-repo",
        "image_size": size,
        "image_tokens": n_image_tokens,
        "vision_tower": str(tower_dir.resolve()) if tower_dir else "embedded",
        "pad_to_square": plan.pad_to_square,
    }


def convert_llava_repo(
    source: str | Path,
    *,
    vision_tower: str | Path | None = None,
    image_size: int | None = None,
    pad_to_square: bool | None = None,
    family: str | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The converted transformers folder for a LLaVA-repository checkpoint, converting on first use.

    ``vision_tower``: a local CLIP folder to use instead of the tower inside the checkpoint (or when the
    checkpoint has none and ``mm_vision_tower`` is not a local folder). ``image_size``: the tower's input
    size (default: 504 for GeoChat-family checkpoints, else the tower's own). ``pad_to_square``: pad images to
    a square before resizing (default: the config's ``image_aspect_ratio == "pad"``).
    """
    source = Path(source)
    if not (source / "config.json").is_file():
        raise RsvlmError(f"{source}: no config.json here (pass the folder of the downloaded checkpoint)")
    tower = Path(vision_tower) if vision_tower is not None else None
    plan = _plan(source, tower, image_size, pad_to_square, family)
    folders = [source] + [d for d in {plan.tower_dir, plan.tower_config_dir} if d is not None]
    params = {
        "converter": CONVERTER_VERSION,
        "image_size": plan.image_size,
        "pad_to_square": plan.pad_to_square,
        "family": plan.family,
        "tower": str(plan.tower_dir),
        "tower_config": str(plan.tower_config_dir),
    }
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"{source.resolve().name}-{fingerprint(folders, params)}"
    return build_once(target, lambda out: _convert(plan, out))
