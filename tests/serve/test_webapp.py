"""The web page of the REAL ``rsvlm serve`` process, driven in Debian's headless Chromium through Playwright.

One walk-through as a user does it (upload → classify → caption → search → footprints → job), with every browser
request checked to stay on the server (no CDN) and no console error besides the ones the walk provokes on purpose,
then the token flow. A full-page screenshot lands in ``$RSVLM_SCREENSHOT_DIR`` (default: the test's tmp folder).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rsvlm import samples
from rsvlm.serve.app import WEB
from tests.serve.conftest import TOKEN, Server, start_server


def until(page: Any, check: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    """Poll ``check`` from Python until it is true. Playwright's ``wait_for_function`` polls by evaluating a string
    inside the page, which the server's content security policy (no eval) rightly refuses."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        page.wait_for_timeout(50)


sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no system Chromium on PATH (Debian: apt install chromium)", allow_module_level=True)

K = 6
"""Hits asked for: more than the index's 3 photos, so at least 3 are scene tiles with footprints."""
TIMEOUT_MS = 60_000
URL_IN_ASSET = re.compile(r"(?i)\b(?:https?:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+")


@dataclass
class Browsing:
    """A page on the server, with what it logged and every URL it asked for."""

    page: Any
    base: str
    console: list[Any] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def errors(self, *, allow: tuple[tuple[int, str], ...] = ()) -> list[str]:
        """Console errors and page exceptions, less the HTTP failures (status, path) the test caused on purpose."""
        found = []
        for message in self.console:
            if message.type != "error":
                continue
            url = message.location.get("url", "")
            expected = any(f"status of {status}" in message.text and url == self.base + path for status, path in allow)
            if not expected:
                found.append(f"{message.text} ({url})")
        return found


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, index_dir: Path) -> Iterator[Server]:
    """A server of its own (job queue and list untouched by the other tests): the test index, no chat model."""
    running = start_server(tmp_path_factory.mktemp("web"), "--chat", "none", "--index", str(index_dir))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser: Any, base: str, path: str = "/") -> Browsing:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    browsing = Browsing(page, base)
    page.on("console", lambda message: browsing.console.append(message))
    page.on("pageerror", lambda exc: browsing.console.append(_PageError(str(exc))))
    page.on("request", lambda request: browsing.requests.append(request.url))
    page.goto(base + path)
    until(page, lambda: "model" in page.get_by_test_id("health").inner_text(), "the health line")
    return browsing


@dataclass
class _PageError:
    """An uncaught exception in the page, shaped like a console error so one list holds both."""

    text: str
    type: str = "error"
    location: dict[str, str] = field(default_factory=dict)


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RSVLM_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_assets_name_no_other_server() -> None:
    """Every shipped asset is local: no URL of another host in the page, its scripts or its styles."""
    assets = sorted(p for p in WEB.iterdir() if p.suffix in {".html", ".js", ".css"})
    assert {"index.html", "app.js", "app.css"} <= {p.name for p in assets}
    for path in assets:
        assert URL_IN_ASSET.findall(path.read_text("utf-8")) == [], path.name


def test_upload_classify_search_and_a_job_in_chromium(browser: Any, web_server: Server, tmp_path: Path) -> None:
    base = web_server.url
    b = open_page(browser, base)
    page = b.page
    health = page.get_by_test_id("health").inner_text()
    assert "rsvlm-lite" in health and "chat off" in health and "19 items" in health
    assert "19 items" in page.get_by_test_id("index-info").inner_text()

    page.get_by_test_id("image-file").set_input_files(samples.path("farmland"))
    assert page.get_by_test_id("image-preview").evaluate("img => img.complete && img.naturalWidth") == 256
    _caption_and_ask_show_the_503(page, base)
    _search_by_image_then_use_a_hit(page, base)
    page.get_by_test_id("image-file").set_input_files(samples.path("farmland"))
    _classify(page, base)
    _search_by_text(page, base)
    _job_runs_to_done(b, base)

    # The page fetched nothing from anywhere but this server, and logged no error but the two it was made to cause.
    assert all(u.startswith(base + "/") or u.startswith(("blob:", "data:")) for u in b.requests), b.requests
    assert b.errors(allow=((503, "/api/caption"), (503, "/api/ask"))) == []
    page.get_by_test_id("message-close").click()
    shot = screenshot_dir(tmp_path) / "webapp.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.context.close()


def _caption_and_ask_show_the_503(page: Any, base: str) -> None:
    """This server runs --chat none: the page shows the server's own 503 message, and no caption or answer."""
    for button, path in (("caption", "/api/caption"), ("ask", "/api/ask")):
        with page.expect_response(lambda r, path=path: r.url == base + path) as answer:
            page.get_by_test_id(button).click()
        assert answer.value.status == 503
        expected = answer.value.json()["error"]["message"]
        until(page, lambda: page.get_by_test_id("message").get_attribute("data-kind") == "error", "the error")
        shown = page.get_by_test_id("message-text").inner_text()
        assert expected in shown and "HTTP 503" in shown, shown
        page.get_by_test_id("message-close").click()
        assert page.get_by_test_id("message").is_hidden()
    assert page.get_by_test_id("caption-result").inner_text() == page.get_by_test_id("answer").inner_text() == ""


def _search_by_image_then_use_a_hit(page: Any, base: str) -> None:
    """The farmland photo finds the farm scene's tiles, each with its footprint; a hit becomes the current image."""
    page.get_by_test_id("search-k").fill(str(K))
    with page.expect_response(lambda r: r.url == f"{base}/api/search/image") as answer:
        page.get_by_test_id("search-image").click()
    hits = answer.value.json()["hits"]
    assert len(hits) == K
    ids = [h["id"] for h in hits]
    until(
        page, lambda: page.eval_on_selector_all("[data-testid=hit]", "cs => cs.map(c => +c.dataset.id)") == ids, "hits"
    )
    _check_footprints(page, hits)
    page.get_by_test_id("hit-use").first.click()
    until(page, lambda: "search hit" in page.get_by_test_id("image-name").inner_text(), "the hit as image")
    assert f"search hit {hits[0]['id']}" in page.get_by_test_id("image-name").inner_text()
    assert page.get_by_test_id("image-preview").evaluate("img => img.naturalWidth") > 0


def _classify(page: Any, base: str) -> None:
    """User labels → bars in the server's order, the photo's own class first."""
    page.get_by_test_id("labels").fill("farmland,beach,forest")
    with page.expect_response(lambda r: r.url == f"{base}/api/classify") as answer:
        page.get_by_test_id("classify").click()
    ranking = [r["label"] for r in answer.value.json()["labels"]]
    rows = page.get_by_test_id("classify-row")
    rows.first.wait_for()
    assert [rows.nth(i).get_attribute("data-label") for i in range(rows.count())] == ranking
    assert ranking[0] == "farmland" and rows.count() == 3
    assert re.fullmatch(r"\d+\.\d %", rows.first.locator(".value").inner_text())


def _search_by_text(page: Any, base: str) -> None:
    """K cards with loaded thumbnails in the server's order (the beach photo first), and the tiles' footprints."""
    page.get_by_test_id("search-text").fill("a beach")
    page.get_by_test_id("search-k").fill(str(K))
    with page.expect_response(lambda r: r.url == f"{base}/api/search") as answer:
        page.get_by_test_id("search").click()
    hits = answer.value.json()["hits"]
    until(page, lambda: "beach" in page.get_by_test_id("search-summary").inner_text(), "the search summary")
    cards = page.get_by_test_id("hit")
    assert cards.count() == K == len(hits)
    assert [int(cards.nth(i).get_attribute("data-id")) for i in range(K)] == [h["id"] for h in hits]
    assert Path(hits[0]["path"]).name == "beach.jpg" and "beach.jpg" in cards.first.inner_text()
    loaded = "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)"
    until(page, lambda: page.eval_on_selector_all("[data-testid=hit-thumbnail]", loaded), "the thumbnails")
    _check_footprints(page, hits)


def _job_runs_to_done(b: Browsing, base: str) -> None:
    """A raster upload's progress bar runs to done, polled while it runs and no longer after; its files are linked."""
    page = b.page
    first = len(b.requests)
    page.get_by_test_id("job-file").set_input_files(samples.path("coast"))
    page.get_by_test_id("job-submit").click()
    job = page.locator('[data-testid="job"][data-status="done"]')
    job.wait_for(timeout=180_000)
    bar = job.get_by_test_id("job-progress")
    total = bar.evaluate("p => p.max")
    assert total >= 1 and bar.evaluate("p => p.value") == total
    assert f"{total} / {total} tiles" in job.inner_text()
    links = job.get_by_test_id("job-files").locator("a")
    names = [links.nth(i).inner_text() for i in range(links.count())]
    assert any(n.endswith(".tif") for n in names) and any(n.endswith(".png") for n in names), names
    fetched = page.context.request.get(base + links.first.get_attribute("href"))
    assert fetched.status == 200 and len(fetched.body()) > 0
    assert len([u for u in b.requests[first:] if u == f"{base}/api/jobs"]) >= 2  # after submitting, then polls
    settled = len(b.requests)
    page.wait_for_timeout(2500)  # more than two polling periods, with nothing queued or running
    assert f"{base}/api/jobs" not in b.requests[settled:]


def _check_footprints(page: Any, hits: list[dict[str, Any]]) -> None:
    """One footprint per hit with a place; a scene tile's rectangle is its pixel window on the scene overview."""
    placed = [i for i, h in enumerate(hits) if h.get("geometry")]
    assert placed, "the test expects some scene tiles among the hits"
    until(page, lambda: page.get_by_test_id("footprint").count() == len(placed), "the footprints")
    drawn = page.eval_on_selector_all(
        "[data-testid=footprint]",
        "els => els.map(e => [+e.dataset.hit, e.tagName, ['x','y','width','height'].map(a => +e.getAttribute(a))])",
    )
    assert sorted(d[0] for d in drawn) == placed
    for i, tag, box in drawn:
        assert tag == "rect" and box == hits[i]["window"], (i, tag, box, hits[i]["window"])
    overview = page.get_by_test_id("scene-overview").first.locator("img")
    until(page, lambda: overview.evaluate("img => img.complete && img.naturalWidth > 0"), "the scene overview")
    unplaced = len(hits) - len(placed)
    if unplaced:
        assert f"{unplaced} hit" in page.get_by_test_id("no-footprint").inner_text()


def test_token_from_the_link_then_from_the_token_field(browser: Any, tmp_path: Path) -> None:
    """/?token=T sets the cookie; once it is gone the API's 401 opens the token field, whose token then works."""
    server = start_server(tmp_path / "token-server", "--chat", "none", token=TOKEN)
    try:
        base = server.url
        bare = browser.new_context()
        refused = bare.new_page().goto(base + "/")
        assert refused is not None and refused.status == 401 and "token" in refused.text()
        bare.close()

        b = open_page(browser, base, f"/?token={TOKEN}")
        page = b.page
        assert page.url == base + "/" and "rsvlm-lite" in page.get_by_test_id("health").inner_text()
        assert page.get_by_test_id("token-panel").is_hidden()
        assert "no index" in page.get_by_test_id("health").inner_text()

        page.context.clear_cookies()
        page.get_by_test_id("image-file").set_input_files(samples.path("beach"))
        page.get_by_test_id("labels").fill("farmland,beach,forest")
        page.get_by_test_id("classify").click()
        page.get_by_test_id("token-panel").wait_for()
        assert "token missing" in page.get_by_test_id("message-text").inner_text()

        page.get_by_test_id("token").fill(TOKEN)
        page.get_by_test_id("token-save").click()
        assert page.get_by_test_id("token-panel").is_hidden()
        page.get_by_test_id("classify").click()
        page.get_by_test_id("classify-row").first.wait_for()
        assert page.get_by_test_id("classify-row").first.get_attribute("data-label") == "beach"
        assert page.evaluate("sessionStorage.getItem('rsvlm.token')") == TOKEN
        assert b.errors(allow=((401, "/api/classify"),)) == []
        page.context.close()
    finally:
        server.stop()
