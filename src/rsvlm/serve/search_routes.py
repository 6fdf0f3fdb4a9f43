"""Routes over the server's index (``--index``): describe it, search it by text or image, show items and scenes.

Every route answers 404 when the server has no index. Item ids and scene numbers come from the archive, never a
path: thumbnails and overviews are made (or read) by ``rsvlm.index``, which only opens files it indexed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response

from rsvlm.errors import RsvlmError
from rsvlm.serve.errors import ApiError
from rsvlm.serve.schemas import SearchBody, SearchOut

if TYPE_CHECKING:
    from rsvlm.serve.app import AppState

MAX_ID = 2**63 - 1
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "A PNG image"}}


def json_safe(value: Any) -> Any:
    """NaN and infinities (an item's score outside a search) as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _hit(hit: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_safe(hit.to_dict())
    out["thumbnail"] = f"/api/items/{hit.id}/thumbnail.png"
    return out


def _not_found(exc: RsvlmError) -> ApiError:
    return ApiError(404, str(exc).splitlines()[0])


def _filters(bbox: str | None, time: str | None) -> dict[str, Any]:
    from rsvlm.index.search import parse_bbox, parse_time

    return {
        "bbox": parse_bbox(bbox) if bbox else None,
        "time": parse_time(time) if time else None,
    }


def router(state: AppState) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["index"])
    res = state.resources

    def search(**query: Any) -> dict[str, Any]:
        from rsvlm.index.search import SearchQuery

        archive, model = res.index()
        result = archive.search(SearchQuery(**query), model)
        out: dict[str, Any] = json_safe(result.to_dict())
        out["hits"] = [_hit(h) for h in result.hits]
        return out

    @api.get("/index")
    def index_info() -> dict[str, Any]:
        """What the index holds: count, model, bounds, time span, and its scenes with their overview URLs."""
        archive, _ = res.index()
        info: dict[str, Any] = json_safe(archive.info())
        info["path"] = archive.path.name  # the server's folders are not the client's business
        for n, scene in enumerate(info.get("scenes", [])):
            scene["overview"] = f"/api/index/overviews/{n}.png"
        return info

    @api.post("/search", response_model=SearchOut)
    def search_text(body: SearchBody) -> dict[str, Any]:
        """The k indexed images or tiles closest to a text, optionally within a box and a time range."""
        if not body.text.strip():
            raise ApiError(422, "text: describe what to find, e.g. 'a flooded field' (it is empty)")
        bbox = ",".join(repr(v) for v in body.bbox) if body.bbox is not None else None
        return search(text=body.text.strip(), k=body.k, **_filters(bbox, body.time))

    @api.post("/search/image", response_model=SearchOut)
    def search_image(
        image: Annotated[UploadFile, File(description="JPEG, PNG, TIFF or JPEG 2000")],
        k: Annotated[int, Form(ge=1, le=200)] = 20,
        bbox: Annotated[str | None, Form(max_length=200, description='"W,S,E,N" in WGS84 degrees')] = None,
        time: Annotated[str | None, Form(max_length=100, description='"FROM/TO" ISO dates')] = None,
    ) -> dict[str, Any]:
        """The k indexed images or tiles closest to an uploaded image."""
        res.index()  # 404 before the upload is stored
        filters = _filters(bbox, time)
        with state.image(image) as path:
            return search(image=path, k=k, **filters)

    @api.get("/items/{item_id}")
    def item(item_id: Annotated[int, PathParam(ge=0, le=MAX_ID)]) -> dict[str, Any]:
        """One indexed item: its source, window, label, time and footprint."""
        archive, _ = res.index()
        try:
            found = archive.item(item_id)
        except RsvlmError as exc:
            raise _not_found(exc) from None
        out = _hit(found)
        out.pop("rank", None)
        out.pop("score", None)
        return out

    @api.get("/items/{item_id}/thumbnail.png", response_class=Response, responses=PNG)
    def thumbnail(item_id: Annotated[int, PathParam(ge=0, le=MAX_ID)]) -> Response:
        """The item's pixels as a PNG of at most 256 px a side."""
        archive, _ = res.index()
        try:
            data = archive.thumbnail(item_id, 256)
        except RsvlmError as exc:
            raise _not_found(exc) from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @api.get("/index/overviews/{n}.png", response_class=Response, responses=PNG)
    def overview(n: Annotated[int, PathParam(ge=0, le=1_000_000)]) -> Response:
        """The overview composite of the n-th scene of GET /api/index (its "scenes" list)."""
        archive, _ = res.index()
        try:
            data = archive.scene_overview(n)
        except RsvlmError as exc:
            raise _not_found(exc) from None
        except OSError:
            raise ApiError(404, f"scene {n}: its overview file is missing from the index (rebuild it)") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    return api
