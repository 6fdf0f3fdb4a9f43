from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.captioning import (
    CaptionTask,
    caption_metrics,
    distinct_captions,
    human_agreement,
    leave_one_out,
    spice_missing,
)

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap needs a Java runtime")

FAST = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr")


def test_toy_case_by_hand() -> None:
    """Image a: 'red car' for reference 'red car'; image b: 'blue car' for reference 'blue boat'.

    BLEU (corpus): 3 of 4 unigrams match, 1 of 2 bigrams, lengths equal: BLEU-1 = 0.75,
    BLEU-2 = sqrt(0.75 * 0.5). ROUGE-L: F = 1 for a, LCS 1 of 2 (P = R = 0.5, F = 0.5) for b; mean 0.75.
    CIDEr-D: with two images every reference n-gram has idf log 2; a matches exactly for n = 1, 2 and has no
    3-, 4-grams: 10 * (1 + 1 + 0 + 0) / 4 = 5; b shares 'blue' only: unigram cosine 1/2, so
    10 * 0.5 / 4 = 1.25; mean 3.125. Everything x100.
    """
    m = caption_metrics({"a": ["red car"], "b": ["blue boat"]}, {"a": "Red car.", "b": "blue car"})
    assert m["n"] == 2
    assert m["BLEU-1"] == pytest.approx(75.0, abs=1e-6)
    assert m["BLEU-2"] == pytest.approx(100 * (0.75 * 0.5) ** 0.5, abs=1e-6)
    assert m["ROUGE-L"] == pytest.approx(75.0)
    assert m["CIDEr"] == pytest.approx(312.5)
    assert 0 < m["METEOR"] < 100
    perfect = caption_metrics({"a": ["red car"], "b": ["blue boat"]}, {"a": "red car", "b": "blue boat"}, ("METEOR",))
    assert perfect["METEOR"] > m["METEOR"]
    if spice_missing() is not None:
        assert m["SPICE"] is None
        assert m["notes"] == [spice_missing()]
        assert m["notes"][0].startswith("SPICE skipped:")


def test_empty_prediction_keeps_alignment() -> None:
    m = caption_metrics({"a": ["red car"], "b": ["blue boat"]}, {"a": "", "b": "blue boat"}, FAST)
    assert m["ROUGE-L"] == pytest.approx(50.0)  # a scores 0, b scores 1


def test_leave_one_out_structure() -> None:
    refs = {"x": ["one", "two", "three"], "y": ["a", "b", "c"]}
    others, held = leave_one_out(refs, 1)
    assert held == {"x": "two", "y": "b"}
    assert others == {"x": ["one", "three"], "y": ["a", "c"]}
    with pytest.raises(RsvlmError, match="fewer than 4 captions"):
        leave_one_out(refs, 3)
    assert distinct_captions({"x": ["A cat.", "a cat", "a dog ."]}) == {"x": ["A cat.", "a dog ."]}


def test_input_errors() -> None:
    with pytest.raises(RsvlmError, match="different image ids"):
        caption_metrics({"a": ["x"]}, {"b": "x"})
    with pytest.raises(RsvlmError, match="unknown caption metric 'BLEU-5'"):
        caption_metrics({"a": ["x"]}, {"a": "x"}, ("BLEU-5",))
    with pytest.raises(RsvlmError, match="image a has no reference caption"):
        caption_metrics({"a": []}, {"a": "x"})


def test_task() -> None:
    task = CaptionTask()
    samples = [Sample(id="a", captions=("red car",)), Sample(id="b", captions=("blue boat",))]
    assert task.accepts(samples[0]) and not task.accepts(Sample(id="c"))
    assert task.prompt(samples[0], "llava") == "Provide a one-sentence caption for the provided image."
    m = task.score(samples, ["red car", "blue car"], "pixel")
    assert m["CIDEr"] == pytest.approx(312.5)
    with pytest.raises(RsvlmError, match="unique ids"):
        task.score([samples[0], samples[0]], ["x", "y"], "pixel")


@pytest.mark.shared
def test_rsicd_test_human_agreement(shared_data: Path) -> None:
    """Caption 0 of each AID-matched RSICD test image against its other four (1,027 images)."""
    from rsvlm.data.registry import open_dataset

    records = open_dataset(shared_data / "rsicd", images=shared_data / "aid", split="test").records
    refs = {s.id: list(s.captions) for s in records}
    assert len(refs) == 1027
    m = human_agreement(refs, held_out=0, metrics=FAST)
    assert m["BLEU-1"] == pytest.approx(94.1862, abs=1e-3)
    assert m["BLEU-4"] == pytest.approx(89.6577, abs=1e-3)
    assert m["ROUGE-L"] == pytest.approx(91.8156, abs=1e-3)
    assert m["CIDEr"] == pytest.approx(366.5776, abs=1e-3)
    # RSICD repeats captions: caption 0 has a verbatim copy among the other four for 883 of 1,027 images
    assert m["duplicate_share"] == pytest.approx(100 * 883 / 1027)
    d = human_agreement(refs, held_out=0, metrics=FAST, distinct=True)
    assert (d["n"], d["dropped"], d["duplicate_share"]) == (1025, 2, 0.0)
    assert d["BLEU-4"] == pytest.approx(12.0249, abs=1e-3)
    assert d["CIDEr"] == pytest.approx(53.4588, abs=1e-3)
