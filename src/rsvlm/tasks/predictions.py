"""Append-only prediction logs, so a long evaluation resumes where it stopped and a crash loses at most
the requests in flight.

A run folder holds ``run.json`` (what produced the predictions: model, task protocol, data digest) and
``predictions.jsonl`` (one finished prediction per line, written whole and fsynced per batch). A line
cut short by a crash is dropped when the log is reopened, and a batch that cannot be written whole (disk
full) is cut back off, so the log never holds half a line. Reopening a folder with a different
``run.json`` is refused rather than mixing two runs' predictions; two processes on one folder are kept
apart by ``fileio.run_lock``, which the runner holds while it writes here.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import atomic_write_json, read_text, write_error

RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"
_START_AGAIN = "delete the file, or choose another --out folder, to start the run again"


class PredictionLog:
    """Finished predictions of one run, keyed by sample id."""

    def __init__(self, folder: str | Path, header: dict[str, Any]) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.folder, exc) from None
        run_path = self.folder / RUN_FILE
        if run_path.exists():
            previous = _load_json(run_path)
            if previous != json.loads(json.dumps(header, sort_keys=True, default=str)):
                changed = sorted(k for k in set(previous) | set(header) if previous.get(k) != header.get(k))
                raise RsvlmError(
                    f"{self.folder}: holds predictions of a different run (differs in: {', '.join(changed)}); "
                    "pass another --out folder or delete this one"
                )
        else:
            atomic_write_json(run_path, header, sort_keys=True, default=str)
        self.path = self.folder / PREDICTIONS_FILE
        self.records: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise DataError(self.path, f"cannot read the predictions ({exc.strerror or exc})", _START_AGAIN) from None
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):  # a line cut short by a crash: drop it so appends start clean
            self._truncate(len(complete))
        records: dict[str, dict[str, Any]] = {}
        for n, line in enumerate(complete.split(b"\n")[:-1], 1):
            try:
                record = json.loads(line.decode("utf-8"))
                sample_id = str(record["id"])
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError):
                raise DataError(f"{self.path}:{n}", "not a prediction line (JSON with an id)", _START_AGAIN) from None
            records[sample_id] = record
        return records

    def _truncate(self, size: int) -> None:
        try:
            os.truncate(self.path, size)
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append finished predictions in one write and fsync them; on failure none of them stays."""
        batch = list(records)
        if not batch:
            return
        data = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in batch).encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        start = -1
        try:
            start = os.fstat(fd).st_size
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            if start >= 0:  # the lines written before the disk filled up are not whole: cut them off
                with contextlib.suppress(OSError):  # else the next open drops the cut-short line anyway
                    os.ftruncate(fd, start)
            raise write_error(self.path, exc) from None
        finally:
            os.close(fd)
        for r in batch:
            self.records[str(r["id"])] = r


def _load_json(path: Path) -> dict[str, Any]:
    """A run folder's JSON record, or a one-line error when it is not one (edited, or not rsvlm's)."""
    try:
        value = json.loads(read_text(path, "run record"))
    except json.JSONDecodeError as exc:
        raise DataError(
            path, f"not a JSON run record (line {exc.lineno})", "delete the run folder to start again"
        ) from None
    if not isinstance(value, dict):
        raise DataError(path, "not a JSON run record (expected an object)", "delete the run folder to start again")
    return value
