"""Overlapped work for ``sansa predict``: targets read ahead, results written behind.

Three stages run at once so the model is rarely idle: worker threads decode and resize the next
targets (``prepare``), the calling thread runs the model on a batch (``step``), and worker
threads upsample, threshold and write the previous batch's outputs (``finish``). Queues are
bounded, so memory does not grow with the number of targets. Each stage does exactly what it did
one after the other (the same functions on the same inputs), so outputs are bit-identical for
any number of workers; ``workers=0`` runs everything on the calling thread.

The heavy parts of each stage (image decoding and PNG encoding in Pillow, resizing and
upsampling in torch) release Python's GIL, which is what lets threads overlap them.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence


def default_workers() -> int:
    """Worker threads per side when ``--workers`` is not given: one per CPU core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


class TargetFailed(Exception):
    """Reading target number ``index`` (0-based) failed with ``error``; every target before it
    was finished (its outputs written) before this is raised."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(str(error))
        self.index, self.error = index, error


@dataclass
class Stages:
    """What happens to each target: ``prepare(target) -> item`` (worker thread),
    ``step(items) -> outputs`` (the calling thread, one batch), ``finish(item, output) -> row``
    (worker thread)."""

    prepare: Callable[[Any], Any]
    step: Callable[[list], Sequence[Any]]
    finish: Callable[[Any, Any], Any]


def run_stages(targets: Sequence, stages: Stages, batch_size: int,
               workers: int) -> Iterator[tuple[Any, Any]]:
    """Yield ``(target, row)`` for every target, in order, once its outputs are finished.

    A target that fails to prepare raises :class:`TargetFailed` after the targets before it
    are finished; a failure in ``step`` or ``finish`` propagates as it is.
    """
    if workers <= 0:
        yield from _sequential(targets, stages, batch_size)
        return
    readers = ThreadPoolExecutor(workers, thread_name_prefix="sansa-read")
    writers = ThreadPoolExecutor(workers, thread_name_prefix="sansa-write")
    try:
        yield from _overlapped(targets, stages, batch_size, workers, readers, writers)
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)


def _sequential(targets, stages: Stages, batch_size: int):
    for start in range(0, len(targets), batch_size):
        chunk = targets[start:start + batch_size]
        items = []
        for offset, target in enumerate(chunk):
            try:
                items.append(stages.prepare(target))
            except Exception as exc:
                for done, item, output in zip(chunk, items, stages.step(items) if items else []):
                    yield done, stages.finish(item, output)
                raise TargetFailed(start + offset, exc) from exc
        for target, item, output in zip(chunk, items, stages.step(items)):
            yield target, stages.finish(item, output)


def _overlapped(targets, stages: Stages, batch_size: int, workers: int,
                readers: ThreadPoolExecutor, writers: ThreadPoolExecutor):
    ahead: deque[tuple[int, Any, Future]] = deque()  # being read, in order
    behind: deque[tuple[Any, Future]] = deque()  # being written, in order
    read_limit = batch_size + 2 * workers
    write_limit = batch_size + 2 * workers
    upcoming = iter(enumerate(targets))
    batch: list[tuple[Any, Any]] = []

    def fill():
        while len(ahead) < read_limit:
            nxt = next(upcoming, None)
            if nxt is None:
                return
            ahead.append((nxt[0], nxt[1], readers.submit(stages.prepare, nxt[1])))

    def run_batch():
        outputs = stages.step([item for _, item in batch])
        for (target, item), output in zip(batch, outputs):
            behind.append((target, writers.submit(stages.finish, item, output)))
        batch.clear()

    fill()
    while ahead:
        index, target, future = ahead.popleft()
        try:
            item = future.result()
        except Exception as exc:
            if batch:
                run_batch()
            while behind:
                done, pending = behind.popleft()
                yield done, pending.result()
            raise TargetFailed(index, exc) from exc
        fill()
        batch.append((target, item))
        if len(batch) == batch_size or not ahead:
            run_batch()
        while len(behind) > write_limit or (behind and behind[0][1].done()):
            done, pending = behind.popleft()
            yield done, pending.result()
    while behind:
        done, pending = behind.popleft()
        yield done, pending.result()
