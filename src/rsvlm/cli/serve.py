"""``rsvlm serve``: the REST API and web page on this machine (loopback) or, with a token, on the network."""

from __future__ import annotations

import math
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.serve.config import ServeConfig


def serve(
    index: Annotated[
        Path | None, typer.Option("--index", help="Index folder from `rsvlm index build`: enables search.")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; anything but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="RSVLM_TOKEN", show_envvar=True, help="Required on every request (Bearer header)."
        ),
    ] = None,
    root: Annotated[
        list[Path] | None,
        typer.Option("--root", help="Folder whose rasters jobs may name by path (repeatable); none: uploads only."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Uploads and job folders \\[default: ~/.cache/rsvlm/serve]."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Contrastive model \\[default: the index's model, else rsvlm-lite]."),
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Local weights file for --model.")] = None,
    chat: Annotated[
        str,
        typer.Option("--chat", help="Chat model for caption/ask, loaded on first use; 'none' turns them off."),
    ] = "rsvlm-lite-chat",
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="Largest request body, in MiB.")
    ] = 32.0,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", min=1, help="Largest image read whole (classify, caption, ask, search).")
    ] = 50_000_000,
    max_jobs: Annotated[int, typer.Option("--max-jobs", min=1, help="Scene jobs that may wait in the queue.")] = 16,
) -> None:
    """Serve the models, the index and scene jobs over HTTP (REST API at /api, OpenAPI at /openapi.json, page at /)."""
    from rsvlm.serve.config import NO_CHAT, Limits, ServeConfig, default_data_dir

    if not math.isfinite(max_upload_mb):
        raise RsvlmError(f"--max-upload-mb {max_upload_mb}: give a size in MiB, e.g. 32")
    config = ServeConfig(
        host=host,
        port=port,
        token=token or None,
        index=index,
        roots=tuple(root or ()),
        data_dir=data_dir if data_dir is not None else default_data_dir(),
        model=model,
        weights=weights,
        chat=None if chat.lower() == NO_CHAT else chat,
        limits=Limits(max_body_bytes=int(max_upload_mb * 1024**2), max_pixels=max_pixels, max_queued_jobs=max_jobs),
    ).check()  # an unsafe bind, a missing root or index fails here, before any model loads
    _run(config)


def _run(config: ServeConfig) -> None:
    import uvicorn

    from rsvlm.fileio import run_lock
    from rsvlm.serve.app import create_app
    from rsvlm.serve.resources import Resources

    with run_lock(config.data_dir, "serve data folder"), _listen(config.host, config.port) as sock:
        # a second server on this folder, or a taken port, is refused before the model loads
        resources = Resources(config)
        resources.load()  # a wrong index or model is one line here, not a traceback in the server log
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config, resources), log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                limit_concurrency=256, server_header=False,
            )
        )  # fmt: skip
        print(f"rsvlm serve: {config.url}", file=sys.stderr, flush=True)
        server.run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one line saying why not (the port is taken, the address is not ours)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise RsvlmError(f"cannot listen on {host}:{port} ({reason}): choose another --port or --host") from None
    return sock
