"""Targets in batches through any staged model: the Python API's ``segment``.

A staged model (:class:`~sansa_cli.core.segmenter.SansaModel`, or the torch-free
:class:`~sansa_cli.onnx_runtime.OnnxSansa`) has ``prepare(target)``, ``encode_prepared(items)``,
``decode(memory, encoded)`` and results with ``finish(size)``; ``sansa predict`` overlaps those
stages in threads (:mod:`sansa_cli.predict.pipeline`), this runs them one after the other. No
torch here, so the torch-free runtime shares it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from sansa_cli.core.images import describe


@dataclass
class Prediction:
    """One target's result: ``mask`` (bool, target's original size) and its scores."""

    mask: np.ndarray
    predicted_iou: float  # the decoder's own estimate of the kept mask's IoU (not measured)
    object_score: float | None  # probability that the object is present (None: no such head)
    low_res_logits: np.ndarray = field(repr=False)  # [S/4, S/4] mask logits before upsampling
    source: str = ""
    seconds: float = 0.0

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def segment_in_batches(model, memory, targets: Iterable, batch_size: int,
                       on_batch: Callable[[int], None] | None = None) -> Iterator:
    """Yield one prediction per target, in order, ``batch_size`` targets per encoder batch."""
    pending: list = []
    for target in targets:
        pending.append(target)
        if len(pending) == batch_size:
            yield from _batch(model, memory, pending, on_batch)
            pending = []
    if pending:
        yield from _batch(model, memory, pending, on_batch)


def _batch(model, memory, targets: list, on_batch) -> list:
    start = time.perf_counter()
    prepared = [model.prepare(t) for t in targets]
    raws = model.decode(memory, model.encode_prepared(prepared))
    results = [raw.finish(item.size) for raw, item in zip(raws, prepared)]
    per_target = (time.perf_counter() - start) / len(targets)
    for target, result in zip(targets, results):
        result.source, result.seconds = describe(target), per_target
    if on_batch:
        on_batch(len(targets))
    return results
