"""An index works with any contrastive model: tiny checkpoints of every open_clip family in its real release layout,
rsvlm-lite, and rsvlm-lite with a few-shot adapter; an index is never queried with another model's space."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rsvlm import samples
from rsvlm.errors import RsvlmError
from rsvlm.models.registry import MODELS, get_spec
from tests.models.tiny import source_model, tiny_spec, write_checkpoint

PHOTOS = ("beach", "farmland", "port", "residential")


def _one_per_tower() -> list[str]:
    seen: dict[tuple[str, bool], str] = {}
    for spec in MODELS.values():
        if spec.loader == "open_clip":
            seen.setdefault((spec.family, spec.arch.startswith("RN")), spec.name)
    return list(seen.values())


FAMILIES = [*_one_per_tower(), "rsvlm-lite"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos(photo_folder: Callable[[tuple[str, ...]], Path]) -> Path:
    return photo_folder(PHOTOS)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each family's model loaded from a tiny checkpoint in its release layout (rsvlm-lite: its packaged weights)."""
    import dataclasses
    import json

    from rsvlm.models.openclip import load_contrastive

    root = tmp_path_factory.mktemp("zoo")
    out: dict[str, Any] = {"rsvlm-lite": load_contrastive("rsvlm-lite", None)}
    for name in FAMILIES[:-1]:
        spec = tiny_spec(get_spec(name))
        assert spec.weights is not None
        layout = "safetensors" if spec.weights.filename.endswith(".safetensors") else spec.weights.layout
        weights = write_checkpoint(source_model(spec), layout, root / name)
        data = dataclasses.asdict(spec)
        data.pop("training")
        data.update(default=False, trained_on=list(spec.trained_on))
        spec_file = root / f"{name}.json"
        spec_file.write_text(json.dumps(data), encoding="utf-8")
        out[name] = load_contrastive(str(spec_file), weights)
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_and_searches_an_index(
    family: str, models: dict[str, Any], photos: Path, tmp_path: Path
) -> None:
    from rsvlm.index.archive import open_archive
    from rsvlm.index.build import build_index
    from rsvlm.index.search import SearchQuery
    from rsvlm.pipeline import embed_images

    model = models[family]
    report = build_index(tmp_path / "index", [photos, samples.path("coast")], model)
    assert report.added == len(PHOTOS) + 1 and report.count == len(PHOTOS) + 1
    archive = open_archive(tmp_path / "index")
    by_text = archive.search(SearchQuery(text="a harbour with boats", k=3), model)
    assert len(by_text.hits) == 3 and by_text.exact
    # an image query finds the image itself, with the score plain embedding gives (same model, same pixels)
    port = samples.path("port")
    hit = archive.search(SearchQuery(image=port, k=1), model).hits[0]
    assert Path(hit.path).name == "port.jpg"
    assert hit.score == pytest.approx(1.0, abs=1e-4)
    vector = embed_images(model, [port], use_cache=False)[0]
    same = archive.search(SearchQuery(vector=vector, k=len(PHOTOS) + 1), model)
    assert same.hits[0].id == hit.id
    other = models["rsvlm-lite" if family != "rsvlm-lite" else FAMILIES[0]]
    with pytest.raises(RsvlmError, match="index was built with"):
        archive.search(SearchQuery(text="a harbour", k=3), other)


def test_an_index_built_with_an_adapter_embeds_queries_with_it(
    models: dict[str, Any], photos: Path, tmp_path: Path
) -> None:
    import rsvlm
    from rsvlm.index.archive import open_archive
    from rsvlm.index.build import build_index
    from rsvlm.index.search import SearchQuery
    from rsvlm.index.store import IndexStore

    lite = rsvlm.Model(models["rsvlm-lite"])
    scenes = tmp_path / "labelled"
    for name in PHOTOS:
        (scenes / name).mkdir(parents=True)
        shutil.copy(samples.path(name), scenes / name / f"{name}.jpg")
    folder = lite.fit_adapter(scenes, "lora-image", options={"epochs": 1}).save(tmp_path / "adapter")
    from rsvlm.adapt.saved import load_adapter

    adapter = load_adapter(folder, lite.model)
    build_index(tmp_path / "index", [photos], lite.model, adapter=adapter, adapter_folder=folder)
    archive = open_archive(tmp_path / "index")
    assert archive.info()["adapter"]["method"] == "lora-image"
    hit = archive.search(SearchQuery(image=samples.path("farmland"), k=1), lite.model).hits[0]
    assert Path(hit.path).name == "farmland.jpg" and hit.score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(RsvlmError, match="index was built with adapter"):
        IndexStore.create(tmp_path / "index", archive.model_id, None)
