"""Reading weights files safely and telling the user, in one line, when they do not fit.

Only tensors are ever deserialised: safetensors, or ``torch.load(weights_only=True)``, which refuses any
pickle that would construct arbitrary objects or run code. OpenAI's original CLIP files are TorchScript
archives; ``torch.jit.load`` would run their code (``__setstate__`` included), so their tensors are read
by ``rsvlm.models.torchscript`` without compiling or running anything. Weights holding NaN are
refused: they load fine and then print ``nan%`` for every answer.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError
from rsvlm.models.torchscript import UnsafeArchive, is_torchscript, read_torchscript_tensors

if TYPE_CHECKING:
    import torch


class WeightsError(RsvlmError):
    """A weights file is missing, unsafe, unreadable or made for another architecture."""


TORCHSCRIPT_FIX = (
    'if you trust the file, convert it once on a trusted machine: python -c "import torch, safetensors.torch as st; '
    "m = torch.jit.load('FILE.pt'); st.save_file({k: v.contiguous() for k, v in m.state_dict().items()}, "
    "'FILE.safetensors')\" and pass the .safetensors file"
)


def read_saved_config(folder: Path, config_name: str, weights_name: str, fmt: str, kind: str) -> dict[str, Any]:
    """The JSON record of a small saved artefact (a head, an adapter) once its weights file is known to exist.

    One rule for every such folder: both files must be there and the record must name ``fmt``, else a
    one-line error that names the file and says what the folder should hold.
    """
    from rsvlm.data.dataset import read_json_object

    config_path = folder / config_name
    for path in (config_path, folder / weights_name):
        if not path.is_file():
            raise RsvlmError(f"{path}: not found (a {kind} folder holds {config_name} and {weights_name})")
    record = read_json_object(config_path)
    if record.get("format") != fmt:
        raise RsvlmError(f"{config_path}: not a {kind} (format {record.get('format')!r} is not {fmt!r})")
    return record


def weights_file(path: str | Path) -> Path:
    """The one file a ``--weights`` path names: itself, or the first weights file of a folder."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.pt")) + sorted(path.glob("*.bin"))
        if not candidates:
            raise WeightsError(f"{path}: no .safetensors/.pt/.bin weights file in this folder")
        path = candidates[0]
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found (pass --weights PATH to the downloaded file)")
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint in any layout the registry families use, with ``module.`` stripped."""
    import torch

    path = weights_file(path)
    raw: Any
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            raw = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    elif is_torchscript(path):
        try:
            raw = read_torchscript_tensors(path)
        except UnsafeArchive as exc:
            raise WeightsError(f"{path}: refused to load this TorchScript archive: {exc}; {TORCHSCRIPT_FIX}") from None
        for key in ("input_resolution", "context_length", "vocab_size"):
            raw.pop(key, None)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # pickle-protocol chatter from the unpickler
                raw = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            lines = [line.strip() for line in str(exc).splitlines() if "nsupported" in line]
            detail = lines[0].split(" was not")[0][:120] if lines else "not a plain tensor pickle"
            raise WeightsError(
                f"{path}: refused to load, the file contains objects that need code execution ({detail}); "
                "only tensor checkpoints are accepted"
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0][:160]})") from None
    return normalise_state_dict(raw, path)


def normalise_state_dict(raw: Any, path: Path) -> dict[str, torch.Tensor]:
    """Unwrap training checkpoints (``{"state_dict": …}``) and strip DataParallel/DDP ``module.``."""
    import torch

    state = raw.get("state_dict", raw) if isinstance(raw, Mapping) else raw
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(f"{path}: no state dict inside (found {type(raw).__name__})")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{path}: the state dict holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    check_finite(tensors, path)
    return tensors


def check_finite(tensors: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Refuse weights holding NaN: they load, then every score is ``nan`` and nothing says why.

    Infinity is allowed: attention masks legitimately hold ``-inf``; a diverged weight is caught by the
    embeddings' own finiteness check.
    """
    import torch

    bad = [k for k, v in tensors.items() if v.is_floating_point() and bool(torch.isnan(v).any())]
    if bad:
        raise WeightsError(
            f"{path}: {len(bad)} weight tensor(s) hold NaN, e.g. {bad[0]} "
            "(the file is damaged or was saved from a diverged training run)"
        )


def describe_architecture(state: Mapping[str, torch.Tensor]) -> str:
    """A short guess of what a CLIP state dict was made for (``ViT, patch 32, width 768, 12 layers``)."""
    if "visual.conv1.weight" in state and "visual.transformer.resblocks.0.attn.in_proj_weight" in state:
        conv = state["visual.conv1.weight"]
        layers = len({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")})
        return f"ViT image tower, patch {conv.shape[-1]}, width {conv.shape[0]}, {layers} layers"
    if "visual.layer1.0.conv1.weight" in state:
        blocks = [len({k.split(".")[2] for k in state if k.startswith(f"visual.layer{i}.")}) for i in range(1, 5)]
        return f"ResNet image tower, blocks {blocks}, stem width {state['visual.conv1.weight'].shape[0]}"
    if any(k.startswith("visual.trunk.") for k in state):
        return "timm image tower"
    return "not a CLIP state dict"


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, expected: str) -> None:
    """Strict load with open_clip's own fix-ups; a mismatch is explained as a wrong-family file."""
    from open_clip.factory import resize_pos_embed, resize_text_pos_embed

    own = model.state_dict()
    transient = set(dict(model.named_buffers())) - set(own)  # e.g. attn_mask, kept by traced archives
    state = {k: v for k, v in state.items() if k not in transient}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if "logit_scale" in state and state["logit_scale"].ndim != own["logit_scale"].ndim:
        state["logit_scale"] = state["logit_scale"].reshape(own["logit_scale"].shape)
    resize_pos_embed(state, model)
    resize_text_pos_embed(state, model)
    wrong_shape = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        found = describe_architecture(state)
        detail = (
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong_shape)} mis-shaped tensors"
            f"{'; e.g. ' + (missing or unexpected or wrong_shape)[0]}"
        )
        raise WeightsError(
            f"{path}: weights do not fit {expected} ({detail}); the file looks like: {found}. "
            "Pick the registry entry made for this file (`rsvlm models`)"
        )
    model.load_state_dict(state, strict=True)
