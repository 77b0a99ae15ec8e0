"""The few-shot pipeline on ONNX Runtime, without PyTorch: a folder from ``sansa export-onnx``.

>>> from sansa_cli.onnx_runtime import OnnxSansa
>>> model = OnnxSansa("sansa-onnx/")
>>> memory = model.encode_references([("ref.jpg", "ref_mask.png")])
>>> for result in model.segment(memory, ["a.jpg", "b.jpg"]):
...     print(result.source, result.predicted_iou, result.mask.shape)

Images and masks are read as ``sansa predict`` reads them (:mod:`sansa_cli.core.images`,
:mod:`sansa_cli.core.references`), prepared by the export's input profile in numpy
(:mod:`sansa_cli.onnx.arrays`), and the graphs run with onnxruntime. The reference memory is
computed once and reused; targets run in batches. Imports only numpy, Pillow, onnxruntime and
sansa modules that need neither torch nor sam2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from sansa_cli.core.batches import Prediction
from sansa_cli.core.images import describe, load_image
from sansa_cli.core.input_profile import apply_profile_options, profile_from_json
from sansa_cli.core.prompts import coords_and_labels
from sansa_cli.core.references import Reference, load_reference
from sansa_cli.errors import UserInputError
from sansa_cli.onnx.arrays import mask_to_input, preprocess, resize_bilinear, round_bf16
from sansa_cli.onnx.manifest import GRAPHS, MANIFEST_NAME, Manifest, read_manifest


#: one target's result: the same class as the torch model's (mask, predicted IoU, object score)
OnnxPrediction = Prediction


@dataclass
class OnnxPrepared:
    """A target read and prepared for the encoder (see :meth:`OnnxSansa.prepare`)."""

    image: object  # PIL RGB image, the target's own size
    array: np.ndarray  # [3, S, S] float32
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.image.height, self.image.width


@dataclass
class OnnxRaw:
    """The decoder's output for one target before upsampling (see :meth:`finish`)."""

    logits: np.ndarray  # [1, 1, S/4, S/4]
    predicted_iou: float
    object_score: float | None

    def finish(self, size: tuple[int, int]) -> OnnxPrediction:
        """The mask at ``size`` (height, width): logits upsampled bilinearly, > 0."""
        height, width = size
        full = resize_bilinear(self.logits, height, width)
        return OnnxPrediction(mask=full[0, 0] > 0, predicted_iou=self.predicted_iou,
                              object_score=self.object_score, low_res_logits=self.logits[0, 0])


@dataclass
class OnnxMemory:
    """The references' memory: ``features`` [K, mem_dim, h, w] and ``obj_ptr`` [K, C], with the
    loaded references and their object masks (for prompts: the mask SAM2 drew)."""

    features: np.ndarray
    obj_ptr: np.ndarray
    references: list[Reference] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.features.shape[0])


class OnnxSansa:
    """An exported sansa model run by onnxruntime.

    Args:
        folder: a folder written by ``sansa export-onnx`` (with ``sansa-onnx.json``).
        batch_size: targets per encoder batch.
        input_profile: ``--input-profile`` values on top of the recorded profile.
        threads: onnxruntime's intra-op threads (default: its own choice).
        providers: onnxruntime execution providers (default: the CPU).
    """

    def __init__(self, folder: str | Path, batch_size: int = 1,
                 input_profile: list[str] | None = None, threads: int | None = None,
                 providers: list[str] | None = None):
        if batch_size < 1:
            raise UserInputError(f"batch size {batch_size} must be at least 1")
        self.manifest: Manifest = read_manifest(folder)
        recorded = profile_from_json(json.dumps(self.manifest.profile),
                                     str(self.manifest.folder / MANIFEST_NAME))
        self.profile = apply_profile_options(recorded, input_profile)
        self.batch_size = batch_size
        self.providers = list(providers or ["CPUExecutionProvider"])
        self.sessions = _sessions(self.manifest, threads, self.providers)

    @property
    def image_size(self) -> int:
        return self.manifest.image_size

    #: what a run's summary records of the model (as :class:`~sansa_cli.core.segmenter.SansaModel`)
    precision = "fp32"
    strategy = None

    @property
    def base_name(self) -> str:
        return self.manifest.values.get("base_model", "")

    @property
    def device(self) -> str:
        return "onnxruntime:" + ",".join(self.providers)

    def prepare(self, target) -> OnnxPrepared:
        """Read one target and resize and normalise it for the encoder."""
        image = load_image(target)
        return OnnxPrepared(image, preprocess(image, self.image_size, self.profile.resize),
                            describe(target))

    def encode_prepared(self, targets: Sequence[OnnxPrepared]) -> list[np.ndarray]:
        """Feature levels of prepared targets, as one batch."""
        return self.run_graph("encoder", np.stack([t.array for t in targets]))

    def decode(self, memory: OnnxMemory, levels: list[np.ndarray]) -> list[OnnxRaw]:
        """Memory attention over the references and the mask decoder, for encoded targets."""
        (conditioned,) = self.run_graph("condition", levels[-1], memory.features, memory.obj_ptr)
        low_res, iou, score = self.run_graph("decoder", conditioned, *levels[:-1])
        return [OnnxRaw(low_res[i:i + 1], float(iou[i]),
                        float(1.0 / (1.0 + np.exp(-np.float64(score[i, 0]))))
                        if self.manifest.object_score else None)
                for i in range(low_res.shape[0])]

    def run_graph(self, graph: str, *arrays: np.ndarray) -> list[np.ndarray]:
        """The outputs of one graph (see the manifest) for its inputs, in order."""
        names = self.manifest.input_names(graph)
        return self.sessions[graph].run(None, dict(zip(names, arrays)))

    def encode_images(self, images: Sequence) -> list[np.ndarray]:
        """Feature levels [N, C, h, w] (high resolution first) of loaded RGB images."""
        size, chunks = self.image_size, []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack([preprocess(image, size, self.profile.resize)
                              for image in images[start:start + self.batch_size]])
            chunks.append(self.run_graph("encoder", batch))
        return [np.concatenate(level) for level in zip(*chunks)]

    def encode_references(self, references: Sequence) -> OnnxMemory:
        """Memory of the references: ``(image, marking)`` pairs (a mask, or a ``Points``,
        ``Box`` or ``Scribble`` prompt) or loaded :class:`Reference` objects."""
        if not references:
            raise UserInputError("no reference given; pass at least one (image, mask) pair")
        loaded = [ref if isinstance(ref, Reference) else load_reference(*ref)
                  for ref in references]
        levels = self.encode_images([ref.image for ref in loaded])
        features, pointers, masks = [], [], []
        for i, ref in enumerate(loaded):
            frame = [level[i:i + 1] for level in levels]
            memory, obj_ptr, mask = self._reference_memory(frame, ref)
            features.append(memory)
            pointers.append(obj_ptr)
            masks.append(mask)
        features = np.concatenate(features)
        if self.profile.memory_dtype == "bf16":  # as the torch path keeps memory
            features = round_bf16(features)
        return OnnxMemory(features, np.concatenate(pointers), loaded, masks)

    def _reference_memory(self, frame: list[np.ndarray], ref: Reference):
        size = self.image_size
        if ref.prompt is None:
            mask = mask_to_input(ref.mask, size, self.profile.mask_rule)[None]
            memory, obj_ptr = self.run_graph("mask_reference", *frame, mask)
            return memory, obj_ptr, ref.mask
        width, height = ref.image.width, ref.image.height
        coords, labels = coords_and_labels(ref.prompt, width, height)
        scale = np.array([size / width, size / height], dtype=np.float32)
        coords = (np.asarray(coords, np.float32) * scale)[None]
        labels = np.asarray([labels], dtype=np.int32)
        memory, obj_ptr, drawn = self.run_graph("prompt_reference", *frame, coords, labels)
        return memory, obj_ptr, resize_bilinear(drawn, height, width)[0, 0] > 0

    def segment_features(self, memory: OnnxMemory, levels: list[np.ndarray],
                         sizes: Sequence[tuple[int, int]]) -> list[OnnxPrediction]:
        """Predictions for encoded targets; ``sizes`` gives each mask's (height, width)."""
        return [raw.finish(size) for raw, size in zip(self.decode(memory, levels), sizes)]

    def segment(self, memory: OnnxMemory, targets: Iterable, batch_size: int | None = None,
                on_batch: Callable[[int], None] | None = None) -> Iterator[OnnxPrediction]:
        """Yield one :class:`OnnxPrediction` per target (a path, PIL image or array), in order,
        reusing ``memory``."""
        from sansa_cli.core.batches import segment_in_batches

        return segment_in_batches(self, memory, targets, batch_size or self.batch_size, on_batch)

    def predict(self, references: Sequence, targets: Sequence,
                batch_size: int | None = None) -> list[OnnxPrediction]:
        """Segment every target from the references; one prediction per target."""
        memory = self.encode_references(references)
        return list(self.segment(memory, targets, batch_size))


def _sessions(manifest: Manifest, threads: int | None, providers: list[str]) -> dict:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserInputError("running an ONNX export needs onnxruntime: pip install "
                             "onnxruntime (or 'sansa-cli[onnx]')") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return {name: ort.InferenceSession(str(manifest.graph_path(name)), options,
                                       providers=providers)
            for name in GRAPHS}
