"""Build COCO-20i in the HSNet layout from the official COCO 2014 instance JSON (``sansa prepare``).

Reads ``<coco_root>/annotations/instances_{train,val}2014.json`` and writes, under ``out`` only:

- ``annotations/{train2014,val2014}/<stem>.png``: one class-index PNG per annotated image, pixel =
  class index + 1 (class index = position of the category in COCO's category-id order, 0..79).
  Overlapping instances: instances are painted from the largest area to the smallest, so the
  smaller object stays on top (a person on a couch keeps its pixels). Crowd regions count as
  their class.
- ``splits/{trn,val}/fold{0..3}.pkl``: HSNet's split files,
  ``{class index: ['val2014/<file>', ...]}`` with all 80 keys; ``val/fold f`` lists fold f's
  classes {f + 4v}, ``trn/fold f`` the other 60.
  An image is listed for a class when the class covers at least ``min_pixels`` pixels of its
  final mask (default 2 x 32 x 32, PFENet's filter, which the HSNet lists are derived from).

Every file is written atomically; masks already present are kept and only read back (resume).
Source files are never touched.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sansa_cli.artifacts.files import write_bytes_atomic
from sansa_cli.datasets.base import Track, no_track
from sansa_cli.datasets.coco20i import NUM_CLASSES, fold_classes
from sansa_cli.datasets.reading import opened_image
from sansa_cli.datasets.segmentation import segmentation_mask
from sansa_cli.errors import DatasetError, MissingFileError

SPLITS = {"train2014": "trn", "val2014": "val"}
DEFAULT_MIN_PIXELS = 2 * 32 * 32


@dataclass
class BuildReport:
    """What ``build_coco20i`` did, for the summary."""

    out: Path
    written: int = 0
    kept: int = 0
    images: dict[str, int] = field(default_factory=dict)
    missing_images: list[Path] = field(default_factory=list)
    skipped_splits: list[str] = field(default_factory=list)
    split_files: list[Path] = field(default_factory=list)
    kept_split_files: list[Path] = field(default_factory=list)  # existing ones that differ

    def summary(self) -> tuple[str, ...]:
        """Lines for ``sansa prepare``'s summary."""
        images = ", ".join(f"{n} {split}" for split, n in self.images.items())
        return (f"coco20i masks in {self.out / 'annotations'}: {self.written} written, "
                f"{self.kept} kept from an earlier run ({images} annotated images)",
                *(f"no instances_{split}.json: {split} skipped" for split in self.skipped_splits),
                *(f"{path} exists and differs from the split built from the JSON: kept (yours, "
                  "e.g. HSNet's); delete it to rebuild, or build into another --out"
                  for path in self.kept_split_files))


def instance_json(coco_root: Path, split: str) -> Path:
    return coco_root / "annotations" / f"instances_{split}.json"


def has_instance_json(coco_root: Path) -> bool:
    return any(instance_json(coco_root, s).is_file() for s in SPLITS)


def build_coco20i(coco_root: str | Path, out: str | Path | None = None,
                  min_pixels: int = DEFAULT_MIN_PIXELS, track: Track = no_track) -> BuildReport:
    """Write HSNet-layout masks and split files for every COCO 2014 split whose JSON exists."""
    coco_root = Path(coco_root).expanduser()
    out = Path(out).expanduser() if out is not None else coco_root
    if not coco_root.is_dir():
        raise MissingFileError(f"COCO root {coco_root} is not a folder; pass it with --data-root")
    if not has_instance_json(coco_root):
        raise MissingFileError(
            f"no {instance_json(coco_root, 'val2014')} (or train2014); download COCO 2014 "
            "annotations into <data-root>/annotations/"
        )
    report = BuildReport(out)
    for split, short in SPLITS.items():
        path = instance_json(coco_root, split)
        if not path.is_file():
            report.skipped_splits.append(split)
            continue
        classwise = _build_split(coco_root, out, split, path, min_pixels, track, report)
        _write_split_files(out, short, classwise, report)
    return report


def _read_instances(path: Path) -> tuple[dict, dict, dict]:
    try:
        body = json.loads(path.read_text())
        categories = sorted(int(c["id"]) for c in body["categories"])
        images = {int(im["id"]): im for im in body["images"]}
        per_image: dict[int, list[dict]] = {}
        for ann in body["annotations"]:
            per_image.setdefault(int(ann["image_id"]), []).append(ann)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not a COCO instance file ({type(exc).__name__}: {exc}); "
                           "re-download the COCO 2014 annotations") from exc
    if len(categories) != NUM_CLASSES:
        raise DatasetError(f"{path} has {len(categories)} categories, not COCO's 80; use the "
                           "official instances_*2014.json")
    return {cat: i for i, cat in enumerate(categories)}, images, per_image


def _build_split(coco_root: Path, out: Path, split: str, path: Path, min_pixels: int,
                 track: Track, report: BuildReport) -> dict[int, list[str]]:
    class_of, images, per_image = _read_instances(path)
    classwise: dict[int, list[str]] = {c: [] for c in range(NUM_CLASSES)}
    todo = sorted(per_image)
    report.images[split] = len(todo)
    for image_id in track(todo, len(todo), f"{split} masks"):
        image = images.get(image_id)
        if image is None:
            raise DatasetError(f"{path} annotates image {image_id}, which it does not list")
        name = image["file_name"]
        if not (coco_root / split / name).exists():
            report.missing_images.append(coco_root / split / name)
        dest = out / "annotations" / split / (Path(name).stem + ".png")
        if dest.exists():
            counts = _pixel_counts(_read_png(dest))
            report.kept += 1
        else:
            mask = class_index_mask(per_image[image_id], class_of, image["height"], image["width"])
            _write_png(dest, mask)
            counts = _pixel_counts(mask)
            report.written += 1
        for cid in np.flatnonzero(counts[1:] >= min_pixels):
            classwise[int(cid)].append(f"{split}/{name}")
    return classwise


def class_index_mask(annotations: list[dict], class_of: dict[int, int], height: int,
                     width: int) -> np.ndarray:
    """HxW uint8 map, pixel = class index + 1; smaller instances are painted over larger ones."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    for ann in sorted(annotations, key=lambda a: (-float(a.get("area", 0)), a.get("id", 0))):
        cid = class_of.get(int(ann["category_id"]))
        if cid is None:
            continue
        canvas[segmentation_mask(ann["segmentation"], height, width) == 1] = cid + 1
    return canvas


def _pixel_counts(mask: np.ndarray) -> np.ndarray:
    return np.bincount(mask.ravel(), minlength=NUM_CLASSES + 1)[: NUM_CLASSES + 1]


def _read_png(path: Path) -> np.ndarray:
    with opened_image(path, "mask", fix="delete it and rerun `sansa prepare coco20i` to "
                      "rebuild it") as image:
        return np.asarray(image)


def _write_png(dest: Path, mask: np.ndarray) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    write_bytes_atomic(dest, buffer.getvalue())


def _write_split_files(out: Path, short: str, classwise: dict[int, list[str]],
                       report: BuildReport) -> None:
    """The four split files of one split; an existing file is never rewritten (the same table
    is left as it is, a different one is kept and reported)."""
    from sansa_cli.artifacts.safe_pickle import load_data_pickle

    for fold in range(4):
        test = set(fold_classes(fold))
        keep = test if short == "val" else set(range(NUM_CLASSES)) - test
        table = {c: sorted(classwise[c]) if c in keep else [] for c in range(NUM_CLASSES)}
        dest = out / "splits" / short / f"fold{fold}.pkl"
        if dest.exists():
            if load_data_pickle(dest, "split file") != table:
                report.kept_split_files.append(dest)
            continue
        write_bytes_atomic(dest, pickle.dumps(table, protocol=4))
        report.split_files.append(dest)
