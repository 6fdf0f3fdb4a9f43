"""Scene jobs: a bounded queue, one worker thread, and each job's state on disk so the list survives a restart.

A job is a folder ``data_dir/jobs/<id>/`` holding ``job.json`` (written atomically on every change of status and at
most once a second for progress), the uploaded raster (``input.<ext>``) and ``out/`` with the maps. The worker
runs independently of any request, so a client that disconnects after submitting loses nothing. One worker is
enough: a scene job already keeps the shared model busy, and a second would only make both slower. After a
restart, queued jobs queue again; a job that was running is marked failed (its process is gone), never rerun
silently.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.serve.errors import ApiError

log = logging.getLogger("rsvlm.serve")

STATUSES = ("queued", "running", "done", "failed")
JOB_FILE = "job.json"
PROGRESS_WRITE_SECONDS = 1.0


def now() -> str:
    """UTC time to the microsecond: jobs sort by it, and two submissions never share a microsecond."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    return secrets.token_hex(6)


@dataclass
class Job:
    """One scene job as stored in ``job.json``; ``public()`` is what the API shows (no server paths)."""

    id: str
    input: str
    """The raster's name as the client gave it (display only)."""
    source: str
    """Absolute path of the raster the worker reads: the stored upload, or a file under a --root."""
    classes: list[str] | None = None
    queries: list[str] = field(default_factory=list)
    status: str = "queued"
    created: str = field(default_factory=now)
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    done: int = 0
    total: int = 0
    files: list[dict[str, str]] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "progress": {"done": self.done, "total": self.total},
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "input": self.input,
            "classes": self.classes,
            "queries": self.queries,
            "files": [{**f, "url": f"/api/jobs/{self.id}/files/{quote(f['name'])}"} for f in self.files],
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        job = cls(**known)
        if job.status not in STATUSES or not isinstance(job.id, str):
            raise ValueError(f"bad job record {job.id!r}")
        return job


Progress = Callable[[int, int], None]
Runner = Callable[[Job, Path, Progress], tuple[list[dict[str, str]], dict[str, Any]]]
"""Runs one job: (job, its output folder, progress callback) → (files, summary)."""


class JobQueue:
    """Jobs in ``folder``, run one at a time by a worker thread, at most ``max_queued`` waiting."""

    def __init__(self, folder: Path, runner: Runner, max_queued: int) -> None:
        self.folder = folder
        self.runner = runner
        self.max_queued = max_queued
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_write = 0.0

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Read the jobs a previous run left, queue the waiting ones again, and start the worker."""
        self.folder.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.folder.glob(f"*/{JOB_FILE}"):
            try:
                found.append(Job.from_dict(json.loads(path.read_text("utf-8"))))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable job record %s (%s)", path, exc)
        for job in sorted(found, key=lambda j: j.created):
            if job.status == "running":
                self._finish(job, "failed", error="the server stopped while this job ran; submit it again")
            elif job.status == "queued":
                if Path(job.source).is_file():
                    self._queue.append(job.id)
                else:
                    self._finish(job, "failed", error="its input is gone since the server restarted; submit it again")
            self._jobs[job.id] = job
        self._thread = threading.Thread(target=self._work, name="rsvlm-serve-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop taking jobs; a running job cannot be interrupted, and is marked failed at the next start."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- requests --------------------------------------------------------------------------------------------
    def job_folder(self, job_id: str) -> Path:
        return self.folder / job_id

    def check_room(self) -> None:
        """429 when the queue is full: before an upload is stored, and again when it is queued."""
        with self._cond:
            waiting = len(self._queue)
        if waiting >= self.max_queued:
            raise ApiError(429, f"{waiting} jobs are already queued (the limit): wait for one to finish, then submit")

    def submit(self, job: Job) -> Job:
        """Queue ``job`` (its folder already holds its input); 429 and the folder removed when the queue is full."""
        with self._cond:
            if len(self._queue) >= self.max_queued:
                shutil.rmtree(self.job_folder(job.id), ignore_errors=True)
                raise ApiError(429, f"{len(self._queue)} jobs are already queued (the limit): wait, then submit")
            self._jobs[job.id] = job
            self._save(job)
            self._queue.append(job.id)
            self._cond.notify_all()
        return job

    def get(self, job_id: str) -> Job:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                raise ApiError(404, f"no job {job_id!r} (GET /api/jobs lists them)")
            return Job.from_dict(asdict(job))  # a copy: the worker keeps writing the original

    def all(self) -> list[Job]:
        with self._cond:
            jobs = [Job.from_dict(asdict(j)) for j in self._jobs.values()]
        return sorted(jobs, key=lambda j: (j.created, j.id), reverse=True)

    def counts(self) -> dict[str, int]:
        with self._cond:
            statuses = [j.status for j in self._jobs.values()]
        return {"queued": statuses.count("queued"), "running": statuses.count("running")}

    def file(self, job_id: str, name: str) -> Path:
        """An output file of a job, by a name its record lists (never a path the client builds)."""
        job = self.get(job_id)
        if name not in {f["name"] for f in job.files}:
            raise ApiError(404, f"job {job_id} has no file {name!r} (its record lists the files)")
        path = self.job_folder(job_id) / "out" / name
        if not path.is_file():
            raise ApiError(404, f"job {job_id}: file {name!r} is gone from the server's data folder")
        return path

    # --- worker ----------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                job = self._jobs[self._queue.popleft()]
                job.status, job.started = "running", now()
                self._save(job)
            self._run(job)

    def _run(self, job: Job) -> None:
        out = self.job_folder(job.id) / "out"
        shutil.rmtree(out, ignore_errors=True)

        def progress(done: int, total: int) -> None:
            with self._cond:
                job.done, job.total = done, total
                if time.monotonic() - self._last_write >= PROGRESS_WRITE_SECONDS:
                    self._save(job)

        try:
            files, summary = self.runner(job, out, progress)
        except RsvlmError as exc:  # the server's own paths become the name the client knows
            message = str(exc).splitlines()[0].replace(job.source, job.input).replace(str(self.folder), "…")
            self._finish(job, "failed", error=message)
        except Exception as exc:  # a bug or the machine (disk, memory): the job fails, the server lives on
            log.exception("job %s failed", job.id)
            self._finish(job, "failed", error=f"internal error ({type(exc).__name__}); the server log has details")
        else:
            with self._cond:
                job.files, job.summary = files, summary
            self._finish(job, "done")

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        with self._cond:
            job.status, job.error, job.finished = status, error, now()
            self._save(job)

    def _save(self, job: Job) -> None:
        """Write the record (callers hold the condition's lock, so records never interleave)."""
        self._last_write = time.monotonic()
        try:
            atomic_write_json(self.job_folder(job.id) / JOB_FILE, asdict(job), ensure_ascii=False)
        except RsvlmError as exc:  # a full disk must not stop the worker; the state stays in memory
            log.error("cannot save job %s: %s", job.id, exc)


# --- the scene job itself ------------------------------------------------------------------------------------
JOB_BATCH = 8
"""Tiles per model call in a served job: the shared model's lock is held per call, so a request waits at most one
such batch (~0.1 s on rsvlm-lite, one CPU thread) behind a running job; the maps do not depend on it."""
COG_BLOCK = 256
"""Tile side of the served maps: their grids are one cell per tile stride, rarely larger than a few hundred."""


def check_scene(path: Path) -> None:
    """Refuse, at submission, a raster the worker could not map (too small, too many tiles): headers only."""
    from rsvlm.geo.planning import plan_settings
    from rsvlm.geo.source import open_scene

    plan_settings(open_scene(path), None, None)


def run_scene(model: Any, job: Job, out: Path, progress: Progress) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Land-cover (and query) maps of ``job``'s raster in ``out``; GeoTIFFs become Cloud-Optimized GeoTIFFs."""
    from rsvlm.geo.analyse import analyse_scene, scene_overview, write_summary
    from rsvlm.geo.planning import plan_settings
    from rsvlm.geo.source import open_scene

    scene = open_scene(job.source)
    settings = replace(plan_settings(scene, None, None), batch_size=JOB_BATCH)
    overview = scene_overview(scene)
    analysis = analyse_scene(
        scene, model, out, classes=job.classes, queries=job.queries, settings=settings, overview=overview,
        progress=progress,
    )  # fmt: skip
    write_summary(analysis, out)
    files = []
    for path in sorted(out.iterdir()):
        if path.suffix == ".tif":
            to_cog(path, categorical=path.name == "landcover.tif")
        kind = {".tif": "cog", ".png": "png", ".json": "json"}.get(path.suffix)
        if kind is not None and path.is_file():
            files.append({"name": path.name, "kind": kind})
    summary = {
        "classes": analysis.classes,
        "class_share": analysis.class_share,
        "queries": analysis.queries,
        "tiles_scored": analysis.scores.tiles_scored,
        "tiles_skipped": analysis.scores.tiles_skipped,
        "size": [scene.width, scene.height],
        "crs": scene.crs,
        "seconds": round(analysis.seconds, 2),
        "notes": analysis.notes,
    }
    return files, summary


def to_cog(path: Path, *, categorical: bool) -> None:
    """Rewrite a GeoTIFF in place as a COG (tiled, overviews when larger than a tile, deflate), atomically.

    Class maps keep their colour table and are decimated by nearest neighbour; continuous maps by averaging.
    """
    import rasterio.shutil
    from rasterio.errors import RasterioError

    tmp = path.with_name(f".{path.name}.cog.tmp")
    try:
        rasterio.shutil.copy(
            path, tmp, driver="COG", BLOCKSIZE=COG_BLOCK, COMPRESS="DEFLATE",
            RESAMPLING="NEAREST" if categorical else "AVERAGE", OVERVIEWS="AUTO",
        )  # fmt: skip
        tmp.replace(path)
    except (RasterioError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise RsvlmError(f"{path.name}: cannot write it as a Cloud-Optimized GeoTIFF ({exc})") from None
