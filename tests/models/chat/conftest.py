"""Tiny chat models in every release layout, built once per session; one torch thread (shared machine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from rsvlm.data.sample import RasterImage, Turn
from rsvlm.models.chat.protocol import ChatRequest
from tests.models.chat import tiny_chat

WRITERS: dict[str, Callable[[Path], Path]] = {
    "llava": tiny_chat.write_hf_llava,
    "llava_next": tiny_chat.write_hf_llava_next,
    "qwen2_vl": tiny_chat.write_hf_qwen2_vl,
    "geochat": tiny_chat.write_llava_repo,
}


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def chat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chat")


@pytest.fixture(scope="session")
def chat_folders(chat_root: Path) -> dict[str, Path]:
    """One tiny model folder per layout (GeoChat in its original LLaVA-repository layout)."""
    return {layout: write(chat_root / layout) for layout, write in WRITERS.items()}


def synthetic(height: int, width: int, seed: int, dtype: type = np.uint8, bands: int = 3) -> RasterImage:
    rng = np.random.default_rng(seed)
    scale = 255 if dtype == np.uint8 else 4000
    data: npt.NDArray[Any] = (rng.random((bands, height, width)) * scale).astype(dtype)
    names = ("red", "green", "blue", "nir", "swir")[:bands]
    return RasterImage(data, names)


@pytest.fixture(scope="session")
def requests_mixed() -> list[ChatRequest]:
    """Requests of different prompt lengths, image sizes and dtypes, one multi-turn, one text-only."""
    return [
        ChatRequest.ask(synthetic(60, 60, 0), "What is in this image?"),
        ChatRequest.ask(synthetic(80, 40, 1), "Describe the scene in detail."),
        ChatRequest.ask(synthetic(60, 60, 2, np.uint16, bands=4), "How many storage tanks are there?"),
        ChatRequest(
            images=(synthetic(50, 70, 3),),
            turns=(Turn("human", "What is it?"), Turn("gpt", "an airport"), Turn("human", "How many runways?")),
        ),
        ChatRequest.ask(synthetic(60, 60, 4), "What is in this image?"),
        ChatRequest.ask(None, "Describe a harbour."),
    ]
