"""Scene jobs on the real server: progress, Cloud-Optimized outputs, a bounded queue, disconnects and restarts."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio

from rsvlm import samples
from rsvlm.serve.jobs import Job, JobQueue, to_cog
from tests.serve.conftest import MAX_JOBS, Server, start_server, wait_for_job, write_scene

L7 = "landsat7/L7_ETMs.tif"


def _submit(client: httpx.Client, path: Path, name: str | None = None, **data: str) -> httpx.Response:
    return client.post("/api/jobs", files={"raster": (name or path.name, path.read_bytes())}, data=data)


def _cog(path: Path) -> dict[str, Any]:
    """What makes a GeoTIFF cloud-optimized, as rasterio reports it."""
    with rasterio.open(path) as src:
        return {
            "driver": src.driver,
            "layout": src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"),
            "tiled": src.profile.get("tiled", False),
            "blocks": set(src.block_shapes),
            "overviews": src.overviews(1),
            "crs": src.crs,
            "count": src.count,
            "descriptions": src.descriptions,
        }


def test_a_real_scene_job_runs_to_done_with_progress_and_cogs(
    server: Server, shared_data: Path, tmp_path: Path
) -> None:
    """The Landsat-7 scene (6 bands, 441 tiles): progress moves, /api/health stays fast, maps are COGs."""
    scene = shared_data / L7
    with server.client() as client:
        response = _submit(client, scene, queries="a river;a town")
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] == "queued" and job["input"] == "L7_ETMs.tif" and job["queries"] == ["a river", "a town"]
        seen: list[tuple[str, int, int]] = []
        health_seconds: list[float] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            record = client.get(f"/api/jobs/{job['id']}").json()
            seen.append((record["status"], record["progress"]["done"], record["progress"]["total"]))
            if record["status"] in ("done", "failed"):
                break
            start = time.perf_counter()
            jobs = client.get("/api/health").json()["jobs"]  # the job may start or end between the two calls
            assert jobs["running"] <= 1 and jobs["running"] + jobs["queued"] <= 1
            health_seconds.append(time.perf_counter() - start)
            time.sleep(0.2)
        assert record["status"] == "done", record["error"]
        files = {f["name"]: f for f in record["files"]}
        for name, entry in files.items():
            fetched = client.get(entry["url"])
            assert fetched.status_code == 200
            (tmp_path / name).write_bytes(fetched.content)
    total = record["progress"]["total"]
    assert total == 441 and record["progress"]["done"] == total
    assert any(status == "running" and 0 < done < total for status, done, _ in seen)  # progress seen mid-way
    assert health_seconds and max(health_seconds) < 1.0  # answered while the model maps the scene
    assert {"landcover.tif", "landcover_probabilities.tif", "query_a-river.tif", "query_a-town.tif",
            "landcover.png", "composite.png", "summary.json"} <= set(files)  # fmt: skip
    with rasterio.open(scene) as src:
        scene_crs = src.crs
    for name, entry in files.items():
        assert entry["kind"] == {".tif": "cog", ".png": "png", ".json": "json"}[Path(name).suffix]
        if entry["kind"] == "cog":
            cog = _cog(tmp_path / name)
            assert cog["driver"] == "GTiff" and cog["layout"] == "COG" and cog["tiled"], (name, cog)
            assert cog["blocks"] == {(256, 256)} and cog["crs"] == scene_crs
        elif entry["kind"] == "png":
            assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    probabilities = _cog(tmp_path / "landcover_probabilities.tif")
    assert probabilities["count"] == 10 and probabilities["descriptions"][0] == "forest"
    with rasterio.open(tmp_path / "landcover.tif") as src:
        assert src.colormap(1)[0][:3] == (31, 119, 180)  # the class colours survive the conversion
    assert sum(record["summary"]["class_share"].values()) == pytest.approx(1.0, abs=1e-6)
    assert json.loads((tmp_path / "summary.json").read_text())["class_share"] == record["summary"]["class_share"]


def test_to_cog_adds_overviews_to_a_map_larger_than_a_tile(tmp_path: Path) -> None:
    """Served maps are one cell per tile stride, so only large scenes give maps over 256 px: then overviews."""
    from affine import Affine

    data = np.random.default_rng(0).random((2, 600, 700), dtype=np.float32)
    path = tmp_path / "similarity.tif"
    profile = {"driver": "GTiff", "width": 700, "height": 600, "count": 2, "dtype": "float32", "crs": "EPSG:32633",
               "transform": Affine(30.0, 0, 500000.0, 0, -30.0, 4600000.0), "nodata": float("nan")}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    to_cog(path, categorical=False)
    cog = _cog(path)
    assert cog["layout"] == "COG" and cog["tiled"] and cog["overviews"] == [2, 4]
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), data)  # lossless (deflate): the full-resolution values unchanged
        assert src.transform == profile["transform"] and src.crs == profile["crs"]


def test_a_full_queue_answers_429(server: Server, tmp_path: Path) -> None:
    busy = write_scene(tmp_path / "busy.tif", repeat=2)  # keeps the worker busy for a few seconds
    small = samples.path("coast")
    with server.client() as client:
        first = _submit(client, busy)
        assert first.status_code == 202, first.text
        while client.get(f"/api/jobs/{first.json()['id']}").json()["status"] == "queued":
            time.sleep(0.05)
        accepted = [first.json()["id"]]
        answers = []
        for _ in range(MAX_JOBS + 1):
            response = _submit(client, small)
            answers.append(response.status_code)
            if response.status_code == 202:
                accepted.append(response.json()["id"])
        assert answers == [202] * MAX_JOBS + [429], answers
        assert (
            "queued"
            in client.post("/api/jobs", files={"raster": ("c.tif", small.read_bytes())}).json()["error"]["message"]
        )
        finished = [wait_for_job(client, job_id) for job_id in accepted]
        assert all(j["status"] == "done" for j in finished), [j["error"] for j in finished]
        assert _submit(client, small).status_code == 202  # room again once they ran


def test_a_client_that_disconnects_does_not_kill_its_job(server: Server, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "left-behind.tif", repeat=2)
    request = httpx.Request("POST", f"{server.url}/api/jobs", files={"raster": (scene.name, scene.read_bytes())})
    body = request.read()
    head = f"POST /api/jobs HTTP/1.1\r\nHost: {request.url.netloc.decode()}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host"
    )
    port = int(server.url.rsplit(":", 1)[1])
    with server.client() as client:
        before = {j["id"] for j in client.get("/api/jobs").json()["jobs"]}
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(head.encode() + b"\r\n" + body)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the server has the job; the client leaves without reading
                new = [j for j in client.get("/api/jobs").json()["jobs"] if j["id"] not in before]
                if new:
                    break
                time.sleep(0.05)
        assert new and new[0]["input"] == "left-behind.tif"
        job = wait_for_job(client, new[0]["id"])
    assert job["status"] == "done", job["error"]
    assert job["progress"]["done"] == job["progress"]["total"] == 225


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    """Done jobs stay listed with their files; a queued job runs after the restart; the running one is failed."""
    data = tmp_path / "data"
    busy = write_scene(tmp_path / "busy.tif", repeat=2)
    args = ("--chat", "none", "--max-jobs", "4")
    first = start_server(tmp_path / "first", *args, data_dir=data)
    try:
        with first.client() as client:
            done = wait_for_job(client, _submit(client, samples.path("coast")).json()["id"])
            assert done["status"] == "done", done["error"]
            map_bytes = client.get(f"/api/jobs/{done['id']}/files/landcover.tif").content
            running = _submit(client, busy).json()["id"]
            queued = _submit(client, samples.path("coast"), name="after-restart.tif").json()["id"]
            while client.get(f"/api/jobs/{running}").json()["status"] != "running":
                time.sleep(0.05)
    finally:
        first.stop()
    second = start_server(tmp_path / "second", *args, data_dir=data)
    try:
        with second.client() as client:
            listed = {j["id"]: j for j in client.get("/api/jobs").json()["jobs"]}
            assert list(listed) == [queued, running, done["id"]]  # newest first
            assert listed[done["id"]] == done
            assert client.get(f"/api/jobs/{done['id']}/files/landcover.tif").content == map_bytes
            assert listed[running]["status"] == "failed" and "submit it again" in listed[running]["error"]
            rerun = wait_for_job(client, queued)
        assert rerun["status"] == "done" and rerun["input"] == "after-restart.tif"
    finally:
        second.stop()


def test_a_job_that_fails_says_why_without_the_servers_paths(server: Server, tmp_path: Path) -> None:
    """A raster whose every pixel is nodata passes the header checks, then fails in the worker, in one line."""
    from affine import Affine

    path = tmp_path / "empty.tif"
    profile = {"driver": "GTiff", "width": 96, "height": 96, "count": 3, "dtype": "uint8", "nodata": 0,
               "crs": "EPSG:32633", "transform": Affine(10.0, 0, 500000.0, 0, -10.0, 4600000.0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((3, 96, 96), np.uint8))
    with server.client() as client:
        response = _submit(client, path, name="all-nodata.tif")
        assert response.status_code == 202, response.text
        job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "failed" and job["files"] == [] and job["finished"]
    assert "no valid pixels" in job["error"] and "all-nodata.tif" in job["error"]
    assert str(server.data_dir) not in job["error"] and "input.tif" not in job["error"]


def test_unreadable_job_records_are_skipped_not_fatal(tmp_path: Path) -> None:
    """A restart reads what it can: a torn or foreign job.json is logged and left out, the rest load."""
    good = Job(id="0123456789ab", input="a.tif", source=str(tmp_path / "gone.tif"), status="done")
    (tmp_path / good.id).mkdir()
    (tmp_path / good.id / "job.json").write_text(json.dumps(good.__dict__))
    (tmp_path / "ffffffffffff").mkdir()
    (tmp_path / "ffffffffffff" / "job.json").write_text('{"id": "ffffffffffff", "status": "exploded"')
    queue = JobQueue(tmp_path, runner=lambda job, out, progress: ([], {}), max_queued=2)
    queue.start()
    try:
        assert [j.id for j in queue.all()] == [good.id]
    finally:
        queue.stop()
