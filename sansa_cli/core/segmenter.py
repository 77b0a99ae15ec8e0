"""The public few-shot model: references in, one mask per target out.

>>> from sansa_cli import load_model
>>> model = load_model(sam2="sam2.1_hiera_large", adapters="adapters.safetensors", device="auto")
>>> results = model.predict(references=[("ref.jpg", "ref_mask.png")], targets=["a.jpg", "b.jpg"])
>>> results[0].mask.shape, results[0].predicted_iou

The reference memory is computed once and reused for every target; targets run in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from sansa_cli.core import pseudo_video as pv
from sansa_cli.core.batches import Prediction  # noqa: F401  (public here too)
from sansa_cli.core.input_profile import VIDEO_PREDICTOR, InputProfile
from sansa_cli.core.device import autocast
from sansa_cli.core.images import (
    ImageLike,
    describe,
    load_image,
    mask_to_input,
    preprocess,
)
from sansa_cli.core.prompts import point_inputs
from sansa_cli.core.references import Reference, load_reference
from sansa_cli.errors import UserInputError


@dataclass
class PreparedTarget:
    """A target read and fed to the model's input size: made by :meth:`SansaModel.prepare`,
    safe to make in worker threads ahead of the model."""

    image: Image.Image  # RGB, upright, the target's own size
    tensor: torch.Tensor  # [3, S, S] normalised model input (CPU)
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.image.height, self.image.width


@dataclass
class RawPrediction:
    """The decoder's output for one target before upsampling: :meth:`finish` turns it into a
    :class:`Prediction` (safe to call in worker threads, behind the model)."""

    logits: torch.Tensor  # [1, 1, S/4, S/4] float32, on the model's device
    predicted_iou: float
    object_score: float | None

    @torch.inference_mode()
    def finish(self, size: tuple[int, int]) -> Prediction:
        """The full-size mask at ``size`` (height, width): logits upsampled bilinearly, > 0."""
        full = pv.upsample_logits(self.logits, size)
        return Prediction(mask=(full[0, 0] > 0).cpu().numpy(),
                          predicted_iou=self.predicted_iou, object_score=self.object_score,
                          low_res_logits=self.logits[0, 0].cpu().numpy())


@dataclass
class ReferenceMemory:
    """The memory bank entries of the references: computed once, reused for every target.

    ``references`` keeps the loaded references and ``masks`` their object masks (for prompts,
    the mask SAM2 drew from the prompt), at the reference images' sizes.
    """

    frames: list[pv.FrameMemory]
    references: list[Reference] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)


class SansaModel:
    """A (possibly adapted) SAM2 that segments targets from references marked by masks."""

    def __init__(self, sam, device, precision: str = "fp32",
                 profile: InputProfile = VIDEO_PREDICTOR, strategy=None, base_name: str = "",
                 batch_size: int = 4, adapter_file=None):
        self.sam = sam
        self.device = torch.device(device)
        self.precision = precision
        self.profile = profile  # how images and reference masks are fed, memory kept
        self.strategy = strategy
        self.base_name = base_name
        self.batch_size = batch_size
        self.adapter_file = adapter_file  # the file the strategy's weights came from, if any

    @property
    def image_size(self) -> int:
        return int(self.sam.image_size)

    @property
    def resize(self) -> str:
        return self.profile.resize

    @property
    def memory_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.profile.memory_dtype == "bf16" else torch.float32

    def _batch(self, images, pre_resize: int | None) -> torch.Tensor:
        return torch.stack([preprocess(img, self.image_size, self.resize, pre_resize)
                            for img in images]).to(self.device)

    def prepare(self, target: ImageLike) -> PreparedTarget:
        """Read one target and resize and normalise it for the model (no model work)."""
        image = load_image(target)
        return PreparedTarget(image, preprocess(image, self.image_size, self.resize),
                              describe(target))

    @torch.inference_mode()
    def encode_prepared(self, targets: Sequence[PreparedTarget]) -> pv.FrameFeatures:
        """Image-encoder features of prepared targets, as one batch."""
        batch = torch.stack([t.tensor for t in targets]).to(self.device)
        with autocast(self.device, self.precision):
            return pv.encode_frames(self.sam, batch)

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image],
                      on_batch: Callable[[int], None] | None = None,
                      pre_resize: int | None = None) -> pv.FrameFeatures:
        """Image-encoder features of loaded RGB images, in batches of ``batch_size``;
        ``pre_resize``: the square a benchmark loader first resizes images to (evaluation)."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = self._batch(images[start:start + self.batch_size], pre_resize)
            with autocast(self.device, self.precision):
                chunks.append(pv.encode_frames(self.sam, batch))
            if on_batch:
                on_batch(batch.shape[0])
        return pv.FrameFeatures.cat(chunks)

    @torch.inference_mode()
    def memory_from_features(self, frames: pv.FrameFeatures, references: Sequence[Reference],
                             pre_resize: int | None = None) -> ReferenceMemory:
        """Reference memory from already-encoded reference frames (one frame per reference);
        ``pre_resize`` as for :meth:`encode_images` (mask references only)."""
        memories, masks = [], []
        with autocast(self.device, self.precision):
            for i, ref in enumerate(references):
                memory, mask = self._reference_memory(frames.select([i]), ref, pre_resize)
                memory.features = memory.features.to(self.memory_dtype)
                memories.append(memory)
                masks.append(mask)
        return ReferenceMemory(memories, list(references), masks)

    def encode_references(self, references: Sequence[tuple[ImageLike, object]]
                          ) -> ReferenceMemory:
        """Encode references into memory. Each is ``(image, marking)`` where the marking is a
        mask (path, PIL image, array) or a prompt (``Points``, ``Box``, ``Scribble`` from
        :mod:`sansa_cli.core.prompts`); already loaded :class:`Reference` objects are taken as they
        are."""
        if not references:
            raise UserInputError("no reference given; pass at least one (image, mask) pair")
        loaded = [ref if isinstance(ref, Reference) else load_reference(*ref)
                  for ref in references]
        frames = self.encode_images([ref.image for ref in loaded])
        return self.memory_from_features(frames, loaded)

    def _reference_memory(self, frames: pv.FrameFeatures, ref: Reference,
                          pre_resize: int | None = None):
        if ref.prompt is None:
            mask = mask_to_input(ref.mask, self.image_size, self.profile.mask_rule,
                                 pre_resize)[None].to(self.device)
            return pv.reference_memory(self.sam, frames, mask=mask)[0], ref.mask
        points = point_inputs(ref.prompt, ref.image.width, ref.image.height, self.image_size)
        points = {k: v.to(self.device) for k, v in points.items()}
        memory, low_res = pv.reference_memory(self.sam, frames, points=points)
        drawn = pv.upsample_logits(low_res.float(), (ref.image.height, ref.image.width))
        return memory, (drawn[0, 0] > 0).cpu().numpy()

    @torch.inference_mode()
    def segment_features(self, memory: ReferenceMemory, frames: pv.FrameFeatures,
                         sizes: Sequence[tuple[int, int]]) -> list[Prediction]:
        """Predictions for already-encoded target frames; ``sizes`` gives each output mask's
        (height, width)."""
        return [raw.finish(size) for raw, size in zip(self.decode(memory, frames), sizes)]

    @torch.inference_mode()
    def decode(self, memory: ReferenceMemory, frames: pv.FrameFeatures) -> list[RawPrediction]:
        """Memory attention over the references and the mask decoder, for encoded targets;
        the masks stay at the decoder's size until :meth:`RawPrediction.finish`."""
        with autocast(self.device, self.precision):
            out = pv.segment_targets(self.sam, frames, memory.frames)
        has_score = bool(self.sam.pred_obj_scores)
        return [RawPrediction(out.low_res_logits[i:i + 1].float(), float(out.iou[i].float()),
                              torch.sigmoid(out.object_score_logits[i].float()).item()
                              if has_score else None)
                for i in range(out.low_res_logits.shape[0])]

    def segment(self, memory: ReferenceMemory, targets: Iterable[ImageLike],
                batch_size: int | None = None,
                on_batch: Callable[[int], None] | None = None) -> Iterator[Prediction]:
        """Yield one :class:`Prediction` per target, in order, reusing ``memory``."""
        from sansa_cli.core.batches import segment_in_batches

        return segment_in_batches(self, memory, targets, batch_size or self.batch_size, on_batch)

    def label(self, classes: Sequence, targets: Iterable[ImageLike], batch_size: int | None = None,
              min_area: int = 0, min_score: float = 0.0):
        """Label every target with several classes at once: yields one
        :class:`~sansa_cli.core.labelling.LabelResult` per target (per-class masks, instances
        with scores, a semantic map). A class is ``(name, references)`` or an object with
        ``name`` and ``references`` (references as for :meth:`encode_references`); each target
        is encoded once for all classes (see :mod:`sansa_cli.core.labelling`)."""
        from sansa_cli.core import labelling

        encoded = labelling.encode_classes(self, classes)
        return labelling.label(self, encoded, targets, batch_size, min_area, min_score)

    def predict(self, references: Sequence[tuple[ImageLike, object]],
                targets: Sequence[ImageLike], batch_size: int | None = None) -> list[Prediction]:
        """Segment every target from the references (see :meth:`encode_references`);
        one :class:`Prediction` per target."""
        memory = self.encode_references(references)
        return list(self.segment(memory, targets, batch_size))
