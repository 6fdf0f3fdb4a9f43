"""The contrastive models rsvlm can load, by name. Entries are data; loading is one shared path.

Facts per family (file layout, activation) come from each project's release and loading code:
OpenAI CLIP towers use QuickGELU; RemoteCLIP ships bare open_clip state dicts loaded into plain
(GELU) architectures; GeoRSCLIP ships bare state dicts, its ViT-B/32 initialised from OpenAI CLIP;
SkyCLIP ships open_clip training checkpoints (``state_dict`` with DDP ``module.`` prefixes), its
ViT-L/14 initialised from OpenAI CLIP and evaluated with QuickGELU by its authors.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from rsvlm.errors import RsvlmError
from rsvlm.models.spec import HeldOut, ImagePool, ModelSpec, Part, TrainingData, WeightsSource

# -- what each model was trained on: the one declaration leakage flags, copy-free scores and `rsvlm models` read --
_CLIP_INIT = "the CLIP weights it starts from were trained on web image-text pairs that are not published"

OPENAI_TRAINING = TrainingData(
    parts=(),
    source="Radford et al., CLIP, ICML 2021",
    undisclosed="WIT, 400 M image-text pairs collected from the web, is not published",
)
_RET3 = "RET-3 retrieval captions"
REMOTECLIP_TRAINING = TrainingData(
    parts=(
        Part("rsicd", how=_RET3, splits_declared=False),
        Part("rsitmd", how=_RET3, splits_declared=False),
        Part("ucm-captions", how=_RET3, splits_declared=False),
        Part("remoteclip-det-10", how="detection sets (DOTA, DIOR and others) converted to captions"),
        Part("remoteclip-seg-4", how="segmentation sets converted to boxes, then to captions"),
    ),
    source="Liu et al., RemoteCLIP, TGRS 2024 (RET-3, DET-10, SEG-4 and UAV imagery; continual pretraining)",
    undisclosed=_CLIP_INIT,
)
GEORSCLIP_TRAINING = TrainingData(
    parts=(Part("rs5m", how="RS5M image-text pairs"),),
    source="Zhang et al., RS5M and GeoRSCLIP, TGRS 2024",
    undisclosed="RS5M's images were filtered from public web image-text datasets (LAION2B-en, COYO-700M …), and "
    + _CLIP_INIT,
)
SKYCLIP_TRAINING = TrainingData(
    parts=(Part("skyscript", how="SkyScript pairs (Google Earth Engine images, OpenStreetMap-tag captions)"),),
    source="Wang et al., SkyScript, AAAI 2024",
    undisclosed=_CLIP_INIT,
)
RSICD_TEST_HELD_OUT = HeldOut(
    "rsicd", "test", "its 1,027 AID-matched images were removed by file content from every training source"
)
LITE_PARTS = (
    Part("rsicd", ("train",), "captions of its AID-matched images, 95 % for training and 5 % for validation"),
    Part("aid", None, "class names as prompt captions, on every AID image but the 1,027 RSICD test images"),
    Part("imagenet-1k", None, "pretraining of the EfficientNet-Lite0 image tower"),
)
LITE_EXCLUDED = "the 1,027 RSICD test images (AID images), removed by file content from every training source"
LITE_IMAGES = ImagePool("aid.txt", prefix="aid/", minus=("rsicd-test.txt",))
"""rsvlm-lite's (and so rsvlm-lite-chat's) training images: AID minus the RSICD test images; its captions and
class prompts, and the chat model's caption and classification conversations, all come from them."""
LITE_TRAINING = TrainingData(
    parts=LITE_PARTS,
    excluded=LITE_EXCLUDED,
    source="rsvlm/models/weights/rsvlm-lite/MODEL_CARD.md; configs/rsvlm-lite.yaml",
    held_out=(RSICD_TEST_HELD_OUT,),
    notes="the MiniLM text tower was pretrained on sentence pairs (text only)",
    images=LITE_IMAGES,
)

_OPENAI_HF = {
    "RN50": "timm/resnet50_clip.openai",
    "ViT-B-32": "timm/vit_base_patch32_clip_224.openai",
    "ViT-L-14": "timm/vit_large_patch14_clip_224.openai",
}


def _openai(arch: str) -> ModelSpec:
    return ModelSpec(
        name=f"openai-{arch.lower()}",
        family="openai",
        arch=arch,
        description=f"OpenAI CLIP {arch} (web image-text pairs; the usual zero-shot baseline)",
        weights=WeightsSource("open_clip_model.safetensors", hf_repo=_OPENAI_HF[arch], layout="state_dict"),
        quick_gelu=True,
        training=OPENAI_TRAINING,
        licence="MIT",
        citation="Radford et al., Learning Transferable Visual Models From Natural Language Supervision, ICML 2021",
    )


def _remoteclip(arch: str) -> ModelSpec:
    return ModelSpec(
        name=f"remoteclip-{arch.lower()}",
        family="remoteclip",
        arch=arch,
        description=f"RemoteCLIP {arch} (RS captions + boxes/masks converted to captions)",
        weights=WeightsSource(f"RemoteCLIP-{arch}.pt", hf_repo="chendelong/RemoteCLIP", layout="state_dict"),
        quick_gelu=False,
        training=REMOTECLIP_TRAINING,
        licence="Apache-2.0",
        citation="Liu et al., RemoteCLIP: A Vision Language Foundation Model for Remote Sensing, TGRS 2024",
    )


def _georsclip(arch: str, quick_gelu: bool) -> ModelSpec:
    return ModelSpec(
        name=f"georsclip-{arch.lower()}",
        family="georsclip",
        arch=arch,
        description=f"GeoRSCLIP {arch} (fine-tuned on RS5M)",
        weights=WeightsSource(
            f"RS5M_{arch}.pt",
            hf_repo="Zilun/GeoRSCLIP",
            layout="state_dict",
            url="https://huggingface.co/Zilun/GeoRSCLIP/resolve/main/ckpt/",
        ),
        quick_gelu=quick_gelu,
        training=GEORSCLIP_TRAINING,
        licence="CC-BY-NC-4.0",
        citation="Zhang et al., RS5M and GeoRSCLIP, TGRS 2024",
    )


def _skyclip(arch: str, tag: str, quick_gelu: bool) -> ModelSpec:
    return ModelSpec(
        name=f"skyclip-{arch.lower()}",
        family="skyclip",
        arch=arch,
        description=f"SkyCLIP {arch} (SkyScript, top 50% of captions)",
        weights=WeightsSource(
            f"SkyCLIP_{tag}_top50pct/epoch_20.pt",
            url=f"https://opendatasharing.s3.us-west-2.amazonaws.com/SkyScript/ckpt/SkyCLIP_{tag}_top50pct.zip",
            layout="training",
        ),
        quick_gelu=quick_gelu,
        training=SKYCLIP_TRAINING,
        licence="MIT",
        citation="Wang et al., SkyScript: A Large and Semantically Diverse Vision-Language Dataset, AAAI 2024",
    )


LITE = ModelSpec(
    name="rsvlm-lite",
    family="rsvlm",
    arch="EfficientNet-Lite0 + MiniLM-L6",
    description="rsvlm's default: ImageNet EfficientNet-Lite0 + all-MiniLM-L6-v2, tuned on RSICD/AID train (CPU)",
    weights=WeightsSource("model.safetensors", layout="lite"),
    loader="lite",
    default=True,
    image_size=160,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    training=LITE_TRAINING,
    licence="Apache-2.0 (EfficientNet-Lite0 weights: Apache-2.0; all-MiniLM-L6-v2: Apache-2.0, packaged under MIT)",
    citation="rsvlm (this project); towers: Tan & Le 2019 (EfficientNet), Wang et al. 2020 (MiniLM)",
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        LITE,
        _openai("RN50"),
        _openai("ViT-B-32"),
        _openai("ViT-L-14"),
        _remoteclip("RN50"),
        _remoteclip("ViT-B-32"),
        _remoteclip("ViT-L-14"),
        _georsclip("ViT-B-32", quick_gelu=True),
        _georsclip("ViT-H-14", quick_gelu=False),
        _skyclip("ViT-B-32", "ViT_B32", quick_gelu=False),
        _skyclip("ViT-L-14", "ViT_L14", quick_gelu=True),
    )
}


_SPEC_TEXT = ("name", "family", "arch", "description", "loader", "licence", "citation")
_LOADERS = ("open_clip", "lite")


def _check_spec_types(data: dict[str, object], path: Path) -> None:
    """Types a hand-written spec gets wrong; each is named here instead of failing deep inside open_clip."""

    def bad(key: str, expected: str) -> RsvlmError:
        return RsvlmError(f"{path}: model-spec key {key!r} must be {expected}, not {data[key]!r:.60}")

    for key in _SPEC_TEXT:
        if key in data and (not isinstance(data[key], str) or not str(data[key]).strip()):
            raise bad(key, "a non-empty string")
    if data.get("loader", "open_clip") not in _LOADERS:
        raise bad("loader", " or ".join(repr(x) for x in _LOADERS))
    for key in ("quick_gelu", "default"):
        if key in data and not isinstance(data[key], bool):
            raise bad(key, "true or false")
    size = data.get("image_size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and 0 < size <= 4096):
        raise bad("image_size", "an integer between 1 and 4096")
    for key in ("mean", "std"):
        value = data.get(key)
        if value is not None and not (
            isinstance(value, list) and len(value) == 3 and all(isinstance(x, int | float) for x in value)
        ):
            raise bad(key, "a list of 3 numbers")
    for key in ("arch_config", "extra", "weights"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise bad(key, "a JSON object")
    trained = data.get("trained_on")
    if trained is not None and not (isinstance(trained, list) and all(isinstance(x, str) for x in trained)):
        raise bad("trained_on", "a list of dataset names")


def load_spec_file(path: Path) -> ModelSpec:
    """A model described in JSON (a custom or fine-tuned open_clip model); unknown keys are errors."""
    from rsvlm.data.dataset import read_json_object

    data = read_json_object(path)
    allowed = {f.name for f in fields(ModelSpec)} - {"training"} | {"trained_on"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RsvlmError(
            f"{path}: unknown model-spec key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = [k for k in ("name", "family", "arch", "description") if k not in data]
    if missing:
        raise RsvlmError(f"{path}: model spec lacks {', '.join(missing)}")
    _check_spec_types(data, path)
    weights = data.pop("weights", None)
    for key in ("mean", "std"):
        if key in data:
            data[key] = tuple(data[key])
    if data.get("trained_on"):
        data["training"] = TrainingData.from_names(tuple(data["trained_on"]), str(path))
    data.pop("trained_on", None)
    try:
        source = WeightsSource(**weights) if isinstance(weights, dict) else None
        return ModelSpec(**data, weights=source)
    except TypeError as exc:
        raise RsvlmError(f"{path}: invalid model spec ({exc})") from None


def default_spec() -> ModelSpec:
    return next(s for s in MODELS.values() if s.default)


def get_spec(name: str) -> ModelSpec:
    """A registry entry by name, or a JSON model-spec file by path."""
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise RsvlmError(f"{path}: model-spec file not found")
        return load_spec_file(path)
    try:
        return MODELS[name]
    except KeyError:
        close = [n for n in MODELS if name.lower().replace("/", "-") in n]
        hint = f"did you mean {', '.join(close)}?" if close else "see `rsvlm models`"
        raise RsvlmError(f"unknown model {name!r} ({hint})") from None
