"""Hostile or broken annotations through ``rsvlm data info`` and ``open_dataset``: reported or refused, never
silently dropped, miscounted or read from outside the dataset (issue 18)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rsvlm.data.names import load_name_map
from rsvlm.data.registry import open_dataset
from rsvlm.errors import AnnotationError, DataError
from tests.clihelp import assert_one_line_error, rsvlm


def _info(*args: str | Path) -> dict[str, Any]:
    result = rsvlm("data", "info", *args, "--json")
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _unmatched(summary: dict[str, Any], reason: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [u for u in summary["unmatched"] if u["reason"] == reason]
    assert len(found) == 1, summary["unmatched"]
    return found[0]


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# --- RSVQA -------------------------------------------------------------------------------------------


def _rsvqa_copy(fixtures: Path, tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    root = tmp_path / "rsvqa"
    shutil.copytree(fixtures / "rsvqa", root)
    questions = json.loads((root / "LR_questions.json").read_text())
    answers = json.loads((root / "LR_answers.json").read_text())
    return root, questions, answers


def _save(root: Path, questions: dict[str, Any], answers: dict[str, Any]) -> None:
    (root / "LR_questions.json").write_text(json.dumps(questions))
    (root / "LR_answers.json").write_text(json.dumps(answers))


def test_rsvqa_duplicate_question_id_is_reported_and_the_first_kept(fixtures: Path, tmp_path: Path) -> None:
    root, questions, answers = _rsvqa_copy(fixtures, tmp_path)
    original = questions["questions"][2]["question"]
    questions["questions"].append({**questions["questions"][2], "question": "A second question with id 2?"})
    _save(root, questions, answers)
    summary = _info(root)
    assert summary["samples"] == 7  # as many as without the repeat: the first row with id 2 is the one used
    dup = _unmatched(summary, "question id repeated in LR_questions.json (the first is used)")
    assert dup["examples"] == ["questions[12] (id 2)"] and dup["annotations"] == 1
    record = next(r for r in open_dataset(root).records if r.meta["question_id"] == 2)
    assert record.question == original


def test_rsvqa_duplicate_answer_and_image_ids_are_reported(fixtures: Path, tmp_path: Path) -> None:
    root, questions, answers = _rsvqa_copy(fixtures, tmp_path)
    answers["answers"].append({**answers["answers"][3], "answer": "a different reference"})
    _save(root, questions, answers)
    images = json.loads((root / "LR_images.json").read_text())
    images["images"].append(images["images"][0])
    (root / "LR_images.json").write_text(json.dumps(images))
    summary = _info(root)
    assert _unmatched(summary, "answer id repeated in LR_answers.json (the first is used)")["examples"] == [
        "answers[12] (id 3)"
    ]
    assert _unmatched(summary, "image id repeated in LR_images.json (the first is used)")["examples"] == [
        "images[3] (id 0)"
    ]
    assert next(r for r in open_dataset(root).records if r.meta["question_id"] == 3).answer == "rural"


@pytest.mark.parametrize("bad", [None, {"text": "yes"}, ["yes"], "  ", True])
def test_rsvqa_answer_that_is_not_text_is_reported_never_none(fixtures: Path, tmp_path: Path, bad: Any) -> None:
    root, questions, answers = _rsvqa_copy(fixtures, tmp_path)
    answers["answers"][0]["answer"] = bad
    answers["answers"][5]["answer"] = 4  # an integer count is a valid reference: "4"
    _save(root, questions, answers)
    summary = _info(root)
    assert summary["samples"] == 6
    bad_answer = _unmatched(summary, "answer is null, blank or not text")
    assert bad_answer["examples"] == ["question 0"] and bad_answer["annotations"] == 1
    records = open_dataset(root).records
    assert all(isinstance(r.answer, str) and r.answer.strip() and r.answer != "None" for r in records)
    assert next(r for r in records if r.meta["question_id"] == 5).answer == "4"


@pytest.mark.parametrize("ids", [[[1]], "1", [1.5], {"a": 1}])
def test_rsvqa_malformed_answers_ids_is_one_line_error(fixtures: Path, tmp_path: Path, ids: Any) -> None:
    root, questions, answers = _rsvqa_copy(fixtures, tmp_path)
    questions["questions"][2]["answers_ids"] = ids
    _save(root, questions, answers)
    result = rsvlm("data", "info", root, "--json")
    assert_one_line_error(result, "LR_questions.json", "question 2 has answers_ids", json.dumps(ids), "integer")


def test_rsvqa_table_that_is_a_directory_is_one_line_error(fixtures: Path, tmp_path: Path) -> None:
    root, _, _ = _rsvqa_copy(fixtures, tmp_path)
    (root / "LR_answers.json").unlink()
    (root / "LR_answers.json").mkdir()
    result = rsvlm("data", "info", root, "--format", "rsvqa", "--json")
    assert_one_line_error(result, "LR_answers.json: is a directory, expected a JSON file")


# --- paths outside the dataset ----------------------------------------------------------------------


def _voc_xml(path: Path, filename: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"<annotation><filename>{filename}</filename><object><name>Tree</name><bndbox><xmin>0</xmin>"
        "<ymin>0</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>"
    )


def test_voc_filename_outside_the_folder_is_not_read(tmp_path: Path) -> None:
    secret = _png(tmp_path / "secret.png", 1)
    root = tmp_path / "voc"
    _voc_xml(root / "climb.xml", "../secret.png")
    _voc_xml(root / "absolute.xml", str(secret))
    _voc_xml(root / "tile.xml", "../secret.png")  # an image of its own name exists: used, with a note
    own = _png(root / "tile.png", 2)
    summary = _info(root)
    outside = _unmatched(summary, "image path outside the dataset folder (absolute or '..')")
    assert sorted(outside["examples"]) == sorted(["../secret.png", str(secret)])
    assert summary["samples"] == 1 and summary["images"] == 1
    assert any("tile.xml: names ../secret.png, outside the dataset folder" in n for n in summary["notes"])
    assert [r.image_path for r in open_dataset(root).records] == [own]


def _llava_with_paths_outside(tmp_path: Path, base: str) -> tuple[Path, Path]:
    """data/instruct.json naming two images under data/imgs and three outside (climbing and absolute).

    Paths are written relative to ``data/<base>``; returns the JSON file and the secret image outside.
    """
    secret = _png(tmp_path / "secret.png", 1)
    _png(tmp_path / "data" / "imgs" / "a.png", 2)
    _png(tmp_path / "data" / "imgs" / "sub" / "b.png", 3)
    inner = "" if base == "imgs" else "imgs/"
    climb = "../" * len(Path("data", base).parts) + "secret.png"
    turns = [{"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "A field."}]
    images: dict[str, str | list[str]] = {
        "good": f"{inner}a.png",
        "nested": f"{inner}sub/../sub/b.png",
        "climb": climb,
        "absolute": str(secret),
        "second": [f"{inner}a.png", climb],
    }
    path = tmp_path / "data" / "instruct.json"
    path.write_text(json.dumps([{"id": k, "image": v, "conversations": turns} for k, v in images.items()]))
    return path, secret


def test_llava_image_paths_must_stay_under_the_images_root(tmp_path: Path) -> None:
    path, secret = _llava_with_paths_outside(tmp_path, "imgs")
    images = path.parent / "imgs"
    summary = _info(path, "--images", images)
    outside = _unmatched(summary, "image path outside the --images folder")
    assert sorted(outside["examples"]) == sorted(["../../secret.png", str(secret), "../../secret.png"])
    assert outside["items"] == 3 and outside["annotations"] == 6
    assert summary["samples"] == 2 and summary["images"] == 2
    paths = {r.id: r.image_path for r in open_dataset(path, images=images).records}
    assert paths == {"good": images / "a.png", "nested": images / "sub" / "b.png"}


def test_llava_paths_leaving_the_json_folder_are_reported(tmp_path: Path) -> None:
    """Without --images, paths are relative to the JSON (as `rsvlm data instructions` writes them): a note."""
    path, secret = _llava_with_paths_outside(tmp_path, ".")
    summary = _info(path)
    assert summary["unmatched"] == [] and summary["samples"] == 5
    note = next(n for n in summary["notes"] if "outside" in n)
    assert note.startswith(f"instruct.json: 3 image paths lead outside {path.parent}") and "../secret.png" in note
    assert {r.id: r.image_path for r in open_dataset(path).records}["absolute"] == secret


def test_llava_image_that_is_not_a_path_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "instruct.json"
    turns = [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A."}]
    path.write_text(json.dumps([{"id": "x", "image": {"path": "a.png"}, "conversations": turns}]))
    assert_one_line_error(rsvlm("data", "info", path, "--json"), "instruct.json", "record 0", '"image"')


# --- blank captions -----------------------------------------------------------------------------------


def test_blank_rsicd_caption_lines_are_reported_not_counted(tmp_path: Path) -> None:
    root = tmp_path / "rsicd"
    for name in ("a.png", "b.png", "c.png"):
        _png(root / "images" / name)
    (root / "train_filename.txt").write_text("a.png\nb.png\n")
    (root / "train_caps.txt").write_text("a one\na two\n\na four\na five\nb one\nb two\n   \nb four\nb five\n")
    (root / "test_filename.txt").write_text("c.png\nc.png\na.png\n")
    (root / "test_caps.txt").write_text("\n \nanother caption of a\n")
    summary = _info(root)
    assert summary["splits"]["train"]["captions"] == 8 and summary["splits"]["train"]["samples"] == 2
    assert summary["splits"]["test"]["captions"] == 1 and summary["splits"]["test"]["samples"] == 1
    blank = [u for u in summary["unmatched"] if u["reason"] == "blank caption line"]
    assert {u["split"]: u["examples"] for u in blank} == {
        "train": ["train_caps.txt line 3", "train_caps.txt line 8"],
        "test": ["test_caps.txt line 1", "test_caps.txt line 2"],
    }
    assert all(u["annotations"] == 0 for u in blank)
    all_blank = _unmatched(summary, "every caption line of the image is blank")
    assert all_blank["split"] == "test" and all_blank["examples"] == ["c.png"]
    train = {r.id: r.captions for r in open_dataset(root, split="train").records}
    assert train == {"a": ("a one", "a two", "a four", "a five"), "b": ("b one", "b two", "b four", "b five")}


def test_blank_caption_json_sentences_are_reported_not_counted(tmp_path: Path) -> None:
    root = tmp_path / "caps"
    _png(root / "images" / "a.png")
    _png(root / "images" / "b.png")
    entries = [
        {
            "filename": "a.png",
            "split": "train",
            "sentences": [{"raw": "a field ."}, {"raw": ""}, {"raw": "  ", "tokens": ["from", "tokens"]}],
        },
        {"filename": "b.png", "split": "train", "sentences": [{"raw": " "}, {"tokens": []}]},
    ]
    (root / "dataset_x.json").write_text(json.dumps({"images": entries}))
    summary = _info(root)
    assert summary["samples"] == 1 and summary["splits"]["train"]["captions"] == 2
    blank = _unmatched(summary, "blank caption")
    assert blank["examples"] == [
        "images[0].sentences[1] (a.png)",
        "images[1].sentences[0] (b.png)",
        "images[1].sentences[1] (b.png)",
    ]
    assert _unmatched(summary, "every caption of the image is blank")["examples"] == ["b.png"]
    assert open_dataset(root).records[0].captions == ("a field .", "from tokens")


# --- misaligned, empty and non-UTF-8 caption files ---------------------------------------------------------


def _rsicd_copy(fixtures: Path, tmp_path: Path) -> Path:
    root = tmp_path / "rsicd"
    shutil.copytree(fixtures / "rsicd", root)
    shutil.copytree(fixtures / "rsicd_images", root / "images")
    return root


@pytest.mark.parametrize("split", ["test", "train"])
def test_empty_captions_file_is_named_as_the_empty_one(fixtures: Path, tmp_path: Path, split: str) -> None:
    root = _rsicd_copy(fixtures, tmp_path)
    (root / f"{split}_caps.txt").write_text("")
    line = assert_one_line_error(rsvlm("data", "info", root, "--json"), f"{split}_caps.txt: holds no captions")
    assert f"{split}_filename.txt:" not in line


def test_short_captions_file_is_named_as_the_short_one(fixtures: Path, tmp_path: Path) -> None:
    root = _rsicd_copy(fixtures, tmp_path)
    (root / "test_caps.txt").write_text("one\ntwo\n")
    assert_one_line_error(
        rsvlm("data", "info", root, "--json"), "test_caps.txt: has only 2 caption lines for the 15 names"
    )


def test_non_utf8_captions_file_is_one_line_error(fixtures: Path, tmp_path: Path) -> None:
    root = _rsicd_copy(fixtures, tmp_path)
    (root / "test_caps.txt").write_bytes("first line\nun caf\u00e9 au bord\n".encode("latin-1"))
    assert_one_line_error(rsvlm("data", "info", root, "--json"), "test_caps.txt", "not UTF-8", "line 2")


# --- readable class names --------------------------------------------------------------------------------


def test_two_classes_with_one_readable_name_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "scenes"
    for k, cls in enumerate(("BareLand", "bare_land", "Forest")):
        _png(root / cls / f"{k}.png", k)
    assert_one_line_error(
        rsvlm("data", "info", root, "--json"),
        str(root),
        "classes 'BareLand' and 'bare_land' both read as 'bare land'",
        "class-name file",
        "--class-names",
    )
    renamed = {"BareLand": "bare land", "bare_land": "barren ground"}
    assert open_dataset(root, class_names=renamed).class_names["bare_land"] == "barren ground"


def test_a_name_map_giving_two_classes_one_name_is_refused(fixtures: Path) -> None:
    with pytest.raises(DataError, match="classes 'Forest' and 'River' both read as 'Woods'") as err:
        open_dataset(fixtures / "scene_split", class_names={"Forest": "woods", "River": "Woods"})
    assert "--class-names" in str(err.value)


def test_class_name_file_problems_are_one_line_errors(fixtures: Path, tmp_path: Path) -> None:
    data = fixtures / "scene_folder"
    assert_one_line_error(
        rsvlm("eval", "zeroshot", "--data", data, "--class-names", tmp_path),
        str(tmp_path),
        "is a directory, expected a class-name file",
    )
    latin = tmp_path / "names.txt"
    latin.write_bytes("Airport=a\u00e9roport\n".encode("latin-1"))
    assert_one_line_error(
        rsvlm("eval", "zeroshot", "--data", data, "--class-names", latin), "names.txt", "not UTF-8", "line 1"
    )
    twice = tmp_path / "twice.txt"
    twice.write_text("Airport=airport\nAirport=airfield\n")
    with pytest.raises(AnnotationError, match="line 2 names class 'Airport' a second time"):
        load_name_map(twice)
    empty = tmp_path / "empty.json"
    empty.write_text('{"Airport": " "}')
    with pytest.raises(AnnotationError, match="non-empty readable name"):
        load_name_map(empty)
