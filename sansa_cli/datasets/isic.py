"""ISIC 2018 skin lesions as a cross-domain few-shot set (PATNet's 3 classes; evaluation only).

``--data-root`` is the ``ISIC`` folder holding the ISIC 2018 Task 1 training data, in either
layout (detected; option ``layout`` picks one when a folder holds both)::

    layout=folders (the lineage's: images moved into class folders)
        ISIC2018_Task1-2_Training_Input/{1,2,3}/ISIC_<id>.jpg
    layout=csv (the official layout, classes from PATNet's data/isic/class_id.csv)
        ISIC2018_Task1-2_Training_Input/ISIC_<id>.jpg      class_id.csv (option csv=FILE)
    both: ISIC2018_Task1_Training_GroundTruth/ISIC_<id>_segmentation.png

``class_id.csv`` has the columns ``ID,Class`` (CRLF tolerated), classes ``nevus``, ``melanoma``
and ``seborrheic_keratosis`` (2594 rows: 1867 / 519 / 208). Option ``mapping`` gives the labels of
classes (folders) 1, 2, 3; the default is SANSA's ``nevus,melanoma,seborrheic_keratosis``
(DR-Adapter's ``ISIC_Split.py`` uses ``seborrheic_keratosis,nevus,melanoma``). With class folders
and the CSV both present, every folder must agree with the CSV under the mapping.

An image and its mask must have the same size: DR-Adapter's split script resizes the images to
512x512 and not the masks, which breaks original-size scoring, so such a folder is refused.
Image ids are the image file names (``ISIC_0000000.jpg``) in both layouts.
Test protocol: see :mod:`sansa_cli.datasets.cross_domain` (600 episodes, 200 per class).
"""

from __future__ import annotations

import csv as csv_module
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.datasets.cross_domain import (
    CrossDomainDataset,
    folder_hint,
    image_size,
)
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

INPUT = "ISIC2018_Task1-2_Training_Input"
TRUTH = "ISIC2018_Task1_Training_GroundTruth"
CSV_NAME = "class_id.csv"
#: SANSA's reading of the class folders: 1 nevus, 2 melanoma, 3 seborrheic keratosis
DEFAULT_MAPPING = ("nevus", "melanoma", "seborrheic_keratosis")
SOURCE = ("the ISIC 2018 Task 1 training data (ISIC challenge archive: Training Input and "
          "Training Ground Truth)")
CSV_SOURCE = "PATNet's data/isic/class_id.csv"


def parse_mapping(value: Any) -> tuple[str, ...]:
    """Option ``mapping``: the labels of classes 1, 2, 3, as ``a,b,c`` or a list."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        labels = tuple(_label(item) for item in items)
    except TypeError:
        labels = ()
    if sorted(labels) != sorted(DEFAULT_MAPPING):
        raise UserInputError(f"isic option mapping={value!r} must name each of "
                             f"{', '.join(DEFAULT_MAPPING)} once, in the order of classes 1, 2, "
                             f"3; e.g. --dataset-option mapping={','.join(DEFAULT_MAPPING)}")
    return labels


def _label(text: Any) -> str:
    return str(text).strip().lower().replace(" ", "_")


def read_class_csv(path: Path) -> dict[str, str]:
    """``ISIC_<id>`` -> label from a ``ID,Class`` CSV (CRLF and a byte-order mark tolerated)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise MissingFileError(f"isic class file {path} does not exist; it is {CSV_SOURCE}: "
                               "put it there or pass --dataset-option csv=FILE") from None
    rows = [row for row in csv_module.reader(lines) if any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "id" not in header or "class" not in header:
        raise DatasetError(f"isic class file {path} has no ID,Class header; use {CSV_SOURCE}")
    id_col, class_col = header.index("id"), header.index("class")
    table = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) <= max(id_col, class_col) or _label(row[class_col]) not in DEFAULT_MAPPING:
            raise DatasetError(f"isic class file {path} line {number} ({','.join(row)!r}) is not "
                               f"an ID and one of {', '.join(DEFAULT_MAPPING)}; use {CSV_SOURCE}")
        table[Path(row[id_col].strip()).stem] = _label(row[class_col])
    return table


class Isic(CrossDomainDataset):
    """ISIC 2018 Task 1 lesions, 3 diagnosis classes, from class folders or the CSV."""

    name = "isic"
    class_names = dict(enumerate((label.replace("_", " ") for label in DEFAULT_MAPPING), 1))

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None, *,
                 layout: str | None = None, csv: str | Path | None = None,
                 mapping: Any = None):
        super().__init__(root, fold, split)
        self.mapping = DEFAULT_MAPPING if mapping is None else parse_mapping(mapping)
        self.class_names = {k: label.replace("_", " ") for k, label in
                            enumerate(self.mapping, 1)}
        self.input, self.truth = self.root / INPUT, self.root / TRUTH
        for folder in (self.input, self.truth):
            if not folder.is_dir():
                raise MissingFileError(f"isic folder {folder} is missing; it comes from {SOURCE}"
                                       f"{folder_hint(self.root, ['ISIC'])}")
        self.csv = Path(csv).expanduser() if csv is not None else self.root / CSV_NAME
        self.layout = self._layout(layout)
        self.index(self._rows())
        if not any(self._images.values()):
            raise DatasetError(f"isic at {self.root} (layout={self.layout}) lists no image; "
                               f"check {self.input}")
        self._check_sizes()

    def options(self) -> dict[str, Any]:
        """The layout, the class CSV (null when the folders alone were read) and the mapping."""
        used = self.layout == "csv" or self.csv.is_file()
        return {"layout": self.layout, "csv": str(self.csv.resolve()) if used else None,
                "mapping": ",".join(self.mapping)}

    def notes(self) -> list[str]:
        read = "class folders 1/2/3" if self.layout == "folders" else f"classes from {self.csv}"
        mapped = ", ".join(f"{k} {name}" for k, name in self.class_names.items())
        return [f"isic: {read} (layout={self.layout}); classes {mapped}"]

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        mask = super().load_mask(image_id, cid)
        self._same_size(self.image_file(image_id), mask.shape[::-1])
        return mask

    def _layout(self, chosen: str | None) -> str:
        folders = any((self.input / str(k)).is_dir() for k in self.class_names)
        flat = next(self.input.glob("ISIC_*.jpg"), None) is not None
        if chosen is not None:
            if chosen not in ("folders", "csv"):
                raise UserInputError(f"isic option layout={chosen!r} is unknown; use folders or "
                                     "csv, or leave it out to detect")
            return chosen
        if folders and flat:
            raise DatasetError(f"isic folder {self.input} holds both class folders 1/2/3 and "
                               "images; choose with --dataset-option layout=folders or "
                               "layout=csv")
        if not (folders or flat):
            raise MissingFileError(f"isic folder {self.input} holds neither ISIC_<id>.jpg images "
                                   f"nor class folders 1/2/3; it comes from {SOURCE}")
        return "folders" if folders else "csv"

    def _rows(self):
        """(class, image id, image file, mask file) per image."""
        labels = read_class_csv(self.csv) if self.layout == "csv" or self.csv.is_file() else {}
        if self.layout == "csv":
            for stem, label in sorted(labels.items()):
                yield (self.mapping.index(label) + 1, f"{stem}.jpg", self.input / f"{stem}.jpg",
                       self.truth / f"{stem}_segmentation.png")
            return
        self._check_folders(labels)
        for k in self.class_names:
            folder = self.input / str(k)
            names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            for name in (n for n in names if n.lower().endswith(".jpg")):
                yield (k, name, folder / name,
                       self.truth / f"{Path(name).stem}_segmentation.png")

    def _check_folders(self, labels: dict[str, str]) -> None:
        """With the CSV at hand, each class folder must hold its mapped label only."""
        if not labels:
            return
        counts = {k: Counter(labels[p.stem] for p in (self.input / str(k)).glob("*.jpg")
                             if p.stem in labels) for k in self.class_names}
        for k, found in counts.items():
            wrong = sum(n for label, n in found.items() if label != self.mapping[k - 1])
            if not wrong:
                continue
            implied = [found.most_common(1)[0][0] if found else "" for found in counts.values()]
            fix = (f"the folders follow mapping {','.join(implied)}: pass --dataset-option "
                   f"mapping={','.join(implied)}"
                   if sorted(implied) == sorted(DEFAULT_MAPPING) else "re-split them from it")
            raise DatasetError(f"isic class folder {self.input / str(k)} holds {wrong} images "
                               f"{self.csv} does not label {self.mapping[k - 1]} (mapping "
                               f"{','.join(self.mapping)}); {fix}")

    def _check_sizes(self) -> None:
        """The first image of each class against its mask (a resized split is refused before
        any work; :meth:`load_mask` checks every pair it reads)."""
        for cid in self.classes:
            for image_id in self._images[cid][:1]:
                mask = self.mask_file(image_id, cid)
                if self.image_file(image_id).is_file() and mask is not None and mask.is_file():
                    self._same_size(self.image_file(image_id), image_size(mask, "mask"))

    def _same_size(self, image: Path, mask_size: tuple[int, int]) -> None:
        size = image_size(image)
        if tuple(size) != tuple(mask_size):
            raise DatasetError(
                f"isic image {image} is {size[0]}x{size[1]} but its mask is "
                f"{mask_size[0]}x{mask_size[1]}: the image was resized apart from its mask "
                "(DR-Adapter's ISIC_Split.py writes 512x512 images); re-split the original "
                f"images without resizing, or use the official images with {CSV_NAME}")
