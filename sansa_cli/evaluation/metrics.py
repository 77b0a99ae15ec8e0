"""The few-shot segmentation metric of the HSNet lineage (HSNet, Matcher, GF-SAM, SANSA).

Per episode, with a binary prediction P and a ground truth G (255 = ignore, left out of both):
the foreground intersection |P and G| and union |P or G|, and the same for the background.
Per class: IoU_c = (sum of fg intersections) / max(sum of fg unions, 1) over that class's episodes,
so a class never sampled scores 0. mIoU = mean of IoU_c over the fold's classes (all of them, not
only the sampled ones). FB-IoU = mean over {background, foreground} of the intersections summed
over the fold divided by the unions summed over the fold. Sums are integers, so merging shards of
an evaluation (or a resumed run) is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

IGNORE = 255
# Columns of a class's row of sums.
COLUMNS = ("fg_intersection", "fg_union", "bg_intersection", "bg_union", "episodes")


@dataclass(frozen=True)
class EpisodeCounts:
    """Pixel counts of one episode (ignore pixels excluded)."""

    fg_intersection: int
    fg_union: int
    bg_intersection: int
    bg_union: int

    @property
    def iou(self) -> float:
        """This episode's foreground IoU (0 when both masks are empty)."""
        return self.fg_intersection / max(self.fg_union, 1)

    def as_row(self) -> list[int]:
        return [self.fg_intersection, self.fg_union, self.bg_intersection, self.bg_union, 1]


def episode_counts(prediction: np.ndarray, ground_truth: np.ndarray) -> EpisodeCounts:
    """Counts for a boolean ``prediction`` and a ground truth (bool, or uint8 0/1/255)."""
    pred = np.asarray(prediction).astype(bool)
    gt = np.asarray(ground_truth)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    valid = gt != IGNORE if gt.dtype != bool else np.ones(gt.shape, bool)
    obj = (gt == 1) & valid
    pred = pred & valid
    fg_inter = int(np.count_nonzero(pred & obj))
    fg_union = int(np.count_nonzero(pred | obj))
    n_valid = int(np.count_nonzero(valid))
    # background: the valid pixels outside P, and outside G
    bg_inter = n_valid - fg_union
    bg_union = n_valid - fg_inter
    return EpisodeCounts(fg_inter, fg_union, bg_inter, bg_union)


@dataclass
class ClassSums:
    """Per-class sums of episode counts; add episodes, merge shards, read the metrics."""

    rows: dict[int, np.ndarray] = field(default_factory=dict)  # class -> int64[5] (COLUMNS)

    def add(self, class_id: int, counts: EpisodeCounts) -> None:
        row = self.rows.setdefault(int(class_id), np.zeros(len(COLUMNS), np.int64))
        row += np.asarray(counts.as_row(), np.int64)

    def merge(self, other: "ClassSums") -> "ClassSums":
        merged = ClassSums({c: r.copy() for c, r in self.rows.items()})
        for cid, row in other.rows.items():
            merged.rows.setdefault(cid, np.zeros(len(COLUMNS), np.int64))
            merged.rows[cid] += row
        return merged

    @classmethod
    def from_episodes(cls, items: Iterable[tuple[int, EpisodeCounts]]) -> "ClassSums":
        sums = cls()
        for class_id, counts in items:
            sums.add(class_id, counts)
        return sums

    def to_array(self, classes: Sequence[int]) -> np.ndarray:
        """Dense int64 [len(classes), 5] in the order of ``classes`` (for all-reduce)."""
        unknown = sorted(set(self.rows) - {int(c) for c in classes})
        if unknown:
            raise ValueError(f"sums hold classes {unknown} outside the fold's class list")
        empty = np.zeros(len(COLUMNS), np.int64)
        return np.stack([self.rows.get(int(c), empty) for c in classes] or
                        [np.zeros((0, len(COLUMNS)), np.int64)]).reshape(-1, len(COLUMNS))

    @classmethod
    def from_array(cls, classes: Sequence[int], array: np.ndarray) -> "ClassSums":
        return cls({int(c): np.asarray(row, np.int64).copy()
                    for c, row in zip(classes, array) if row[4] > 0})

    def row(self, class_id: int) -> np.ndarray:
        return self.rows.get(int(class_id), np.zeros(len(COLUMNS), np.int64))

    def class_iou(self, class_id: int) -> float:
        row = self.row(class_id)
        return float(row[0]) / max(float(row[1]), 1.0)

    def miou(self, classes: Sequence[int]) -> float:
        """Mean of the per-class IoU over ``classes`` (the fold's), never-sampled ones as 0."""
        if not classes:
            return 0.0
        return float(np.mean([self.class_iou(c) for c in classes]))

    def fb_iou(self, classes: Sequence[int]) -> float:
        """Mean of background and foreground IoU, each pooled over the fold's classes."""
        total = self.to_array(classes)[:, :4].sum(axis=0)
        fg = float(total[0]) / max(float(total[1]), 1.0)
        bg = float(total[2]) / max(float(total[3]), 1.0)
        return (fg + bg) / 2.0

    @property
    def episodes(self) -> int:
        return int(sum(int(r[4]) for r in self.rows.values()))
