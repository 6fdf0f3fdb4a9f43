"""Issue 18: user files and options that used to end in a traceback now end in one line naming the thing.

Every case runs the real ``rsvlm`` command in a subprocess. The bad file or option is the only fault in
each command line, and each fails before any model loads (so these stay quick).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clihelp import assert_one_line_error, rsvlm

NOT_UTF8 = b"caf\xe9 {}\n\xff\xfe\n"  # Latin-1 text, as a Windows editor saves it


@pytest.fixture()
def bad(tmp_path: Path) -> dict[str, Path]:
    """Non-UTF-8 files with the suffixes each command expects, and a directory."""
    names = {"suite": "suite.yaml", "yaml": "config.yaml", "json": "config.json", "list": "list.txt", "proto": "p.yaml"}
    files = {key: tmp_path / name for key, name in names.items()}
    for path in files.values():
        path.write_bytes(NOT_UTF8)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    return {**files, "folder": folder}


NON_UTF8_CASES = {
    "suite": ("bench", "{suite}"),
    "contrastive config": ("train", "contrastive", "--config", "{yaml}"),
    "chat config": ("train", "chat", "--config", "{json}"),
    "instruction config": ("data", "instructions", "--config", "{yaml}", "--out", "{tmp}/out"),
    "templates": ("eval", "zeroshot", "--data", "{fx}/scene_folder", "--templates", "{list}"),
    "class names": ("eval", "zeroshot", "--data", "{fx}/scene_folder", "--class-names", "{list}"),
    "subset": ("eval", "vqa", "--data", "{fx}/rsvqa", "--subset", "{list}"),
    "protocol": ("eval", "vqa", "--data", "{fx}/rsvqa", "-o", "protocol={proto}"),
}


def _args(template: tuple[str, ...], files: dict[str, Path], fixtures: Path, tmp: Path) -> list[str]:
    values = {**{k: str(v) for k, v in files.items()}, "fx": str(fixtures), "tmp": str(tmp)}
    return [part.format(**values) for part in template]


@pytest.mark.parametrize("case", list(NON_UTF8_CASES))
def test_non_utf8_file_is_one_line(
    case: str, bad: dict[str, Path], fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _args(NON_UTF8_CASES[case], bad, fixtures, tmp_path)
    named = next(a.removeprefix("protocol=") for a in args if a.removeprefix("protocol=").startswith(str(tmp_path)))
    line = assert_one_line_error(rsvlm(*args, cwd=tmp_path), named, "not UTF-8", "line 1", "save it as UTF-8")
    assert "Traceback" not in line


@pytest.mark.parametrize(
    ("case", "option"),
    [
        ("templates", "--templates"),
        ("class names", "--class-names"),
        ("subset", "--subset"),
        ("contrastive config", "--config"),
        ("suite", None),
    ],
)
def test_directory_where_a_file_belongs(
    case: str, option: str | None, bad: dict[str, Path], fixtures: Path, tmp_path: Path
) -> None:
    args = _args(NON_UTF8_CASES[case], bad, fixtures, tmp_path)
    if option is None:
        args[-1] = str(bad["folder"])
    else:
        args[args.index(option) + 1] = str(bad["folder"])
    assert_one_line_error(rsvlm(*args, cwd=tmp_path), str(bad["folder"]), "is a directory")


def test_template_with_two_placeholders_names_file_and_line(fixtures: Path, tmp_path: Path) -> None:
    templates = tmp_path / "mine.txt"
    templates.write_text("# my prompts\na satellite photo of a {}.\nthe {0} next to the {1}.\n", encoding="utf-8")
    result = rsvlm("eval", "zeroshot", "--data", fixtures / "scene_folder", "--templates", templates)
    assert_one_line_error(result, str(templates), "line 3", "{0}, {1}", "exactly one {}")


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--shots", "0", "shots must be at least 1"),
        ("--shots", "-3", "shots must be at least 1"),
        ("--seeds", "a,b", "seeds 'a,b': expected comma-separated whole numbers"),
        ("--seeds", ",", "at least one seed"),
        ("--seeds", "1,1", "seed 1 is given twice"),
        ("--seeds", "-1", "seed -1 is out of range"),
        ("--C", "0", "must be a positive number"),
        ("--test-fraction", "1", "--test-fraction must lie strictly between 0 and 1"),
        ("--test-fraction", "nan", "--test-fraction must lie strictly between 0 and 1"),
    ],
)
def test_linear_probe_settings_fail_before_work(fixtures: Path, option: str, value: str, fragment: str) -> None:
    result = rsvlm("eval", "linear-probe", "--data", fixtures / "scene_folder", f"{option}={value}")
    assert_one_line_error(result, fragment)
    assert "[rsvlm eval]" not in result.stderr  # refused before the dataset was even announced


def test_zeroshot_does_not_suggest_an_option_it_lacks(tmp_path: Path) -> None:
    result = rsvlm("eval", "zeroshot", "--data", tmp_path)
    line = assert_one_line_error(result, str(tmp_path), "not a dataset rsvlm recognises", "rsvlm data formats")
    assert "--format" not in line
    for command in ("retrieval", "linear-probe"):
        assert "--format" not in rsvlm("eval", command, "--data", tmp_path).stderr
    # commands that do take --format still point at it
    assert_one_line_error(rsvlm("eval", "vqa", "--data", tmp_path), "--format")


def test_retrieval_scores_the_test_split_by_default(fixtures: Path, tmp_path: Path) -> None:
    """The fixture RSICD has 2 test and 2 train images with captions: only the test ones are scored."""
    data: list[str | Path] = ["--data", fixtures / "rsicd", "--images", fixtures / "rsicd_images"]
    data += ["--cache-dir", tmp_path / "cache"]
    result = rsvlm("eval", "retrieval", *data, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["split"], report["n_images"], report["n_texts"]) == ("test", 2, 10)
    assert "split test (the default where the data has one; the data also has train" in result.stderr
    assert "2 images, 10 captions" in result.stderr


def test_split_all_still_scores_every_split(fixtures: Path) -> None:
    """``--split all`` is announced as all splits together, with the count of both (4 images)."""
    data: list[str | Path] = ["--data", fixtures / "rsicd", "--images", fixtures / "rsicd_images"]
    result = rsvlm("eval", "retrieval", *data, "--split", "all", "--model", "no-such-model")
    assert "all splits together (test, train): 4 images, 20 captions" in result.stderr
    assert_one_line_error(result, "no-such-model")  # the model fails only after the split was announced


@pytest.mark.parametrize("command", ["retrieval", "caption"])
def test_rsicd_is_scored_on_its_test_split(shared_data: Path, command: str) -> None:
    """Real RSICD: no more train+test together (10,000 images; mR 21.33 and ~1.5 h of captioning)."""
    data: list[str | Path] = ["--data", shared_data / "rsicd", "--images", shared_data / "aid"]
    result = rsvlm("eval", command, *data, "--model", "no-such-model")
    note = next(line for line in result.stderr.splitlines() if line.startswith("[rsvlm eval]"))
    assert "split test (the default where the data has one; the data also has train" in note
    assert ("1,027 images, 5,135 captions" if command == "retrieval" else "1,027 caption samples") in note
    assert_one_line_error(result, "no-such-model")


def test_chat_eval_defaults_to_test_split_and_says_so(fixtures: Path, tmp_path: Path) -> None:
    from tests.models.chat.tiny_chat import write_hf_llava  # imports torch: only here

    model = write_hf_llava(tmp_path / "llava")
    args: list[str | Path] = ["eval", "caption", "--data", fixtures / "rsicd", "--images", fixtures / "rsicd_images"]
    result = rsvlm(*args, "--model", model, "--max-new-tokens", "2", "--limit", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["data"]["splits"] == ["test"] and report["n"] == 1
    assert "split test" in result.stderr and "1 of 2 (--limit) caption samples" in result.stderr
    assert Path(report["output"]).name.endswith("-test")  # the default run folder names the split
