"""``create_app(config)``: the FastAPI application of ``rsvlm serve`` — page, health, classify, caption and ask.

Search and jobs live in ``search_routes`` and ``job_routes``. Models load in the lifespan, before the first request
is accepted, and the data folder is locked for the server's life, so two servers never run each other's jobs.
Inference routes are plain ``def``: FastAPI runs them in its thread pool, and the event loop stays free for
``/api/health`` and job polling while a model works. No docs page (it would load from a CDN); /openapi.json stays.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import FileResponse

from rsvlm.serve.config import MAX_QUESTION_CHARS, ServeConfig
from rsvlm.serve.errors import ApiError
from rsvlm.serve.jobs import Job, JobQueue, Progress, Runner, run_scene
from rsvlm.serve.resources import Resources
from rsvlm.serve.schemas import CHAT_OFF, ERRORS, Answered, Captioned, Classified, Health, LabelScore
from rsvlm.serve.security import Guard, check_pixels, store_upload

WEB = Path(__file__).resolve().parent / "web"
"""The page and its assets (package data); only plain files directly in this folder are served."""

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}


@dataclass
class AppState:
    """What the routes share: the settings, the loaded models and the job queue."""

    config: ServeConfig
    resources: Resources
    jobs: JobQueue

    @property
    def scratch(self) -> Path:
        return self.config.data_dir / "tmp"

    @contextlib.contextmanager
    def image(self, upload: UploadFile) -> Iterator[Path]:
        """An uploaded image stored under a fresh name, typed by content, within the pixel limit; removed after."""
        path = store_upload(upload.file, self.scratch)
        try:
            check_pixels(path, self.config.limits.max_pixels)
            yield path
        finally:
            path.unlink(missing_ok=True)


def create_app(config: ServeConfig, resources: Resources | None = None) -> FastAPI:
    """The application for ``config`` (already ``check()``-ed); ``resources`` are loaded at startup if not yet."""
    from rsvlm.version import __version__

    res = resources or Resources(config)
    state = AppState(config, res, JobQueue(config.data_dir / "jobs", _runner(res), config.limits.max_queued_jobs))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starlette.concurrency import run_in_threadpool

        from rsvlm.fileio import run_lock

        with run_lock(config.data_dir, "serve data folder"):
            if res.model is None:
                await run_in_threadpool(res.load)
            state.scratch.mkdir(parents=True, exist_ok=True)
            for stale in state.scratch.iterdir():  # uploads a killed server left behind
                if stale.is_file():
                    stale.unlink(missing_ok=True)
            state.jobs.start()
            try:
                yield
            finally:
                state.jobs.stop()

    app = FastAPI(
        title="rsvlm serve",
        version=__version__,
        description="Classify, caption, ask, search an image archive, and map whole scenes.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=ERRORS,
    )
    from rsvlm.serve import errors, job_routes, search_routes

    errors.install(app)
    app.add_middleware(Guard, config=config)
    app.state.serve = state
    _page_routes(app)
    _image_routes(app, state)
    app.include_router(search_routes.router(state))
    app.include_router(job_routes.router(state))

    @app.get("/api/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        """Whether the server is up, which models it serves, its index size and its job counts."""
        index = None
        if res.archive is not None:
            index = {"count": len(res.archive), "path": res.archive.path.name}
        model = res.model.name if res.model is not None else "loading"
        return Health.model_validate(
            {"status": "ok", "version": __version__, "model": model, "chat": config.chat, "index": index,
             "jobs": state.jobs.counts()}
        )  # fmt: skip

    return app


def _runner(res: Resources) -> Runner:
    def run(job: Job, out: Path, progress: Progress) -> tuple[list[dict[str, str]], dict[str, Any]]:
        return run_scene(res.classifier().model, job, out, progress)

    return run


def _page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(_web_file("index.html"), media_type=MEDIA_TYPES[".html"])

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        path = _web_file(name)
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"))


def _web_file(name: str) -> Path:
    """A file directly in the web folder, looked up by listing it (no path the client builds is ever opened)."""
    files = {p.name: p for p in WEB.iterdir() if p.is_file() and not p.name.startswith(".")} if WEB.is_dir() else {}
    if name not in files:
        raise ApiError(404, f"no such page file: {name!r}")
    return files[name]


def _labels(text: str, limit: int) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) < 2:
        raise ApiError(422, "labels: give at least two distinct comma-separated class names, e.g. 'farmland,forest'")
    if len(names) > limit or any(len(n) > 100 for n in names):
        raise ApiError(422, f"labels: at most {limit} names of at most 100 characters each")
    return names


def _image_routes(app: FastAPI, state: AppState) -> None:
    limits = state.config.limits

    @app.post("/api/classify", response_model=Classified, tags=["images"])
    def classify(
        image: Annotated[UploadFile, File(description="JPEG, PNG, TIFF or JPEG 2000")],
        labels: Annotated[str, Form(max_length=10_000, description='Class names, comma-separated: "a,b,c"')],
        top: Annotated[int, Form(ge=1, le=50)] = 5,
    ) -> Classified:
        """Zero-shot probabilities of the labels for one image, best first."""
        names = _labels(labels, limits.max_labels)
        model = state.resources.classifier()
        with state.image(image) as path:
            ranked = state.resources.classify(path, names)
        scores = [LabelScore(label=label, probability=p) for label, p in ranked[:top]]
        return Classified(model=model.name, labels=scores)

    @app.post("/api/caption", response_model=Captioned, tags=["images"], responses=CHAT_OFF)
    def caption(image: Annotated[UploadFile, File(description="JPEG, PNG, TIFF or JPEG 2000")]) -> Captioned:
        """A caption of one image by the chat model (loaded on first use; 503 when the server runs with --chat none)."""
        with state.image(image) as path:  # the upload is checked first: a bad file never waits for a model load
            text = state.resources.caption(str(path))
        return Captioned(model=str(state.config.chat), caption=text)

    @app.post("/api/ask", response_model=Answered, tags=["images"], responses=CHAT_OFF)
    def ask(
        image: Annotated[UploadFile, File(description="JPEG, PNG, TIFF or JPEG 2000")],
        question: Annotated[str, Form(min_length=1, max_length=MAX_QUESTION_CHARS)],
    ) -> Answered:
        """The chat model's answer to a question about one image (503 when the server runs with --chat none)."""
        if not question.strip():
            raise ApiError(422, "question: ask something (it is empty)")
        with state.image(image) as path:
            text = state.resources.ask(str(path), question.strip())
        return Answered(model=str(state.config.chat), answer=text)
