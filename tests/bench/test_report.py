"""Leaderboards and the HTML report of a fake run folder holding a result of every task kind."""

from __future__ import annotations

import base64
import csv
import io
import json
import random
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from rsvlm.bench import plots
from rsvlm.bench.leaderboard import board_of, collect, write_leaderboards
from rsvlm.bench.report import write_report
from tests.bench.chromium import console_messages, screenshot
from tests.conftest import SHARED_DATA

MODELS = ["rsvlm-lite", "other-clip", "rsvlm-lite-chat"]
CLASSES = [f"class {i:02d} {'long name ' * (i % 3)}".strip() for i in range(30)]
ANCHOR_SOURCE = "Liu et al. 2024, RemoteCLIP, Table 3 (https://arxiv.org/abs/2306.11029)"


def _images(root: Path) -> list[Path]:
    """Six real AID images when the shared data is here, else six written with Pillow."""
    aid = SHARED_DATA / "aid"
    found = sorted((aid / "Airport").glob("*.jpg"))[:3] + sorted((aid / "Beach").glob("*.jpg"))[:3]
    if len(found) == 6:
        return [p.resolve() for p in found]
    rng = random.Random(0)
    made = []
    for i in range(6):
        path = root / "images" / f"scene_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (600, 400), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(path)
        made.append(path)
    return made


def _result(
    task: str, kind: str, model: str, metrics: dict[str, float], details: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    family = "chat" if model.endswith("chat") else "embeddings" if model == "published" else "contrastive"
    return {
        "task": task,
        "kind": kind,
        "model": model,
        "family": family,
        "seconds": 1.25,
        "samples": 40,
        "metrics": metrics,
        "copy_free": extra.get("copy_free"),
        "seen_in_training": extra.get("seen", {"status": "clean", "reason": "AID is not in its training data"}),
        "anchors": extra.get("anchors", []),
        "details": details,
    }


def _confusion(n: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(15, 20) if i == j else rng.randrange(0, 3) for j in range(n)] for i in range(n)]


def _per_class(confusion: list[list[int]], names: list[str]) -> dict[str, float | None]:
    return {
        n: 100.0 * row[i] / sum(row) if sum(row) else None
        for i, (n, row) in enumerate(zip(names, confusion, strict=True))
    }


def build_run(root: Path) -> Path:
    run = root / "run"
    images = _images(root)
    missing = str(root / "gone" / "vanished_scene.jpg")
    tasks = ["aid-zeroshot", "aid-probe", "rsicd-retrieval", "rsicd-caption", "rsvqa-lr", "trees-count", "dior-rsvg"]
    tasks += ["golden-aid", "aid-chat"]
    (run / "results").mkdir(parents=True)
    (run / "run.json").write_text(
        json.dumps(
            {
                "suite": "smoke",
                "suite_version": 1,
                "models": MODELS,
                "started": "2025-11-28T00:00:00+00:00",
                "finished": None,
                "environment": {
                    "python": "3.11.9",
                    "torch": "2.14.1",
                    "rsvlm": "0.1.0",
                    "platform": "Linux",
                    "cpus": 2,
                },
                "seeds": {"linear_probe": [1, 2, 3]},
                "data": {
                    t: {"manifest": f"{t}.json", "digest": "ab" * 32, "files": 40, "verified": True} for t in tasks
                },
            }
        )
    )
    conf_a, conf_b = _confusion(30, 1), _confusion(30, 2)
    small = [[8, 2, 0], [1, 9, 0], [0, 0, 10]]
    anchor = {
        "metric": "top1",
        "value": 95.1,
        "source": ANCHOR_SOURCE,
        "protocol_difference": "we use 10 prompt templates, the paper uses 1",
    }
    seen = {"status": "seen", "reason": "AID is listed in the model's training data"}
    retrieval_examples = [
        {
            "query": "many planes parked near a terminal",
            "top": [str(p) for p in images[:4]] + [missing],
            "correct": [True, False, False, False, False],
        },
        {"query": "a beach & the <sea>", "top": [str(p) for p in images[3:6]], "correct": [False, True, False]},
    ]
    img = [str(p) for p in images]
    captions = [
        {
            "image": img[0],
            "prediction": "<script>alert(1)</script> planes",
            "references": ["an airport", "planes & runway"],
        },
        {"image": missing, "prediction": "sand", "references": ["a beach"]},
    ]
    questions = [
        {"image": img[1], "question": "Is there a road?", "answer": "yes", "prediction": "no", "correct": False},
        {"image": missing, "question": "Are there houses?", "answer": "no", "prediction": "no", "correct": True},
    ]
    boxes = [
        {
            "image": img[2],
            "expression": "the plane on the left",
            "truth": [10, 20, 120, 90],
            "prediction": [15, 25, 130, 100],
            "iou": 0.71,
        },
        {"image": img[4], "expression": "the pier", "truth": [50, 50, 200, 150], "prediction": None, "iou": None},
        {
            "image": missing,
            "expression": "the ship",
            "truth": [5, 5, 40, 40],
            "prediction": [30, 30, 90, 90],
            "iou": 0.05,
        },
    ]
    golden_anchor = {"metric": "top1", "value": 90.2, "source": "GeoRSCLIP paper, Table 5", "protocol_difference": ""}
    abc = ["a", "b", "c"]
    results = [
        _result(
            "aid-zeroshot", "zeroshot", "rsvlm-lite", {"top1": 93.94, "top5": 99.1},
            {"class_names": CLASSES, "confusion": conf_a, "per_class": _per_class(conf_a, CLASSES)},
            copy_free={"samples": 30, "metrics": {"top1": 91.23}}, seen=seen, anchors=[anchor],
        ),
        _result(
            "aid-zeroshot", "zeroshot", "other-clip", {"top1": 88.4, "top5": 97.0},
            {"class_names": CLASSES, "confusion": conf_b, "per_class": _per_class(conf_b, CLASSES)},
            seen={"status": "not declared", "reason": "no training data card"},
        ),
        _result(
            "aid-probe", "linear-probe", "rsvlm-lite", {"top1": 96.5, "top1_std": 0.3},
            {"class_names": abc, "confusion": small, "per_class": _per_class(small, abc)},
        ),
        _result(
            "rsicd-retrieval", "retrieval", "rsvlm-lite",
            {"i2t_r1": 10.5, "i2t_r5": 30.0, "t2i_r1": 8.25, "t2i_r5": 25.0, "mR": 18.4},
            {"examples": retrieval_examples},
        ),
        _result(
            "rsicd-caption", "caption", "rsvlm-lite-chat", {"BLEU-4": 21.3, "CIDEr": 55.7, "METEOR": 20.0},
            {"examples": captions},
        ),
        _result(
            "rsvqa-lr", "vqa", "rsvlm-lite-chat", {"overall": 71.2, "average": 69.9, "presence": 80.0},
            {"per_type": {"presence": 80.0, "comparison": 59.8, "rural/urban": None}, "examples": questions},
        ),
        _result(
            "trees-count", "counting", "rsvlm-lite-chat", {"mae": 2.345, "exact": 12.5},
            {"pairs": [[3, 3], [10, 7], [25, None], [0, 1], [14, 20]]},
        ),
        _result(
            "dior-rsvg", "grounding", "rsvlm-lite-chat", {"acc@0.5": 42.0, "acc@0.25": 60.0, "mean_iou": 38.5},
            {"examples": boxes},
        ),
        _result(
            "golden-aid", "golden-zeroshot", "published", {"top1": 90.1}, {"published": 90.2, "reproduced": 90.1},
            anchors=[golden_anchor],
        ),
        _result(
            "aid-chat", "chat-classify", "rsvlm-lite-chat", {"accuracy": 61.0},
            {"class_names": abc, "confusion": small, "per_class": {"a": 80.0, "b": 90.0, "c": None}},
        ),
    ]  # fmt: skip
    for r in results:
        folder = run / "results" / r["model"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{r['task']}.json").write_text(json.dumps(r))
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def report(run_dir: Path) -> str:
    return write_report(run_dir).read_text(encoding="utf-8")


# -- leaderboards -------------------------------------------------------------------------------------------------
def test_collect_reads_every_result_in_run_order(run_dir: Path) -> None:
    rows = collect(run_dir)
    assert len(rows) == 10
    assert [r.task for r in rows][:3] == ["aid-zeroshot", "aid-zeroshot", "aid-probe"]
    assert [r.model for r in rows][:2] == ["rsvlm-lite", "other-clip"]
    first = rows[0]
    assert first.seen_status == "seen" and first.mark == "†"
    assert first.copy_free == {"top1": 91.23} and first.copy_free_samples == 30
    assert first.anchors[0].value == 95.1


def test_leaderboard_keeps_main_metrics_and_marks_the_best(run_dir: Path) -> None:
    board = board_of(run_dir)
    assert board.models == [*MODELS, "published"]
    keys = [(r.task, r.metric) for r in board.rows]
    assert ("aid-zeroshot", "top1") in keys and ("aid-zeroshot", "top5") not in keys
    assert [m for t, m in keys if t == "rsicd-retrieval"] == ["mR", "i2t_r1", "t2i_r1"]
    assert [m for t, m in keys if t == "trees-count"] == ["mae", "exact"]
    zeroshot = next(r for r in board.rows if r.task == "aid-zeroshot")
    assert zeroshot.cells["rsvlm-lite"].best and not zeroshot.cells["other-clip"].best
    assert zeroshot.cells["other-clip"].mark == "?"
    mae = next(r for r in board.rows if r.metric == "mae")
    assert not mae.higher_is_better


def test_markdown_csv_and_json_carry_numbers_and_flags(run_dir: Path) -> None:
    paths = write_leaderboards(run_dir)
    assert {p.name for p in paths.values()} == {"leaderboard.md", "leaderboard.csv", "leaderboard.json"}
    md = paths["md"].read_text(encoding="utf-8")
    assert "| aid-zeroshot | top1 | 93.9 † (copy-free 91.2) | 88.4 ? | — | — |" in md
    assert "| trees-count | mae ↓ | — | — | 2.35 | — |" in md
    assert "- † = seen in training" in md and "- copy-free = the same metric" in md
    assert "| aid-zeroshot | rsvlm-lite | top1 | 93.9 † | 95.1 | -1.2 | " + ANCHOR_SOURCE in md
    assert "we use 10 prompt templates, the paper uses 1" in md
    assert "rural/urban" not in md  # per-type numbers are plots, not leaderboard rows
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))
    zeroshot = next(r for r in table if r["task"] == "aid-zeroshot")
    assert float(zeroshot["rsvlm-lite"]) == 93.94 and zeroshot["rsvlm-lite mark"] == "†"
    assert zeroshot["rsvlm-lite seen_in_training"] == "seen" and float(zeroshot["rsvlm-lite copy-free"]) == 91.23
    assert zeroshot["other-clip mark"] == "?" and zeroshot["rsvlm-lite-chat"] == ""
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    cell = data["rows"][0]["cells"]["rsvlm-lite"]
    assert cell["value"] == 93.94 and cell["mark"] == "†" and cell["text"] == "93.9 † (copy-free 91.2)"
    assert data["anchors"][0]["source"] == ANCHOR_SOURCE
    assert data["anchors"][0]["delta"] == pytest.approx(93.94 - 95.1)
    assert "†" in data["legend"]


# -- the report ---------------------------------------------------------------------------------------------------
class _Structure(HTMLParser):
    """Balanced tags (void elements aside), unique ids, and every image source."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "img":
            self.sources.append(str(found.get("src")))
        if tag == "image":
            self.sources.append(str(found.get("href")))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "image":
            self.sources.append(str(found.get("href")))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def test_report_is_self_contained_valid_html(report: str) -> None:
    assert report.startswith('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    parser = _Structure()
    parser.feed(report)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert len(parser.ids) == len(set(parser.ids))
    assert "http://" not in report and "https://" not in report and "xmlns" not in report
    assert "arxiv.org/abs/2306.11029" in report  # the citation stays readable, only its scheme goes
    assert parser.sources and all(s.startswith("data:image/") for s in parser.sources)
    for source in parser.sources:
        Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
    assert "<script" not in report and "&lt;script&gt;alert(1)&lt;/script&gt; planes" in report
    assert "a beach &amp; the &lt;sea&gt;" in report


def test_report_has_header_leaderboard_anchors_and_leakage_note(report: str) -> None:
    assert "smoke (version 1)" in report and "not finished" in report
    assert "ab" * 32 in report and "2.14.1" in report
    assert '<b>93.9</b> <span title="seen">†</span> <span class="cf">(copy-free 91.2)</span>' in report
    assert "Leakage." in report and "copy-free" in report
    assert "we use 10 prompt templates, the paper uses 1" in report and "none stated" in report


@pytest.mark.parametrize("kind", ["confusion", "per-class", "vqa-types", "counting", "grounding", "golden"])
def test_report_draws_every_plot_kind(report: str, kind: str) -> None:
    assert re.search(rf'<figure class="chart" data-plot="{kind}"><svg class="plot" ', report)


def test_report_examples_use_thumbnails_and_coloured_borders(report: str) -> None:
    assert report.count('<div class="retrieval">') == 2
    assert f"border:3px solid {plots.GOOD}" in report and f"border:3px solid {plots.BAD}" in report
    assert '<div class="pair">' in report and "planes &amp; runway" in report
    assert f'stroke="{plots.GOOD}" stroke-width="2"><title>truth</title>' in report
    assert f'stroke="{plots.BAD}" stroke-width="2"><title>prediction</title>' in report
    assert "no box in the answer" in report and "IoU 0.71" in report
    thumbs = [
        (int(w), int(h))
        for w, h in re.findall(r'<img class="thumb" src="data:[^"]+" width="(\d+)" height="(\d+)"', report)
    ]
    assert thumbs and max(max(t) for t in thumbs) <= plots.THUMB_PX


def test_thumbnails_shrink_to_160_px_and_never_grow(tmp_path: Path) -> None:
    big, small = tmp_path / "big.png", tmp_path / "small.jpg"
    Image.new("RGB", (600, 400), (10, 120, 30)).save(big)
    Image.new("RGB", (90, 60), (200, 20, 30)).save(small)
    sizes = [t[1:] if t else None for t in (plots.thumbnail(big), plots.thumbnail(small))]
    assert sizes == [(160, 107, 600, 400), (90, 60, 90, 60)]
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert plots.thumbnail(tmp_path / "broken.jpg") is None
    assert "unreadable image" in plots.image_html(tmp_path / "broken.jpg")


def test_missing_image_becomes_a_placeholder(report: str) -> None:
    assert "missing image" in report and "vanished_scene.jpg" in report
    assert "missing: vanished_scene.jpg" in report  # the grounding example on a grey box


def test_malformed_details_cost_a_note_not_the_report(tmp_path: Path) -> None:
    folder = tmp_path / "results" / "m"
    folder.mkdir(parents=True)
    bad = _result("t", "zeroshot", "m", {"top1": 50.0}, {"confusion": [[1, "x"], None], "per_class": 7})
    (folder / "t.json").write_text(json.dumps(bad))
    odd = _result("u", "grounding", "m", {"acc@0.5": 1.0}, {"examples": [{"image": 3, "truth": "??"}]})
    (folder / "u.json").write_text(json.dumps(odd))
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "could not be drawn" in page and "<h2>t <span" in page and "<h2>u <span" in page


def test_confusion_of_30_classes_stays_readable() -> None:
    svg = plots.confusion_svg(CLASSES, _confusion(30, 3))
    cells = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="(\d+)" height="\d+" fill="#', svg)
    assert len(cells) == 30 * 30 + 5 and min(int(c) for c in cells[:900]) >= 14
    assert all(name.strip() in svg for name in CLASSES) and f'font-size="{plots.FONT}"' in svg


def test_nice_ticks() -> None:
    assert plots.nice_ticks(23) == [0, 5, 10, 15, 20, 25]
    assert plots.nice_ticks(1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


# -- headless Chromium ------------------------------------------------------------------------------------------------
CHROMIUM_STDERR = """/usr/bin/chromium: 9: [: 25276510208: unexpected operator
[29899:29928:1128/003132.840905:ERROR:dbus/bus.cc:405] Failed to connect to the bus: Failed to connect to socket
[29899:29899:1128/003133.621157:INFO:CONSOLE:1] "boom", source: file:///tmp/chx/err.html (1)
[29899:29899:1128/003133.621335:INFO:CONSOLE:1] "two
lines", source: file:///tmp/chx/err.html (3)
[29899:29899:1128/003133.621562:INFO:CONSOLE(7)] "Uncaught ReferenceError: f is not defined", source: file:///a.html (7)
12323 bytes written to file /tmp/chx/shot.png
"""


def test_console_messages_are_parsed_from_chromium_stderr() -> None:
    assert console_messages(CHROMIUM_STDERR) == [
        "boom (file:///tmp/chx/err.html:1)",
        "two\nlines (file:///tmp/chx/err.html:3)",
        "Uncaught ReferenceError: f is not defined (file:///a.html:7)",
    ]
    assert console_messages("[1:1:1128/0.1:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n") == []


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium not installed (Debian: apt-get install chromium)"
)


@needs_chromium
def test_report_renders_in_headless_chromium_without_console_errors(run_dir: Path, report: str, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    errors = screenshot(run_dir / "report.html", shot)
    assert errors == []
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        assert max(ImageStat.Stat(image.convert("RGB")).var) > 0


@needs_chromium
def test_console_errors_are_detected(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>x</title></head><body><p>x</p>"
        "<script>console.error('boom')</script><script>undefinedFunction()</script></body></html>"
    )
    errors = screenshot(page, tmp_path / "broken.png")
    assert (tmp_path / "broken.png").is_file()
    assert len(errors) == 2
    assert errors[0].startswith("boom (file://") and "Uncaught ReferenceError: undefinedFunction" in errors[1]
