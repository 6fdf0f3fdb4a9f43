"""Append-only prediction logs, so a long evaluation resumes where it stopped and a crash loses at most
the requests in flight.

A run folder holds ``run.json`` (what produced the predictions: model, task protocol, data digest) and
``predictions.jsonl`` (one finished prediction per line, written whole and fsynced per batch). A line
cut short by a crash is dropped when the log is reopened. Reopening a folder with a different
``run.json`` is refused rather than mixing two runs' predictions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rsvlm.errors import RsvlmError

RUN_FILE = "run.json"
PREDICTIONS_FILE = "predictions.jsonl"


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


class PredictionLog:
    """Finished predictions of one run, keyed by sample id."""

    def __init__(self, folder: str | Path, header: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        run_path = self.folder / RUN_FILE
        if run_path.is_file():
            previous = json.loads(run_path.read_text(encoding="utf-8"))
            if previous != json.loads(json.dumps(header, sort_keys=True, default=str)):
                changed = sorted(k for k in set(previous) | set(header) if previous.get(k) != header.get(k))
                raise RsvlmError(
                    f"{self.folder}: holds predictions of a different run (differs in: {', '.join(changed)}); "
                    "pass another --out folder or delete this one"
                )
        else:
            write_json_atomic(run_path, header)
        self.path = self.folder / PREDICTIONS_FILE
        self.records: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):  # a line cut short by a crash: drop it so appends start clean
            with self.path.open("r+b") as f:
                f.truncate(len(complete))
        records: dict[str, dict[str, Any]] = {}
        for n, line in enumerate(complete.decode("utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise RsvlmError(f"{self.path}:{n}: not a JSON line; delete the file to start the run again") from None
            records[str(record["id"])] = record
        return records

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append finished predictions in one write and fsync them."""
        batch = list(records)
        if not batch:
            return
        data = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in batch).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        for r in batch:
            self.records[str(r["id"])] = r
