"""Several classes at once: each target is encoded once, every class is decoded from it.

A class is a name and its references; its reference memory is computed once
(:meth:`SansaModel.encode_references`). For every target, memory attention and mask decoding
run for all classes in one batch (classes with the same number of references share a batch:
the target's features are repeated, each row attending to its own class's memory).

Each class's mask (logit > 0) is split into **instances**, its 8-connected components: SANSA
segments a concept, not objects, so touching objects of one class form one instance. An
instance's **score** in [0, 1] is the product of

- the mean probability (sigmoid of the logit) inside the instance: it separates confident parts
  from marginal blobs of the same mask;
- the decoder's predicted IoU of the class's mask (clipped to [0, 1]): SAM2's own estimate of the
  mask's quality, shared by all its parts;
- the object-presence probability when the base has SAM2's object-score head (the paper's base
  has none, so an absent class still gets a mask: ``min_score`` is what removes it).

Instances smaller than ``min_area`` pixels or scoring below ``min_score`` are dropped. The
**semantic** map gives each pixel of a kept instance the class with the highest logit there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from sansa_cli.core import pseudo_video as pv
from sansa_cli.core.components import Component, connected_components
from sansa_cli.core.device import autocast
from sansa_cli.core.images import ImageLike, describe
from sansa_cli.errors import UserInputError


@dataclass
class ClassMemory:
    """A class to label: its name, its references' memory, and a category id to keep."""

    name: str
    memory: object  # a ReferenceMemory
    category_id: int | None = None


@dataclass
class Instance:
    """One connected part of a class's mask in one target; its full-size ``mask`` is made
    when read (the parts of a class share one label map)."""

    component: Component
    score: float

    @property
    def mask(self) -> np.ndarray:
        return self.component.mask()  # bool, the target's size

    @property
    def area(self) -> int:
        return self.component.area


@dataclass
class ClassResult:
    """One class in one target: its whole mask, the decoder's scores, the kept instances."""

    name: str
    mask: np.ndarray  # bool, logit > 0, before instance filters
    predicted_iou: float
    object_score: float | None
    instances: list[Instance] = field(default_factory=list)


@dataclass
class LabelResult:
    """One target's labels: per class results and the semantic map of the kept instances."""

    source: str
    classes: list[ClassResult]
    semantic: np.ndarray  # uint8: 0 background, k + 1 = class k
    seconds: float = 0.0

    @property
    def size(self) -> tuple[int, int]:
        return self.semantic.shape  # (height, width)


def encode_classes(model, classes: Sequence) -> list[ClassMemory]:
    """Reference memory of every class. A class is ``(name, references)`` or an object with
    ``name``, ``references`` (and optionally ``category_id``)."""
    if not classes:
        raise UserInputError("no class given; give at least one class with references")
    encoded = []
    for item in classes:
        name, refs = (item.name, item.references) if hasattr(item, "references") else item
        encoded.append(ClassMemory(name, model.encode_references(refs),
                                   getattr(item, "category_id", None)))
    return encoded


@dataclass
class RawLabel:
    """One target's decoder outputs for every class, before upsampling: :meth:`finish` makes
    the :class:`LabelResult` (safe in worker threads, behind the model)."""

    groups: list[tuple[list[int], torch.Tensor]]  # (class indices, logits [n, 1, S/4, S/4])
    ious: list[float]
    presence: list[float | None]

    @torch.inference_mode()
    def finish(self, size: tuple[int, int], names: Sequence[str], min_area: int = 0,
               min_score: float = 0.0) -> LabelResult:
        """Full-size masks at ``size`` (height, width), instances, the semantic map."""
        logits: list = [None] * len(names)
        for members, low_res in self.groups:
            full = pv.upsample_logits(low_res, size)[:, 0].cpu()
            for row, c in enumerate(members):
                logits[c] = full[row]
        stacked = torch.stack(logits)
        per_class = [ClassResult(name, (stacked[c] > 0).numpy(), self.ious[c],
                                 self.presence[c],
                                 _instances(stacked[c], self.ious[c], self.presence[c],
                                            min_area, min_score))
                     for c, name in enumerate(names)]
        return LabelResult("", per_class, _semantic(stacked, per_class))


@torch.inference_mode()
def decode_classes(model, frame: pv.FrameFeatures, classes: list[ClassMemory]) -> RawLabel:
    """Memory attention and decoding of one encoded target for every class."""
    ious: list = [0.0] * len(classes)
    presence: list = [None] * len(classes)
    groups: dict[int, list[int]] = {}
    for c, cls in enumerate(classes):
        groups.setdefault(len(cls.memory), []).append(c)
    has_score = bool(model.sam.pred_obj_scores)
    decoded = []
    for k, members in groups.items():
        repeated = frame.select([0] * len(members))
        memories = [pv.FrameMemory.cat([classes[c].memory.frames[j] for c in members])
                    for j in range(k)]
        with autocast(model.device, model.precision):
            out = pv.segment_targets(model.sam, repeated, memories)
        decoded.append((members, out.low_res_logits.float()))
        for row, c in enumerate(members):
            ious[c] = float(out.iou[row].float())
            if has_score:
                presence[c] = torch.sigmoid(out.object_score_logits[row].float()).item()
    return RawLabel(decoded, ious, presence)


def _instances(logits: torch.Tensor, iou: float, presence: float | None, min_area: int,
               min_score: float) -> list[Instance]:
    mask = (logits > 0).numpy()
    labels, count = connected_components(mask)
    if count == 0:
        return []
    probability = torch.sigmoid(logits).numpy()
    sums = np.bincount(labels.ravel(), weights=probability.ravel(), minlength=count + 1)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    shared = min(max(iou, 0.0), 1.0) * (1.0 if presence is None else presence)
    kept = []
    for i in range(1, count + 1):
        score = float(sums[i] / areas[i]) * shared
        if areas[i] >= max(min_area, 1) and score >= min_score:
            kept.append(Instance(Component(labels, i, int(areas[i])), score))
    return kept


def _semantic(logits: torch.Tensor, results: list[ClassResult]) -> np.ndarray:
    """0 background, k + 1 where class k's kept instances win by logit."""
    kept = np.stack([np.isin(r.instances[0].component.labels,
                             [inst.component.index for inst in r.instances])
                     if r.instances else np.zeros(r.mask.shape, bool) for r in results])
    scores = np.where(kept, logits.numpy(), -np.inf)
    winner = scores.argmax(axis=0)
    return np.where(kept.any(axis=0), winner + 1, 0).astype(np.uint8)


def label_features(model, frames: pv.FrameFeatures, sizes: Sequence[tuple[int, int]],
                   classes: list[ClassMemory], min_area: int = 0,
                   min_score: float = 0.0) -> list[LabelResult]:
    """Labels of already-encoded targets; ``sizes`` gives each target's (height, width)."""
    names = [cls.name for cls in classes]
    return [decode_classes(model, frames.select([i]), classes).finish(size, names, min_area,
                                                                      min_score)
            for i, size in enumerate(sizes)]


def label(model, classes: list[ClassMemory], targets: Iterable[ImageLike],
          batch_size: int | None = None, min_area: int = 0,
          min_score: float = 0.0) -> Iterator[LabelResult]:
    """Yield one :class:`LabelResult` per target, in order; each target is encoded once."""
    size = batch_size or model.batch_size
    pending: list[ImageLike] = []
    for target in targets:
        pending.append(target)
        if len(pending) == size:
            yield from _label_batch(model, classes, pending, min_area, min_score)
            pending = []
    if pending:
        yield from _label_batch(model, classes, pending, min_area, min_score)


def _label_batch(model, classes, targets, min_area, min_score) -> list[LabelResult]:
    start = time.perf_counter()
    prepared = [model.prepare(t) for t in targets]
    frames = model.encode_prepared(prepared)
    results = label_features(model, frames, [t.size for t in prepared], classes,
                             min_area, min_score)
    seconds = (time.perf_counter() - start) / len(targets)
    for target, result in zip(targets, results):
        result.source, result.seconds = describe(target), seconds
    return results
