"""One evaluation episode: references from the supports, the query's prediction, its score.

The supports' masks mark the references (class pixels = object; 255 ignore pixels count as
background for a reference) or, with a prompt type, the prompts drawn from them. Query and supports
are encoded in one batch through the feature cache. The prediction is scored on the evaluation
canvas: a square of side N (ground truth resized with nearest neighbour, the model's low-res
logits upsampled bilinearly, then > 0, as the peers do) or the query's original size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sansa_cli.core.prompt_sampling import prompt_name, sample_prompt
from sansa_cli.datasets.base import Episode, FewShotDataset
from sansa_cli.evaluation.cache import FeatureCache
from sansa_cli.evaluation.metrics import episode_counts


@dataclass
class EpisodeResult:
    """What one episode produced: its log row and, for pictures, the masks at the canvas."""

    row: dict[str, Any]
    prediction: np.ndarray  # bool, canvas size
    ground_truth: np.ndarray  # uint8 0/1/255, canvas size
    prompts: list  # each reference's prompt (None: marked by its mask), for pictures


def canvas_shape(canvas: int | None, height: int, width: int) -> tuple[int, int]:
    """(height, width) the episode is scored at: N x N, or the image's own size for None."""
    return (height, width) if canvas is None else (canvas, canvas)


def resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize as ``F.interpolate(mode='nearest')`` (the peers' ground truth)."""
    import torch
    import torch.nn.functional as F

    if mask.shape == tuple(shape):
        return mask
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(shape), mode="nearest")[0, 0].numpy().astype(mask.dtype)


def peak_memory_mb(device) -> float:
    """Peak memory so far: CUDA allocations on a GPU (reset per episode), process RSS on CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def _references(dataset: FewShotDataset, episode: Episode, images: dict, prompt: str, seed: int):
    from sansa_cli.core.references import Reference

    refs, kinds = [], []
    for j, support in enumerate(episode.references):
        mask = dataset.load_mask(support, episode.class_id) == 1
        marking = sample_prompt(prompt, mask, seed, episode.index, j)
        kind = prompt_name(marking)
        image = images[support]
        refs.append(Reference(image, mask, None) if kind == "mask"
                    else Reference(image, None, marking))
        kinds.append(kind)
    return refs, kinds


def run_episode(model, dataset: FewShotDataset, episode: Episode, cache: FeatureCache,
                canvas: int | None, prompt: str = "mask", seed: int = 0) -> EpisodeResult:
    """Predict and score one episode with ``model`` (a
    :class:`~sansa_cli.core.segmenter.SansaModel`)."""
    import torch

    start = time.perf_counter()
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)
    keys = [*episode.references, episode.target]
    images = {key: dataset.load_image(key) for key in dict.fromkeys(keys)}
    hits_before = cache.hits
    # A profile with pre_resize feeds images as the benchmark's loaders do: first resized to
    # the dataset's canvas (masks nearest), then to the model's size.
    pre = dataset.default_canvas if model.profile.pre_resize else None
    frames = cache.frames(
        keys, lambda missing: model.encode_images([images[k] for k in missing], pre_resize=pre),
        model.device)
    refs, kinds = _references(dataset, episode, images, prompt, seed)
    shot = len(episode.references)
    memory = model.memory_from_features(frames.select(list(range(shot))), refs, pre)
    query = images[episode.target]
    shape = canvas_shape(canvas, query.height, query.width)
    prediction = model.segment_features(memory, frames.select([shot]), [shape])[0]
    truth = resize_nearest(dataset.load_mask(episode.target, episode.class_id), shape)
    counts = episode_counts(prediction.mask, truth)
    row = {
        "index": episode.index, "class": episode.class_id, "query": episode.target,
        "fg_intersection": counts.fg_intersection, "fg_union": counts.fg_union,
        "bg_intersection": counts.bg_intersection, "bg_union": counts.bg_union,
        "iou": round(counts.iou, 6), "prompts": kinds,
        "seconds": round(time.perf_counter() - start, 4),
        "peak_memory_mb": round(peak_memory_mb(model.device), 1),
        "cached_frames": cache.hits - hits_before,
    }
    return EpisodeResult(row, prediction.mask, truth, [ref.prompt for ref in refs])
