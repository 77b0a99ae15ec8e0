"""A bounded LRU cache of image-encoder outputs, shared by the episodes of one model.

An image seen in several episodes (as query or support, in 1- and 5-shot, in several folds) is
encoded once. Keys are dataset image ids: the encoder input is always the model's square size,
so the features do not depend on the evaluation canvas. One cache serves one model (adapters
change the features): the evaluation makes a fresh one per model.

Memory policy: entries live on the CPU whatever the model's device, so the GPU holds only the
current episode's frames and the budget (``max_mb``) is host memory, measured from the tensors'
sizes. SAM2's position encodings depend only on the feature-map shape, so they are kept once for
the whole cache rather than per image (on Hiera-L at 1024 px they are ~4x the size of the
features themselves).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import torch

from sansa_cli.core.pseudo_video import FrameFeatures


def _nbytes(tensors: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """Image id -> that image's image-encoder features (batch of 1), least recently used out."""

    def __init__(self, max_mb: float = 1024.0, store_device: str = "cpu"):
        self.max_bytes = int(max_mb * 2**20)
        self.store_device = torch.device(store_device)
        self._entries: OrderedDict[str, list[torch.Tensor]] = OrderedDict()
        self._pos: list[torch.Tensor] | None = None
        self._pos_on: dict[str, list[torch.Tensor]] = {}  # the shared encodings, per device
        self._feat_sizes = None
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def frames(self, keys: Sequence[str], encode: Callable[[list[str]], FrameFeatures],
               device) -> FrameFeatures:
        """Features of ``keys`` (in order, repeats allowed) on ``device``; the keys not cached are
        encoded together in one call of ``encode(missing_keys)``."""
        missing = list(dict.fromkeys(k for k in keys if k not in self._entries))
        self.hits += sum(1 for k in keys if k in self._entries)
        self.misses += len(keys) - sum(1 for k in keys if k in self._entries)
        fresh: dict[str, FrameFeatures] = {}
        if missing:
            encoded = encode(missing)
            for i, key in enumerate(missing):
                fresh[key] = encoded.select([i])
        parts = []
        for key in keys:
            if key in fresh:
                parts.append(fresh[key])
            else:
                self._entries.move_to_end(key)
                parts.append(self._rebuild(self._entries[key], device))
        for key, frame in fresh.items():
            self._store(key, frame)
        return FrameFeatures.cat(parts).to(device) if len(parts) > 1 else parts[0].to(device)

    def _rebuild(self, feats: list[torch.Tensor], device) -> FrameFeatures:
        pos = self._pos_on.setdefault(str(device), [p.to(device) for p in self._pos])
        return FrameFeatures([f.to(device) for f in feats], pos, self._feat_sizes)

    def _store(self, key: str, frame: FrameFeatures) -> None:
        if self.max_bytes <= 0:
            return
        if self._pos is None:
            self._pos = [p.to(self.store_device) for p in frame.vision_pos]
            self._feat_sizes = frame.feat_sizes
        elif not all(torch.equal(a.to(self.store_device), b)
                     for a, b in zip(frame.vision_pos[-1:], self._pos[-1:])):
            return  # position encodings that depend on the image: keep nothing rather than lie
        feats = [f.to(self.store_device) for f in frame.vision_feats]
        size = _nbytes(feats)
        if size > self.max_bytes:
            return
        self._entries[key] = feats
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= _nbytes(evicted)

    def stats(self) -> dict:
        return {"entries": len(self), "megabytes": round(self.bytes / 2**20, 1),
                "hits": self.hits, "misses": self.misses, "hit_rate": round(self.hit_rate, 4)}
