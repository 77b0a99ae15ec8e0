"""The public few-shot model: references in, one mask per target out.

>>> from sansa_cli import load_model
>>> model = load_model(sam2="sam2.1_hiera_large", adapters="adapters.safetensors", device="auto")
>>> results = model.predict(references=[("ref.jpg", "ref_mask.png")], targets=["a.jpg", "b.jpg"])
>>> results[0].mask.shape, results[0].iou

The reference memory is computed once and reused for every target; targets run in batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sansa_cli import pseudo_video as pv
from sansa_cli.device import autocast
from sansa_cli.errors import UserInputError
from sansa_cli.images import ImageLike, describe, load_image, mask_to_input, preprocess, reference_pair


@dataclass
class Prediction:
    """One target's result: ``mask`` (bool, target's original size) and its scores."""

    mask: np.ndarray
    iou: float  # the decoder's predicted IoU of the kept mask
    object_score: float | None  # probability that the object is present (None: no such head)
    low_res_logits: np.ndarray = field(repr=False)  # [S/4, S/4] mask logits before upsampling
    source: str = ""
    seconds: float = 0.0

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class ReferenceMemory:
    """The memory bank entries of the references: computed once, reused for every target."""

    frames: list[pv.FrameMemory]

    def __len__(self) -> int:
        return len(self.frames)


class SansaModel:
    """A (possibly adapted) SAM2 that segments targets from references marked by masks."""

    def __init__(self, sam, device, precision: str = "fp32", resize: str = "pil-bicubic",
                 strategy=None, base_name: str = "", batch_size: int = 4,
                 memory_dtype: torch.dtype = torch.bfloat16):
        self.sam = sam
        self.device = torch.device(device)
        self.precision = precision
        self.resize = resize
        self.strategy = strategy
        self.base_name = base_name
        self.batch_size = batch_size
        # SAM2's video predictor keeps memory features in bfloat16 on every device; so do we.
        self.memory_dtype = memory_dtype

    @property
    def image_size(self) -> int:
        return int(self.sam.image_size)

    def _batch(self, images) -> torch.Tensor:
        return torch.stack([preprocess(img, self.image_size, self.resize) for img in images]
                           ).to(self.device)

    @torch.inference_mode()
    def encode_references(self, references: Sequence[tuple[ImageLike, ImageLike]]
                          ) -> ReferenceMemory:
        """Encode (image, mask) references into memory, in batches."""
        if not references:
            raise UserInputError("no reference given; pass at least one (image, mask) pair")
        pairs = [reference_pair(image, mask) for image, mask in references]
        memories: list[pv.FrameMemory] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            images = self._batch([img for img, _ in chunk])
            masks = torch.stack([mask_to_input(m, self.image_size) for _, m in chunk]
                                ).to(self.device)
            with autocast(self.device, self.precision):
                frames = pv.encode_frames(self.sam, images)
                memory = pv.mask_reference_memory(self.sam, frames, masks)
            memory.features = memory.features.to(self.memory_dtype)
            memories.extend(memory.item(i) for i in range(len(chunk)))
        return ReferenceMemory(memories)

    @torch.inference_mode()
    def segment(self, memory: ReferenceMemory, targets: Iterable[ImageLike],
                batch_size: int | None = None,
                on_batch: Callable[[int], None] | None = None) -> Iterator[Prediction]:
        """Yield one :class:`Prediction` per target, in order, reusing ``memory``."""
        size = batch_size or self.batch_size
        pending: list[ImageLike] = []
        for target in targets:
            pending.append(target)
            if len(pending) == size:
                yield from self._segment_batch(memory, pending)
                if on_batch:
                    on_batch(len(pending))
                pending = []
        if pending:
            yield from self._segment_batch(memory, pending)
            if on_batch:
                on_batch(len(pending))

    def _segment_batch(self, memory: ReferenceMemory, targets: list[ImageLike]
                       ) -> list[Prediction]:
        start = time.perf_counter()
        images = [load_image(t) for t in targets]
        with autocast(self.device, self.precision):
            frames = pv.encode_frames(self.sam, self._batch(images))
            out = pv.segment_targets(self.sam, frames, memory.frames)
        has_score = bool(self.sam.pred_obj_scores)
        results = []
        for i, (target, img) in enumerate(zip(targets, images)):
            logits = out.low_res_logits[i:i + 1].float()
            full = F.interpolate(logits, size=(img.height, img.width), mode="bilinear",
                                 align_corners=False)
            score = torch.sigmoid(out.object_score_logits[i].float()).item() if has_score else None
            results.append(Prediction(
                mask=(full[0, 0] > 0).cpu().numpy(),
                iou=float(out.iou[i].float()),
                object_score=score,
                low_res_logits=logits[0, 0].cpu().numpy(),
                source=describe(target),
            ))
        per_target = (time.perf_counter() - start) / len(targets)
        for result in results:
            result.seconds = per_target
        return results

    def predict(self, references: Sequence[tuple[ImageLike, ImageLike]],
                targets: Sequence[ImageLike], batch_size: int | None = None) -> list[Prediction]:
        """Segment every target from the references; one :class:`Prediction` per target."""
        memory = self.encode_references(references)
        return list(self.segment(memory, targets, batch_size))
