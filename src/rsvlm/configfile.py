"""Strict config files: YAML/JSON parsed into mappings whose keys must be fields of a dataclass.

Training, dataset-building and benchmark configs all go through here, so every config in rsvlm treats a
typo the same way: as a one-line error naming the file, never as a silent default.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from rsvlm.errors import RsvlmError
from rsvlm.fileio import read_text


def check_keys(cls: Any, data: Any, where: str) -> dict[str, Any]:
    """``data`` as a dict whose keys are all fields of dataclass ``cls``: a typo is an error, never ignored."""
    if not isinstance(data, dict):
        raise RsvlmError(f"{where}: expected a mapping, got {type(data).__name__}")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RsvlmError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return dict(data)


def read_config_file(path: str | Path) -> Any:
    """Parse a ``.yaml``/``.yml`` or ``.json`` config file; a missing or unparsable file is a one-line error."""
    path = Path(path)
    text = read_text(path, "config file")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:
        raise RsvlmError(f"{path}: cannot parse config ({str(exc).splitlines()[0]})") from None
