"""Output names of ``rsvlm demo`` are unique and readable: scenes with the same file name in different folders,
non-ASCII scene names and queries each keep their own folder and files; an input or query given twice is refused.

Before the fix ``a/scene.tif`` and ``b/scene.tif`` both wrote ``out/scene/``, and ``日本.tif``/``中国.tif`` (and the
queries ``森林``/``河流``) slugged to the same ASCII-only name, so only the last of each survived.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import rasterio

from rsvlm.fileio import digest_text
from tests.clihelp import assert_one_line_error, rsvlm
from tests.geo.rasters import textured, write_geotiff

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_same_stems_and_non_ascii_names_each_keep_their_outputs(tmp_path: Path) -> None:
    inputs = {  # distinct sizes, so each folder's summary shows which scene it holds
        "a/scene.tif": (32, 64),
        "b/scene.tif": (64, 32),
        "日本.tif": (32, 96),
        "中国.tif": (96, 32),
    }
    paths = {}
    for i, (name, (h, w)) in enumerate(inputs.items()):
        paths[name] = write_geotiff(tmp_path / "in" / name, textured(3, h, w, seed=10 + i))
    out = tmp_path / "out"
    args: list[str | Path] = ["demo", "--out", out, "--no-chat", "--tile", "32", "--classes", "forest,river"]
    for path in paths.values():
        args += ["--input", path]
    result = rsvlm(*args, "-q", "森林", "-q", "河流", env=OFFLINE)
    assert result.returncode == 0, result.stderr[-3000:]

    expected = {
        "a/scene.tif": f"scene-{digest_text(str(paths['a/scene.tif'].resolve()))}",
        "b/scene.tif": f"scene-{digest_text(str(paths['b/scene.tif'].resolve()))}",
        "日本.tif": "日本",
        "中国.tif": "中国",
    }
    assert len(set(expected.values())) == 4
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(expected.values())
    for name, folder in expected.items():
        summary = json.loads((out / folder / "summary.json").read_text(encoding="utf-8"))
        h, w = inputs[name]
        assert summary["size"] == [w, h], (name, summary["size"])
        assert summary["queries"] == ["森林", "河流"]
        for query in ("森林", "河流"):  # one map per query, named readably, holding that query
            with rasterio.open(out / folder / f"query_{query}.tif") as src:
                assert src.descriptions == (query,)
            assert (out / folder / f"query_{query}.png").is_file()

    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"<h2>Scene: scene ({paths['a/scene.tif']})</h2>" in page and "<h2>Scene: 日本</h2>" in page
    assert f"<h2>Scene: scene ({paths['b/scene.tif']})</h2>" in page and "<h2>Scene: 中国</h2>" in page
    links = re.findall(r"<a href=\"([^\"]+)\"", page)
    assert {link.split("/")[0] for link in links} == set(expected.values())
    assert all((out / link).is_file() for link in links)


def test_an_input_given_twice_is_refused(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "scene.tif", textured(3, 64, 64, seed=1))
    out = tmp_path / "out"
    result = rsvlm("demo", "-i", path, "-i", tmp_path / "." / "scene.tif", "--out", out, "--no-chat", env=OFFLINE)
    assert_one_line_error(result, "given more than once", str(path.resolve()))
    assert not out.exists()


@pytest.mark.parametrize("queries", [("water", "water"), ("森林", "森林")])
def test_a_query_given_twice_is_refused(tmp_path: Path, queries: tuple[str, str]) -> None:
    path = write_geotiff(tmp_path / "scene.tif", textured(3, 64, 64, seed=1))
    out = tmp_path / "out"
    result = rsvlm("demo", "-i", path, "--out", out, "--no-chat", "-q", queries[0], "-q", queries[1], env=OFFLINE)
    assert_one_line_error(result, "given more than once", queries[0])
    assert not out.exists()
