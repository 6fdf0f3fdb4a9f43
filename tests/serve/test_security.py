"""Token, bind, origin, body-size, pixel, file-type and path checks of the real server process."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from rsvlm import samples
from rsvlm.serve.app import WEB
from tests.serve.conftest import TOKEN, Server, free_port, rsvlm_command, start_server, wait_for_job
from tests.serve.test_api import _error, _upload


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a token (from RSVLM_TOKEN), no chat model, no --root and no index."""
    running = start_server(tmp_path_factory.mktemp("token-server"), "--chat", "none", token=TOKEN)
    yield running
    running.stop()


def _png_header(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


# --- token ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/health", "/api/jobs", "/openapi.json", "/static/app.css", "/api/index"])
def test_every_route_needs_the_token(token_server: Server, path: str) -> None:
    with httpx.Client(base_url=token_server.url) as anonymous:
        assert "token missing" in _error(anonymous.get(path), 401)
        wrong = anonymous.get(path, headers={"Authorization": "Bearer not-the-token-at-all-123"})
        assert "wrong token" in _error(wrong, 401)
        assert wrong.headers["www-authenticate"] == "Bearer"
    with token_server.client() as client:
        assert client.get(path).status_code != 401


def test_uploads_are_refused_without_the_token(token_server: Server) -> None:
    with httpx.Client(base_url=token_server.url) as anonymous:
        response = anonymous.post("/api/classify", files=_upload("farmland"), data={"labels": "a,b"})
    _error(response, 401)


def test_the_page_asks_for_the_token_and_keeps_it_in_a_cookie(token_server: Server) -> None:
    with httpx.Client(base_url=token_server.url) as browser:
        page = browser.get("/")
        assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
        assert "?token=" in page.text and "Authorization: Bearer" in page.text
        assert browser.get("/", params={"token": "wrong-token-wrong-token"}).status_code == 401
        login = browser.get("/", params={"token": TOKEN})
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookie = login.headers["set-cookie"].lower()
        assert "rsvlm_token=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        # the client now holds the cookie, as a browser would
        assert browser.get("/api/health").status_code == 200
        assert browser.get("/openapi.json").status_code == 200
        assert browser.get("/").status_code == (200 if (WEB / "index.html").is_file() else 404)


def test_jobs_by_path_are_refused_without_roots(token_server: Server) -> None:
    with token_server.client() as client:
        response = client.post("/api/jobs", data={"path": str(samples.path("coast"))})
    assert "--root" in _error(response, 403)


def test_caption_and_ask_answer_503_when_chat_is_off(token_server: Server) -> None:
    with token_server.client() as client:
        caption = client.post("/api/caption", files=_upload("farmland"))
        ask = client.post("/api/ask", files=_upload("farmland"), data={"question": "Is there a river?"})
        too_long = client.post("/api/ask", files=_upload("farmland"), data={"question": "x" * 501})
        health = client.get("/api/health").json()
    assert "--chat none" in _error(caption, 503)
    assert "--chat none" in _error(ask, 503)
    assert "question" in _error(too_long, 422)
    assert health["chat"] is None


# --- binding ----------------------------------------------------------------------------------------------------
def _serve(*args: str, token: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "RSVLM_TOKEN"}
    if token is not None:
        env["RSVLM_TOKEN"] = token
    start = time.monotonic()
    result = subprocess.run(
        [*rsvlm_command(), "serve", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    return result, time.monotonic() - start


def test_a_public_bind_without_a_token_is_refused_in_one_line(tmp_path: Path) -> None:
    result, seconds = _serve("--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host 0.0.0.0" in lines[0] and "token" in lines[0], result.stderr
    assert seconds < 20  # refused before any model loads
    short, _ = _serve("--host", "0.0.0.0", "--data-dir", str(tmp_path), token="short")
    assert short.returncode == 2 and "at least 16 letters" in short.stderr
    cookie_breaker, _ = _serve("--data-dir", str(tmp_path), token="0123456789abcdef;admin=1")
    assert cookie_breaker.returncode == 2 and "letters, digits" in cookie_breaker.stderr


def test_a_taken_port_is_one_line(server: Server, tmp_path: Path) -> None:
    port = server.url.rsplit(":", 1)[1]
    result, _ = _serve("--port", port, "--data-dir", str(tmp_path), "--chat", "none")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_a_second_server_on_the_same_data_folder_is_refused(server: Server) -> None:
    result, _ = _serve("--data-dir", str(server.data_dir), "--port", str(free_port()), "--chat", "none")
    assert result.returncode == 2 and "in use" in result.stderr


def test_foreign_hosts_and_origins_are_refused(server: Server) -> None:
    with server.client() as client:
        rebinding = client.get("/api/health", headers={"Host": "evil.example:8000"})
        assert "Host" in _error(rebinding, 403)
        cross = client.post("/api/search", json={"text": "x"}, headers={"Origin": "http://evil.example"})
        assert "cross-origin" in _error(cross, 403)
        same = client.get("/api/health", headers={"Origin": server.url})
        assert same.status_code == 200


# --- limits -----------------------------------------------------------------------------------------------------
def test_an_oversized_body_is_413(server: Server) -> None:
    big = os.urandom(2 * 1024**2)  # the server's limit is 1 MiB
    with server.client() as client:
        declared = client.post("/api/classify", files={"image": ("big.png", big)}, data={"labels": "a,b"})
        assert "1 MiB" in _error(declared, 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts the streamed bytes
            for i in range(0, len(big), 64 * 1024):
                yield big[i : i + 64 * 1024]

        streamed = client.post("/api/search", content=chunks(), headers={"Content-Type": "application/json"})
        _error(streamed, 413)
        assert client.get("/api/health").status_code == 200  # and the server lives on


def test_an_image_over_the_pixel_limit_is_413(server: Server) -> None:
    with server.client() as client:
        bomb = client.post("/api/classify", files={"image": ("bomb.png", _png_header(60_000, 60_000))},
                           data={"labels": "a,b"})  # fmt: skip
        assert "pixel" in _error(bomb, 413)
        claims = client.post("/api/search/image", files={"image": ("big.png", _png_header(2_000, 2_000))})
        assert "2000x2000" in _error(claims, 413)
        trees = client.post("/api/classify", files=_upload("trees"), data={"labels": "forest,beach"})
        assert "400x400" in _error(trees, 413)  # a real 400² photo over this server's 100,000-pixel limit
        assert client.post("/api/classify", files=_upload("farmland"), data={"labels": "a,b"}).status_code == 200


def test_non_images_are_415_whatever_their_name(server: Server) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    jobs = server.data_dir / "jobs"
    before = set(jobs.iterdir()) if jobs.is_dir() else set()
    with server.client() as client:
        text = client.post("/api/classify", files={"image": ("x.png", b"hello, not a png", "image/png")},
                           data={"labels": "a,b"})  # fmt: skip
        assert "JPEG, PNG, TIFF" in _error(text, 415)
        _error(client.post("/api/classify", files={"image": ("x.gif", gif.getvalue())}, data={"labels": "a,b"}), 415)
        _error(client.post("/api/jobs", files={"raster": ("scene.tif", b"<VRTDataset>")}), 415)
    after = set(jobs.iterdir()) if jobs.is_dir() else set()
    assert after == before  # a refused upload leaves nothing behind
    assert not list((server.data_dir / "tmp").iterdir())


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("../../../../etc/passwd", 403),
        ("/etc/passwd", 403),
        ("sub/../../outside.tif", 403),
        ("escape.tif", 403),  # a symlink inside the root that points outside it
        ("notes.tif", 415),
        ("missing.tif", 404),
        ("sub", 404),
    ],
)
def test_paths_stay_inside_the_roots(server: Server, roots: Path, path: str, status: int) -> None:
    with server.client() as client:
        _error(client.post("/api/jobs", data={"path": path}), status)
        if status == 403 and not path.startswith("/"):
            _error(client.post("/api/jobs", data={"path": str(roots / path)}), 403)


def test_a_file_under_a_root_is_mapped(server: Server, roots: Path) -> None:
    with server.client() as client:
        data = {"path": "sub/coast copy.tif", "classes": "water-land", "queries": "森林;a river"}
        response = client.post("/api/jobs", data=data)
        assert response.status_code == 202, response.text
        job = wait_for_job(client, response.json()["id"])
        assert job["status"] == "done", job["error"]
        fetched = {f["name"]: client.get(f["url"]) for f in job["files"]}
    assert job["input"] == "coast copy.tif" and job["classes"] == ["open water", "wetland", "vegetation",
                                                                   "built-up area", "bare ground"]  # fmt: skip
    assert {"query_森林.tif", "query_a-river.tif"} <= set(fetched)  # URLs percent-encode the names
    assert all(r.status_code == 200 and r.content for r in fetched.values())


def test_every_response_carries_the_hardening_headers(server: Server) -> None:
    with server.client() as client:
        refused = client.get("/api/health", headers={"Origin": "http://evil.example"})
        page = client.get("/")
        for response in (
            client.get("/api/health"),
            client.get("/api/nope"),
            client.get("/openapi.json"),
            refused,
            page,
        ):
            assert "default-src 'self'" in response.headers["content-security-policy"]  # the browser loads ours only
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
