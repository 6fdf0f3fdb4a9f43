"""Shared fixtures: the seeded fake-data tree, and the real data in ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.make_fixtures import build

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny fixture tree of tests/fixtures/make_fixtures.py, built once per session."""
    return build(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; tests that need it skip with a clear message when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA.resolve()} (set RSVLM_SHARED_DATA to run these tests)")
    return SHARED_DATA.resolve()
