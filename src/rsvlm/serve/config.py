"""What one ``rsvlm serve`` process is allowed to do: where it listens, who may call it, what it reads and how much.

Everything a request could abuse has a bound here, and the checks that need no model run in ``check()``, so a
public bind without a token or a root that does not exist stops with one line before anything loads.
Only the standard library is imported: the CLI reads this module at startup.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rsvlm.errors import RsvlmError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_CHAT = "rsvlm-lite-chat"
"""The chat model caption/ask load on first use (``rsvlm.models.chat.registry.DEFAULT_CHAT``)."""
NO_CHAT = "none"
"""``--chat none``: caption and ask answer 503 instead of loading a chat model."""
TOKEN_ENV = "RSVLM_TOKEN"
MIN_TOKEN_LENGTH = 16
"""A shorter token can be guessed by anyone who can reach a public port; 16 characters of token_urlsafe hold 96 bits."""

TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
MIB = 1024**2
MAX_QUESTION_CHARS = 500
"""Longest question /api/ask takes (the chat model's context is short)."""


def default_data_dir() -> Path:
    """Uploads, scratch files and job folders: ``$RSVLM_CACHE_DIR/serve`` (default ``~/.cache/rsvlm/serve``)."""
    return Path(os.environ.get("RSVLM_CACHE_DIR", Path.home() / ".cache" / "rsvlm")) / "serve"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything: treat it as public


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may make the server do (each answers with its own status when crossed)."""

    max_body_bytes: int = 32 * MIB
    """Largest request body (413): an upload, a form or a JSON query."""
    max_pixels: int = 50_000_000
    """Largest image read whole (413): classify, caption, ask and search by image. Scene jobs are read by tiles and
    bounded by their tile plan instead."""
    max_queued_jobs: int = 16
    """Jobs waiting behind the running one (429 beyond)."""
    max_labels: int = 100
    max_queries: int = 10


@dataclass(frozen=True)
class ServeConfig:
    """One server's settings; ``check()`` refuses the unsafe or impossible ones before anything loads."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    """Required on every request when set (header ``Authorization: Bearer`` or the page's cookie)."""
    index: Path | None = None
    """An archive from ``rsvlm index build``: enables /api/index, /api/search and /api/items."""
    roots: tuple[Path, ...] = ()
    """Folders whose files a job may name by path; no roots: jobs take uploads only."""
    data_dir: Path = field(default_factory=default_data_dir)
    model: str | None = None
    """Contrastive model (registry name or spec file); None: the default (or the index's own model)."""
    weights: Path | None = None
    chat: str | None = DEFAULT_CHAT
    """Chat model for caption/ask, loaded on first use; None: those endpoints answer 503."""
    limits: Limits = field(default_factory=Limits)

    def check(self) -> ServeConfig:
        """This config with absolute roots, or a one-line RsvlmError naming the setting and the fix."""
        if not 1 <= self.port <= 65535:
            raise RsvlmError(f"--port {self.port}: give a port number between 1 and 65535")
        if self.token is not None:
            if len(self.token) < MIN_TOKEN_LENGTH or not TOKEN_CHARS.fullmatch(self.token):
                raise RsvlmError(
                    f"--token / {TOKEN_ENV}: use at least {MIN_TOKEN_LENGTH} letters, digits or ._~+/=- (it travels "
                    "in a header and a cookie), e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'"
                )
        elif not is_loopback(self.host):
            raise RsvlmError(
                f"--host {self.host} accepts connections from other machines: give a token (--token or "
                f"{TOKEN_ENV}) or bind to 127.0.0.1"
            )
        roots = []
        for root in self.roots:
            resolved = root.expanduser().resolve()
            if not resolved.is_dir():
                raise RsvlmError(f"--root {root}: not an existing folder (give a folder of rasters jobs may read)")
            roots.append(resolved)
        if self.index is not None and not self.index.exists():
            raise RsvlmError(f"--index {self.index}: not found (build one with `rsvlm index build`)")
        limits = self.limits
        if limits.max_body_bytes < 1024 or limits.max_pixels < 1 or limits.max_queued_jobs < 1:
            raise RsvlmError("limits: --max-upload-mb and --max-jobs must be at least 1")
        return ServeConfig(
            host=self.host,
            port=self.port,
            token=self.token,
            index=None if self.index is None else self.index.expanduser().resolve(),
            roots=tuple(roots),
            data_dir=self.data_dir.expanduser().resolve(),
            model=self.model,
            weights=self.weights,
            chat=self.chat,
            limits=limits,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}/"
