"""Tile batches through every scheduler: results come back in input order, bad schedulers fail with a clear error."""

from __future__ import annotations

import time

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.geo.executor import map_ordered


def square_all(batch: list[int]) -> list[int]:
    """Top level, so Dask's process scheduler can pickle it."""
    return [x * x for x in batch]


def _batches(n: int, size: int = 3) -> list[list[int]]:
    return [list(range(i * size, (i + 1) * size)) for i in range(n)]


@pytest.mark.parametrize("scheduler", [None, "sync", "synchronous", "threads", "processes"])
def test_results_in_input_order(scheduler: str | None) -> None:
    batches = _batches(19)  # more than two windows of 8, and a partial last window
    results = list(map_ordered(square_all, iter(batches), scheduler, window=8))
    assert results == [[x * x for x in b] for b in batches]


def test_results_stream_lazily_in_process() -> None:
    seen: list[int] = []

    def record(batch: list[int]) -> int:
        seen.append(batch[0])
        return batch[0]

    stream = map_ordered(record, iter(_batches(5)), None)
    assert next(stream) == 0 and seen == [0]  # the plain loop computes one batch at a time
    assert list(stream) == [3, 6, 9, 12]


def test_empty_input_gives_nothing() -> None:
    assert list(map_ordered(square_all, [], "threads")) == []


@pytest.mark.parametrize("scheduler", ["gpu", "tcp-host:8786", ""])
def test_unknown_scheduler_is_refused(scheduler: str) -> None:
    with pytest.raises(RsvlmError, match="unknown scheduler") as info:
        list(map_ordered(square_all, _batches(1), scheduler))
    assert "tcp://host:8786" in str(info.value)  # the message says what is accepted


def test_unreachable_cluster_is_a_clear_error() -> None:
    start = time.perf_counter()
    with pytest.raises(RsvlmError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"):
        list(map_ordered(square_all, _batches(2), "tcp://127.0.0.1:1"))
    assert time.perf_counter() - start < 30  # the client gives up after its 10 s connect timeout
