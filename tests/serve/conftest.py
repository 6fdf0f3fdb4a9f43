"""The REAL ``rsvlm serve`` process on a free loopback port, its index, and its root folder.

Every test here talks HTTP to a server started exactly as a user starts it (``python -m rsvlm serve …``), so the
token check, the limits, the lifespan and the job worker are the ones that ship. The main server runs everything a
plain ``rsvlm serve`` runs, the default chat model included (loaded only by the one chat test); the others use
``--chat none``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rsvlm import samples

TOKEN = "test-token-0123456789abcdef"
START_SECONDS = 180.0
LAUNCH = (
    "import sys; from rsvlm.cli import main as m; from rsvlm.cli.serve import serve; "
    "m.app.command('serve')(serve); sys.argv[0] = 'rsvlm'; m.main()"
)
"""Until ``rsvlm.cli.main`` registers ``serve``, the same CLI entry point with the command added the same way."""


def rsvlm_command() -> list[str]:
    """``python -m rsvlm`` when it knows ``serve``, else the same CLI with ``serve`` registered as main.py will."""
    from rsvlm.cli import main

    if any(c.name == "serve" for c in main.app.registered_commands):
        return [sys.executable, "-m", "rsvlm"]
    return [sys.executable, "-c", LAUNCH]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server process, its URL, data folder and log."""

    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    headers: dict[str, str] = field(default_factory=dict)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=120.0, **kwargs)  # type: ignore[arg-type]

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(folder: Path, *args: str, token: str | None = None, data_dir: Path | None = None) -> Server:
    """Start ``rsvlm serve`` with ``args`` on a free port and wait until /api/health answers."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data = data_dir or folder / "data"
    log = folder / f"server-{port}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("RSVLM_TOKEN", None)
    if token is not None:
        env["RSVLM_TOKEN"] = token  # the env variable, as a user would keep the token out of `ps`
    command = [*rsvlm_command(), "serve", "--port", str(port), "--data-dir", str(data), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    server = Server(f"http://127.0.0.1:{port}", process, data, log, headers)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rsvlm serve exited with {process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/api/health", headers=headers, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop()
    pytest.fail(f"rsvlm serve did not answer within {START_SECONDS:.0f} s:\n{server.log_text()[-3000:]}")


def write_scene(path: Path, repeat: int = 1) -> Path:
    """A real RGB scene as a georeferenced GeoTIFF (the 256-px farmland sample, ``repeat`` x ``repeat`` times side by
    side, 10 m UTM), for the index and for jobs that must run a while (``repeat=2``: 225 tiles, a few seconds)."""
    import rasterio
    from affine import Affine
    from PIL import Image

    rgb = np.tile(np.asarray(Image.open(samples.path("farmland")).convert("RGB")), (repeat, repeat, 1))
    profile = {
        "driver": "GTiff", "width": rgb.shape[1], "height": rgb.shape[0], "count": 3, "dtype": "uint8",
        "crs": "EPSG:32618", "transform": Affine(10.0, 0.0, 444730.0, 0.0, -10.0, 4172460.0),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(rgb, -1, 0))
    return path


@pytest.fixture(scope="session")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's --root: a real scene, a non-image with a raster's name, and a symlink pointing outside."""
    root = tmp_path_factory.mktemp("root")
    shutil.copy(samples.path("coast"), root / "coast.tif")
    (root / "sub").mkdir()
    shutil.copy(samples.path("coast"), root / "sub" / "coast copy.tif")
    (root / "notes.tif").write_text("not a raster\n")
    outside = tmp_path_factory.mktemp("outside") / "secret.tif"
    shutil.copy(samples.path("coast"), outside)
    (root / "escape.tif").symlink_to(outside)
    return root


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real index built by `rsvlm index build`: three sample photos and a tiled scene (16 tiles)."""
    folder = tmp_path_factory.mktemp("index")
    scene = write_scene(folder / "farm_scene.tif")
    photos = [str(samples.path(n)) for n in ("beach", "parking_lot", "port")]
    out = folder / "index"
    command = [sys.executable, "-m", "rsvlm", "index", "build", *photos, str(scene), "--tile", "64", "--out", str(out)]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr
    return out


MAX_PIXELS = 100_000
"""The main server's pixel limit: the 256² samples pass, the 400² trees sample does not."""
MAX_JOBS = 2


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, index_dir: Path, roots: Path) -> Iterator[Server]:
    """The main server: no token, the default chat, the test index, one root, a 1 MiB body limit, a 2-job queue."""
    folder = tmp_path_factory.mktemp("server")
    args = [
        "--index", str(index_dir), "--root", str(roots), "--max-upload-mb", "1",
        "--max-pixels", str(MAX_PIXELS), "--max-jobs", str(MAX_JOBS),
    ]  # fmt: skip
    running = start_server(folder, *args)
    yield running
    running.stop()


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
    """Poll a job until it is done or failed; returns its last record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still not finished after {timeout:.0f} s")
