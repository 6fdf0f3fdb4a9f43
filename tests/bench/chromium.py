"""Headless Chromium for the report tests: render a page, save a screenshot, return its console messages.

Test support, not product code: ``rsvlm bench`` writes the report; these tests check that it renders without a
console error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from rsvlm.errors import RsvlmError

_CONSOLE = re.compile(
    r'^\[[^\]\n]*:CONSOLE[^\]\n]*\] "(?P<message>.*?)", source: (?P<source>[^\n]*?) \((?P<line>\d+)\)$', re.M | re.S
)
"""A page console message as Chromium 150 logs it with ``--enable-logging=stderr``, e.g.
``[29899:29899:1128/003133.621562:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined", source: PAGE (1)``
(older builds write ``INFO:CONSOLE(1)``). Messages may span lines; the source and line number end the record."""


def console_messages(stderr: str) -> list[str]:
    """The page console messages in Chromium's stderr, as ``message (source:line)``.

    Chromium logs every console level of web content (log, warn, error, uncaught exceptions) alike at INFO, so the
    level cannot be told apart; a report has no script, so every message it causes counts as an error.
    """
    return [f"{m['message']} ({m['source']}:{m['line']})" for m in _CONSOLE.finditer(stderr)]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html: str | Path, png: str | Path, width: int = 1280, height: int = 2000, timeout: float = 60.0
) -> list[str]:
    """Render ``html`` in headless Chromium, save a ``width`` x ``height`` PNG, return the page's console messages.

    Runs in a throw-away profile (parallel runs do not share a lock) and its own process group, which is killed
    whole on timeout so no renderer outlives the call. Raises ``RsvlmError`` without Chromium or without a PNG.
    """
    exe = chromium_path()
    if exe is None:
        raise RsvlmError("no Chromium to render the report with: install it (Debian: apt-get install chromium)")
    page, shot = Path(html).resolve(), Path(png).resolve()
    if not page.is_file():
        raise RsvlmError(f"{page}: no such page to screenshot")
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rsvlm-chromium-", ignore_cleanup_errors=True) as profile:
        command = [
            exe,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            f"--window-size={width},{height}",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise RsvlmError(f"Chromium did not render {page.name} within {timeout:g} s") from None
        finally:
            _kill_group(proc.pid)  # helpers (zygote, GPU process) of this run only
    if proc.returncode != 0 or not shot.is_file():
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise RsvlmError(f"Chromium could not screenshot {page.name} (exit {proc.returncode}): {tail}")
    return console_messages(stderr)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
