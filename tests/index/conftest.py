"""What the index tests share: folders of the shipped sample photos."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rsvlm import samples


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[tuple[str, ...]], Path]:
    """Copies of the named sample photos (``beach`` → ``beach.jpg``) in a new folder."""

    def make(names: tuple[str, ...]) -> Path:
        folder = tmp_path_factory.mktemp("photos")
        for name in names:
            shutil.copy(samples.path(name), folder / f"{name}.jpg")
        return folder

    return make
