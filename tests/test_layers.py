"""The layer contract (``[tool.importlinter]`` in pyproject.toml) holds on the real tree and catches an upward import.

The upward case runs ``lint-imports`` on a copy of the package with one import planted in a low module, the
way the real regressions looked (a function-local import from ``models`` or ``data`` up into ``geo``), so the
test fails if the contract stops seeing such imports or stops covering a layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_real_tree_keeps_the_layer_contract() -> None:
    result = _lint(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


PLANTED = {
    # a function-local import, invisible to a top-of-file grep: data (bottom) reaching up into geo
    "function-local": (
        "rsvlm/data/bands.py",
        "\n\ndef _planted() -> object:\n    from rsvlm.geo import tiling\n\n    return tiling\n",
        "rsvlm.data.bands -> rsvlm.geo.tiling",
    ),
    # a typing-only import still ties the layers together: models reaching up into tasks
    "type-checking": (
        "rsvlm/models/protocols.py",
        "\n\nif TYPE_CHECKING:\n    from rsvlm.tasks import metrics\n",
        "rsvlm.models.protocols -> rsvlm.tasks.metrics",
    ),
    # the core layer may not import anything above it
    "core": (
        "rsvlm/fileio.py",
        "\n\ndef _planted() -> object:\n    from rsvlm.data import names\n\n    return names\n",
        "rsvlm.fileio -> rsvlm.data.names",
    ),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_an_upward_import_breaks_the_contract(tmp_path: Path, case: str) -> None:
    module, planted, reported = PLANTED[case]
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "rsvlm", src / "rsvlm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (src / module).open("a", encoding="utf-8") as f:
        f.write(planted)
    result = _lint(tmp_path, src)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and reported in result.stdout, result.stdout


def test_the_version_low_modules_record_is_the_packages() -> None:
    """Low layers read the version from ``rsvlm.version`` (importing the package root would pull in the API)."""
    from importlib.metadata import version

    import rsvlm
    import rsvlm.version

    assert rsvlm.version.__version__ == rsvlm.__version__ == version("rsvlm")
