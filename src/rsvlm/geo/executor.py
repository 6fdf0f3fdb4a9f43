"""Running a function over batches of tiles: in this process, on a local Dask scheduler, or on a cluster.

Tile work is embarrassingly parallel and each result is small (a few numbers per tile), so results
stream back in order while at most ``window`` batches are in flight: memory stays bounded whatever the
number of tiles. ``scheduler``:

- ``None`` or ``"sync"``: a plain loop in this process (the default; torch already uses every core);
- ``"threads"`` / ``"processes"``: Dask's local schedulers;
- ``"tcp://host:8786"`` (or any address ``distributed.Client`` accepts): a running Dask cluster. Workers need
  rsvlm installed and read the scene files themselves, so the paths must be visible to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from rsvlm.errors import RsvlmError

B = TypeVar("B")
R = TypeVar("R")

LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


def map_ordered(
    fn: Callable[[B], R], batches: Iterable[B], scheduler: str | None = None, *, window: int = 8
) -> Iterator[R]:
    """``fn(batch)`` for every batch, yielded in input order."""
    if scheduler in (None, "sync"):
        yield from (fn(b) for b in batches)
        return
    if scheduler in LOCAL_SCHEDULERS:
        yield from _dask_local(fn, batches, scheduler, window)
        return
    if scheduler is not None and "://" in scheduler:
        yield from _dask_cluster(fn, batches, scheduler, window)
        return
    raise RsvlmError(
        f"unknown scheduler {scheduler!r} (use sync, threads, processes, or a Dask address such as tcp://host:8786)"
    )


def _dask_local(fn: Callable[[B], R], batches: Iterable[B], scheduler: str, window: int) -> Iterator[R]:
    from dask import compute, delayed  # type: ignore[attr-defined]

    pending: list[B] = []
    for batch in batches:
        pending.append(batch)
        if len(pending) == window:
            yield from compute(*[delayed(fn)(b) for b in pending], scheduler=scheduler)
            pending = []
    if pending:
        yield from compute(*[delayed(fn)(b) for b in pending], scheduler=scheduler)


def _dask_cluster(fn: Callable[[B], R], batches: Iterable[B], address: str, window: int) -> Iterator[R]:
    try:
        from distributed import Client
    except ImportError:
        raise RsvlmError("a Dask cluster address needs the 'distributed' package (pip install distributed)") from None
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise RsvlmError(f"cannot reach the Dask scheduler at {address}: {exc} (is it running?)") from None
    with client:
        futures: list[Any] = []
        for batch in batches:
            futures.append(client.submit(fn, batch, pure=False))
            if len(futures) >= window:
                yield futures.pop(0).result()
        for future in futures:
            yield future.result()
