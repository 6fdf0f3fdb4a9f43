"""Request and response bodies of the REST API: they make the OpenAPI schema the web page and the fuzzer read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorBody(BaseModel):
    """Every error: its HTTP status and one line naming the thing and the fix."""

    error: ErrorDetail


class JobCounts(BaseModel):
    queued: int
    running: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    model: str
    """The contrastive model's name (classify; search uses the index's own model)."""
    chat: str | None
    """The chat model caption/ask use (loaded on first use); null when they are off."""
    index: dict[str, Any] | None
    jobs: JobCounts


class LabelScore(BaseModel):
    label: str
    probability: float


class Classified(BaseModel):
    model: str
    labels: list[LabelScore]
    """Best first."""


class Captioned(BaseModel):
    model: str
    caption: str


class Answered(BaseModel):
    model: str
    answer: str


class SearchBody(BaseModel):
    """A text query over the index, with optional geographic and time filters."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1000)
    k: int = Field(20, ge=1, le=200)
    bbox: list[float] | None = Field(None, min_length=4, max_length=4, description="[W, S, E, N] in WGS84 degrees")
    time: str | None = Field(None, max_length=100, description='"FROM/TO" ISO dates; ".." leaves an end open')


class SearchOut(BaseModel):
    hits: list[dict[str, Any]]
    took_ms: float
    exact: bool
    candidates: int
    query: dict[str, Any]


class Progress(BaseModel):
    done: int
    total: int


class JobFile(BaseModel):
    name: str
    url: str
    kind: Literal["cog", "png", "json"]


class JobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    progress: Progress
    created: str
    started: str | None
    finished: str | None
    error: str | None
    input: str
    classes: list[str] | None
    queries: list[str]
    files: list[JobFile]
    summary: dict[str, Any] | None


class JobList(BaseModel):
    jobs: list[JobOut]
    """Newest first."""


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (401, "Token missing or wrong"),
        (403, "Refused: cross-origin, foreign Host, or a path outside the roots"),
        (404, "Not found"),
        (413, "Body or image too large"),
        (415, "Not a JPEG, PNG, TIFF or JPEG 2000 image"),
        (422, "Invalid request"),
    )
}
"""The error responses every route may give, for the schema."""
CHAT_OFF: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The server runs without a chat model (--chat none), or it cannot load"}
}
