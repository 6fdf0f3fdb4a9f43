"""Tensors out of a TorchScript archive (OpenAI's released CLIP ``.pt`` files) without running the archive.

``torch.jit.load`` executes the archive's TorchScript code, ``__setstate__`` methods included, so a
crafted archive can write files while it "loads". This reader never compiles or runs that code. It reads
the archive's ``data.pkl`` with an unpickler that knows a handful of globals: module objects
(``__torch__.*``) become inert records of their attributes, tensors are rebuilt from the archive's raw
data records, and anything else (a function, an arbitrary class) stops the read. Parameters and buffers
are then collected by walking the module records, which gives the names ``state_dict()`` would give.
"""

from __future__ import annotations

import functools
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
# TorchScript's typed-list helpers: they only tag a list with its element type.
_LIST_BUILDERS = {"build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "build_genericlist"}


class UnsafeArchive(Exception):  # noqa: N818 - a reason, not a crash: the caller turns it into a WeightsError
    """The archive holds something this reader will not build (code, an unknown class, bad tensor data)."""


class ScriptObject:
    """An inert stand-in for a TorchScript module: its class name and pickled attributes, nothing else.

    The unpickler builds modules with NEWOBJ, which needs a real class: each archive class name gets an
    empty subclass of this one (``_script_class``), so no code of the archive is ever involved.
    """

    class_name = "__torch__"
    attributes: Mapping[str, Any] = MappingProxyType({})

    def __setstate__(self, state: Any) -> None:
        # Called by the unpickler's BUILD opcode instead of the archive's own __setstate__ (never run).
        if isinstance(state, dict):
            self.attributes = {str(k): v for k, v in state.items()}
        else:
            raise UnsafeArchive(f"{self.class_name} is restored by its own __setstate__ code")


@functools.cache
def _script_class(qualname: str) -> type[ScriptObject]:
    return type("ScriptObject", (ScriptObject,), {"class_name": qualname})


class _StorageType:
    def __init__(self, dtype_name: str) -> None:
        self.dtype_name = dtype_name


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with compiled code or constants beside its data)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in zf.namelist())


class _Unpickler(pickle.Unpickler):
    def __init__(self, zf: zipfile.ZipFile, prefix: str) -> None:
        self.zf = zf
        self.prefix = prefix
        self.storages: dict[str, Any] = {}
        super().__init__(zf.open(f"{prefix}data.pkl"))

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _script_class(f"{module}.{name}")
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return list
        raise UnsafeArchive(f"it references {module}.{name}, which a weights file does not need")

    def persistent_load(self, pid: Any) -> Any:
        import torch

        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafeArchive(f"unknown persistent record {str(pid)[:60]}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise UnsafeArchive("malformed storage record")
        if key not in self.storages:
            dtype = getattr(torch, kind.dtype_name)
            try:
                raw = self.zf.read(f"{self.prefix}data/{key}")
            except KeyError:
                raise UnsafeArchive(f"data record {key} is missing") from None
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if len(raw) < numel * itemsize:
                raise UnsafeArchive(f"data record {key} holds {len(raw)} bytes, {numel * itemsize} expected")
            buffer = torch.frombuffer(bytearray(raw[: numel * itemsize]), dtype=torch.uint8) if numel else None
            storage = buffer.untyped_storage() if buffer is not None else torch.UntypedStorage(0)
            self.storages[key] = (storage, dtype)
        return self.storages[key]

    @staticmethod
    def _rebuild_tensor(
        storage: Any, offset: Any, size: Any, stride: Any, _requires_grad: Any, hooks: Any, *_: Any
    ) -> torch.Tensor:
        import torch

        if not (isinstance(storage, tuple) and len(storage) == 2) or hooks:
            raise UnsafeArchive("a tensor record is malformed or carries hooks")
        untyped, dtype = storage
        try:
            return torch.empty(0, dtype=dtype).set_(untyped, int(offset), tuple(size), tuple(stride))
        except (RuntimeError, TypeError, ValueError) as exc:
            raise UnsafeArchive(f"a tensor does not fit its data record ({str(exc).splitlines()[0][:80]})") from None


def _collect(obj: ScriptObject, prefix: str, out: dict[str, torch.Tensor], depth: int = 0) -> None:
    import torch

    if depth > 64:
        raise UnsafeArchive("modules are nested more than 64 deep")
    for name, value in obj.attributes.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _collect(value, f"{prefix}{name}.", out, depth + 1)


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Parameters and buffers of a TorchScript archive, named as its ``state_dict()`` would name them."""
    with zipfile.ZipFile(path) as zf:
        data = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(data) != 1:
            raise UnsafeArchive("no single top-level data.pkl")
        prefix = data[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in zf.namelist() and zf.read(byteorder).strip() != b"little":
            raise UnsafeArchive("big-endian archives are not supported")
        try:
            root = _Unpickler(zf, prefix).load()
        except UnsafeArchive:
            raise
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, KeyError) as exc:
            raise UnsafeArchive(f"its data record is malformed ({type(exc).__name__})") from None
    if not isinstance(root, ScriptObject):
        raise UnsafeArchive(f"the archive's root is a {type(root).__name__}, not a module")
    tensors: dict[str, torch.Tensor] = {}
    _collect(root, "", tensors)
    return tensors
