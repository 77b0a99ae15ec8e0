"""Pascal-5i: PASCAL VOC2012 with SBD-augmented masks, 4 folds of 5 consecutive classes.

Layout under ``root`` (the VOC2012 folder)::

    JPEGImages/<name>.jpg
    SegmentationClassAug/<name>.png     (palette or grayscale: value = class 1..20, 255 = ignore)
    splits/{trn,val}/fold{0..3}.txt     (or --splits DIR, e.g. HSNet's data/splits)

Split lines are ``<name>__<class 1..20>``. Class ids here are 0-based (0..19); fold ``f`` tests
classes ``5f .. 5f+4``. ``val`` reads ``val/fold{f}.txt`` (the benchmark's test episodes);
``train`` reads ``trn/fold{g}.txt`` of the three other folds, as HSNet does, and holds the other 15
classes. A class the split files list no image for stays in the fold (it scores 0). Fold ``None``
(``--fold all``) holds out nothing: all 20 classes, from the split's four files. Masks keep 255
(object borders) as ignore. Test protocol: 1000 episodes cycling through the split file's (image,
class) lines in order (those of classes with 2 images), supports drawn independently from the
class's images rejecting only the query.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.datasets.base import Episode, FewShotDataset, fold_text, sample_pairs
from sansa_cli.datasets.reading import (
    find_split_dir,
    open_mask_array,
    open_rgb,
    read_lines,
)
from sansa_cli.errors import DatasetError, UserInputError

VOC_CLASSES = (
    "aeroplane bicycle bird boat bottle bus car cat chair cow dining_table dog horse motorbike "
    "person potted_plant sheep sofa train tv_monitor"
).split()
SPLIT_FILES = {"train": "trn", "val": "val"}
IGNORE = 255


class Pascal5i(FewShotDataset):
    """Pascal-5i with HSNet's split files."""

    name = "pascal5i"
    num_folds = 4
    splits = ("train", "val")
    eval_split = "val"
    default_canvas = None
    episodes_per_fold = 1000
    supports_all_folds = True

    def __init__(self, root: str | Path, fold: int | None = 0, split: str | None = None, *,
                 splits: str | Path | None = None):
        super().__init__(root, fold, split)
        probe = f"{SPLIT_FILES[self.split]}/fold{fold or 0}.txt"
        self.split_dir = find_split_dir(splits, self.root / "splits", "pascal", probe)
        folds = ([g for g in range(4) if g != fold] if self.split == "train" or fold is None
                 else [fold])
        self.pairs: list[tuple[str, int]] = []
        for g in folds:
            path = self.split_dir / SPLIT_FILES[self.split] / f"fold{g}.txt"
            self.pairs.extend(_parse_line(line, path) for line in read_lines(path))
        if not self.pairs:
            raise DatasetError(f"pascal5i split files in {self.split_dir} list no image; "
                               "check --splits")
        everything = set(range(len(VOC_CLASSES)))
        test = everything if fold is None else set(fold_classes(fold))
        self.classes = sorted(test if self.split == "val" or fold is None else everything - test)
        images: dict[int, set[str]] = {cid: set() for cid in self.classes}
        for image, cid in self.pairs:
            if cid not in images:
                raise DatasetError(f"split files in {self.split_dir} list {image} for class "
                                   f"{cid + 1}, which is not a {self.split} class of fold "
                                   f"{fold_text(fold)}; "
                                   "use HSNet's Pascal split files")
            images[cid].add(image)
        self._sorted = {cid: sorted(found) for cid, found in images.items()}

    def options(self) -> dict[str, Any]:
        """The split folder, absolute."""
        return {"splits": str(self.split_dir.resolve())}

    def class_name(self, cid: int) -> str:
        return VOC_CLASSES[cid].replace("_", " ")

    def images(self, cid: int) -> list[str]:
        try:
            return self._sorted[cid]
        except KeyError:
            raise UserInputError(f"class {cid} is not in pascal5i fold {fold_text(self.fold)} "
                                 f"split {self.split}; its classes are {self.classes}") from None

    def files(self, image_id: str) -> list[Path]:
        return [self.root / "JPEGImages" / f"{image_id}.jpg",
                self.root / "SegmentationClassAug" / f"{image_id}.png"]

    def load_image(self, image_id: str):
        return open_rgb(self.files(image_id)[0])

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        raw = open_mask_array(self.files(image_id)[1])
        mask = (raw == cid + 1).astype(np.uint8)
        mask[raw == IGNORE] = IGNORE
        return mask

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        return sample_pairs(self.pairs, self.images, rng, shot, count or self.episodes_per_fold)


def fold_classes(fold: int) -> list[int]:
    """The 5 consecutive (0-based) test classes of a fold."""
    return list(range(5 * fold, 5 * fold + 5))


def _parse_line(line: str, path: Path) -> tuple[str, int]:
    name, sep, cls = line.rpartition("__")
    if not sep or not cls.isdigit() or not 1 <= int(cls) <= len(VOC_CLASSES):
        raise DatasetError(f"line {line!r} of {path} is not '<image>__<class 1..20>'; "
                           "use HSNet's Pascal split files")
    return name, int(cls) - 1
