"""Scene-job routes: submit a raster (upload, or a path under a --root), follow its progress, fetch its maps.

Everything that can be refused is refused at submission, in the request (a full queue before the upload is stored,
then the file type, the path, the classes and queries, and the tile plan from the raster's header), so a queued
job fails later only for reasons its pixels hold.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from rsvlm.serve.errors import ApiError
from rsvlm.serve.jobs import Job, check_scene, new_id
from rsvlm.serve.schemas import JobList, JobOut
from rsvlm.serve.security import confine, display_name, store_upload

if TYPE_CHECKING:
    from rsvlm.serve.app import AppState

JOB_ID = r"^[0-9a-f]{12}$"
FILE_NAME = r"^[^/\\]{1,200}$"
MEDIA = {".tif": "image/tiff", ".png": "image/png", ".json": "application/json"}


def _classes(text: str | None, limit: int) -> list[str] | None:
    from rsvlm.geo.analyse import class_list

    if text is None or not text.strip():
        return None
    names = class_list(text.strip())
    if len(names) > limit or any(len(n) > 100 for n in names):
        raise ApiError(422, f"classes: at most {limit} names of at most 100 characters each")
    return names


def _queries(text: str | None, limit: int) -> list[str]:
    from rsvlm.geo.analyse import query_stems

    queries = [q.strip() for q in (text or "").split(";") if q.strip()]
    if len(queries) > limit or any(len(q) > 200 for q in queries):
        raise ApiError(422, f"queries: at most {limit} texts of at most 200 characters each, separated by ';'")
    query_stems(queries)  # a query given twice is refused here
    return queries


def router(state: AppState) -> APIRouter:
    api = APIRouter(prefix="/api", tags=["jobs"])
    queue = state.jobs
    limits = state.config.limits

    @api.post("/jobs", status_code=202, response_model=JobOut)
    def submit(
        raster: Annotated[UploadFile | None, File(description="The scene: GeoTIFF, JPEG 2000, PNG or JPEG")] = None,
        path: Annotated[str | None, Form(max_length=4096, description="Or a raster under a --root folder")] = None,
        classes: Annotated[
            str | None, Form(max_length=10_000, description='A preset (landcover, aid, water-land) or "a,b,c"')
        ] = None,
        queries: Annotated[str | None, Form(max_length=10_000, description='Texts to map: "q1;q2"')] = None,
    ) -> dict[str, Any]:
        """Queue a whole-scene job: land-cover and query maps as Cloud-Optimized GeoTIFFs, PNG overlays, a summary."""
        if (raster is None) == (path is None or path == ""):
            raise ApiError(422, "give either raster (an uploaded file) or path (a file under a --root), not both")
        names = _classes(classes, limits.max_labels)
        texts = _queries(queries, limits.max_queries)
        queue.check_room()
        job_id = new_id()
        folder = queue.job_folder(job_id)
        try:
            if raster is not None:
                source = store_upload(raster.file, folder, stem="input")
                shown = display_name(raster.filename, "raster")
            else:
                assert path is not None
                source = confine(path, state.config.roots)
                shown = source.name
            check_scene(source)
        except BaseException:  # nothing of a refused submission stays on disk
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = queue.submit(Job(id=job_id, input=shown, source=str(source), classes=names, queries=texts))
        return job.public()

    @api.get("/jobs", response_model=JobList)
    def jobs() -> dict[str, Any]:
        """Every job this server knows (also those of earlier runs on the same data folder), newest first."""
        return {"jobs": [j.public() for j in queue.all()]}

    @api.get("/jobs/{job_id}", response_model=JobOut)
    def job(job_id: Annotated[str, PathParam(pattern=JOB_ID)]) -> dict[str, Any]:
        """One job: status, progress (tiles done of total), and when done its files and class shares."""
        return queue.get(job_id).public()

    @api.get("/jobs/{job_id}/files/{name}", response_class=FileResponse, responses={200: {"description": "The file"}})
    def job_file(
        job_id: Annotated[str, PathParam(pattern=JOB_ID)], name: Annotated[str, PathParam(pattern=FILE_NAME)]
    ) -> FileResponse:
        """An output of a done job, by a name its record lists (GeoTIFF maps are Cloud-Optimized GeoTIFFs)."""
        found = queue.file(job_id, name)
        media = MEDIA.get(found.suffix, "application/octet-stream")
        return FileResponse(found, media_type=media, filename=name, content_disposition_type="inline")

    return api
