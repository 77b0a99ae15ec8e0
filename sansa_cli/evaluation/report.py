"""What an evaluation leaves behind: the terminal table, results.json, per_class.csv, pictures.

Scores are percentages (as in the papers' tables). The benchmark figure of a shot is the mean of
the per-fold mIoU.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.artifacts.files import finite_json, write_bytes_atomic
from sansa_cli.evaluation.metrics import ClassSums, EpisodeCounts


@dataclass
class Score:
    model: str
    fold: int
    shot: int
    sums: ClassSums
    classes: list[int]
    rows: list[dict[str, Any]]

    @property
    def miou(self) -> float:
        return 100.0 * self.sums.miou(self.classes)

    @property
    def fb_iou(self) -> float:
        return 100.0 * self.sums.fb_iou(self.classes)

    def summary(self) -> dict[str, Any]:
        seconds = [r["seconds"] for r in self.rows]
        return {
            "model": self.model, "fold": self.fold, "shot": self.shot,
            "miou": round(self.miou, 4), "fb_iou": round(self.fb_iou, 4),
            "episodes": len(self.rows), "classes": len(self.classes),
            "classes_sampled": sum(1 for c in self.classes if self.sums.row(c)[4] > 0),
            "seconds_per_episode": round(float(np.mean(seconds)), 4) if seconds else None,
            "peak_memory_mb": max((r["peak_memory_mb"] for r in self.rows), default=None),
        }


def score(model: str, fold: int, shot: int, classes: list[int], rows: list[dict]) -> Score:
    rows = sorted(rows, key=lambda r: r["index"])
    sums = ClassSums.from_episodes(
        (r["class"], EpisodeCounts(r["fg_intersection"], r["fg_union"], r["bg_intersection"],
                                   r["bg_union"])) for r in rows)
    return Score(model, fold, shot, sums, classes, rows)


def means(scores: list[Score]) -> list[dict[str, Any]]:
    """Mean over folds of mIoU and FB-IoU, per model and shot."""
    groups: dict[tuple[str, int], list[Score]] = {}
    for s in scores:
        groups.setdefault((s.model, s.shot), []).append(s)
    return [{"model": model, "shot": shot, "folds": [s.fold for s in group],
             "miou": float(np.mean([s.miou for s in group])),
             "fb_iou": float(np.mean([s.fb_iou for s in group]))}
            for (model, shot), group in groups.items()]


def write_results(out: Path, settings: dict, versions: dict, scores: list[Score],
                  extra: dict) -> None:
    body = {"format": "sansa-eval-results", "version": 1, "settings": settings,
            "versions": versions, "results": [s.summary() for s in scores],
            "mean": [{**m, "miou": round(m["miou"], 4), "fb_iou": round(m["fb_iou"], 4)}
                     for m in means(scores)], **extra}
    write_bytes_atomic(out / "results.json", (finite_json(body) + "\n").encode())


def write_per_class(out: Path, scores: list[Score], class_name) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "fold", "shot", "class_id", "class_name", "intersection", "union",
                     "iou", "episodes"])
    for s in scores:
        for cid in s.classes:
            row = s.sums.row(cid)
            writer.writerow([s.model, s.fold, s.shot, cid, class_name(s.fold, cid), int(row[0]),
                             int(row[1]), f"{100.0 * s.sums.class_iou(cid):.4f}", int(row[4])])
    write_bytes_atomic(out / "per_class.csv", buffer.getvalue().encode())


def table(title: str, scores: list[Score]):
    """A rich table: one row per fold and a mean row; columns per shot (and per model)."""
    from rich.table import Table

    models = list(dict.fromkeys(s.model for s in scores))
    shots = sorted({s.shot for s in scores})
    folds = sorted({s.fold for s in scores})
    by_key = {(s.model, s.fold, s.shot): s for s in scores}
    result = Table(title=title)
    result.add_column("fold", justify="right")
    for model in models:
        for shot in shots:
            prefix = f"{model} " if len(models) > 1 else ""
            result.add_column(f"{prefix}{shot}-shot mIoU", justify="right")
            result.add_column(f"{prefix}{shot}-shot FB-IoU", justify="right")
    for fold in folds:
        cells = []
        for model in models:
            for shot in shots:
                s = by_key.get((model, fold, shot))
                cells += [f"{s.miou:.1f}", f"{s.fb_iou:.1f}"] if s else ["-", "-"]
        result.add_row(str(fold), *cells)
    mean_rows = {(m["model"], m["shot"]): m for m in means(scores)}
    cells = []
    for model in models:
        for shot in shots:
            m = mean_rows.get((model, shot))
            cells += [f"{m['miou']:.1f}", f"{m['fb_iou']:.1f}"] if m else ["-", "-"]
    result.add_row("mean", *cells, style="bold")
    return result


def write_sheet(path: Path, dataset, episode, prompts: list, prediction: np.ndarray,
                truth: np.ndarray, iou: float) -> None:
    """The episode's picture sheet (see :func:`sansa_cli.visualize.pictures.episode_sheet`);
    ``prompts`` are the references' prompts as the episode used them (None for masks)."""
    from sansa_cli.visualize.pictures import episode_sheet, png_bytes

    references = [(dataset.load_image(support), dataset.load_mask(support, episode.class_id) == 1,
                   prompt) for support, prompt in zip(episode.references, prompts)]
    title = (f"{dataset.name} fold {dataset.fold} episode {episode.index}: "
             f"{dataset.class_name(episode.class_id)}, {len(episode.references)}-shot, "
             f"IoU {100 * iou:.1f}")
    sheet = episode_sheet(references, dataset.load_image(episode.target), prediction, truth, title)
    write_bytes_atomic(path, png_bytes(sheet))

