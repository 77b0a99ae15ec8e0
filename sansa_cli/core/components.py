"""Connected components of boolean masks (8-connectivity), with numpy only.

Row runs are joined with a union-find, so the cost grows with the number of runs, not pixels:
no scipy or OpenCV is needed. Where OpenCV is installed (the ``labels`` extra), its labelling
does the same work in C and is renumbered to the same raster order, so the result does not
depend on which one ran. Used to split a class's mask into instances and to find the largest
part of a mask (prompt sampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Component:
    """One component of a shared label map: its mask is made only when asked for, so a mask
    split into many parts holds one label map, not a full-size mask per part."""

    labels: np.ndarray  # int32 HxW, shared by every component of the map
    index: int  # this component's label
    area: int  # its pixels

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    def mask(self) -> np.ndarray:
        """The component as a bool HxW mask (a new array each call)."""
        return self.labels == self.index


def _runs(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) columns of the True runs of a 1-D bool row."""
    padded = np.concatenate(([False], row, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(labels, count): int32 labels HxW, 0 for background and 1..count for the 8-connected
    components, numbered in raster order of their first pixel."""
    mask = np.asarray(mask, bool)
    try:
        import cv2
    except ImportError:
        return _union_find_components(mask)
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8,
                                            ltype=cv2.CV_32S)
    return _raster_order(labels, count - 1), count - 1


def _raster_order(labels: np.ndarray, count: int) -> np.ndarray:
    """``labels`` renumbered 1..count by the raster position of each component's first pixel."""
    if count == 0:
        return labels.astype(np.int32)
    values, first = np.unique(labels.ravel(), return_index=True)
    order = np.argsort(first[values > 0], kind="stable")
    mapping = np.zeros(values.max() + 1, np.int32)
    mapping[values[values > 0][order]] = np.arange(1, count + 1, dtype=np.int32)
    return mapping[labels]


def _union_find_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    runs: list[tuple[int, int, int]] = []  # (row, start, end)
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []
    for y in range(mask.shape[0]):
        starts, ends = _runs(mask[y])
        current, first = [], 0
        for x0, x1 in zip(starts.tolist(), ends.tolist()):
            rid = len(runs)
            runs.append((y, x0, x1))
            parent.append(rid)
            # 8-connectivity: runs of adjacent rows touch if they overlap when widened by 1.
            # Both rows' runs are sorted, so one sweep finds every touching pair.
            while first < len(previous) and runs[previous[first]][2] < x0:
                first += 1
            k = first
            while k < len(previous) and runs[previous[k]][1] <= x1:
                a, b = find(previous[k]), find(rid)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                k += 1
            current.append(rid)
        previous = current
    labels = np.zeros(mask.shape, np.int32)
    number: dict[int, int] = {}
    for rid, (y, x0, x1) in enumerate(runs):
        root = find(rid)
        labels[y, x0:x1] = number.setdefault(root, len(number) + 1)
    return labels, len(number)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (ties: first in raster order)."""
    labels, count = connected_components(mask)
    if count == 0:
        return np.zeros(np.shape(mask), bool)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return labels == int(np.argmax(areas)) + 1
