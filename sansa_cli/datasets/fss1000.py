"""FSS-1000: 1000 classes of 10 images, split by class into 520 train / 240 val / 240 test.

Layout under ``root``::

    data/<class>/{1..10}.jpg   data/<class>/{1..10}.png      (``root`` itself may hold the classes)
    splits/{trn,val,test}.txt                                 (or --splits DIR, e.g. HSNet's)

Split files list class names, one per line (CRLF tolerated). One fold; splits ``train``, ``val``,
``test`` read ``trn.txt``, ``val.txt``, ``test.txt``. Class ids are positions in the concatenation
trn + val + test, so they are unique across splits. Masks are the grayscale PNG next to each JPEG,
binarized at 128. Test protocol: each image of each test class is the query once (2400 episodes),
supports drawn independently from the class's other images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.datasets.base import FewShotDataset
from sansa_cli.datasets.reading import (
    find_split_dir,
    natural_key,
    open_mask_array,
    open_rgb,
    read_lines,
)
from sansa_cli.errors import DatasetError, UserInputError

SPLIT_FILES = {"train": "trn", "val": "val", "test": "test"}
IMAGE_SUFFIXES = (".jpg", ".jpeg")


class Fss1000(FewShotDataset):
    """FSS-1000 with HSNet's class splits."""

    name = "fss1000"
    num_folds = 1
    splits = ("train", "val", "test")
    eval_split = "test"
    default_canvas = 518
    episodes_per_fold = None  # one per test image

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None, *,
                 splits: str | Path | None = None):
        super().__init__(root, fold, split)
        self.data = self.root / "data" if (self.root / "data").is_dir() else self.root
        self.split_dir = find_split_dir(splits, self.root / "splits", "fss", "test.txt")
        names: list[str] = []
        for key in ("train", "val", "test"):
            path = self.split_dir / f"{SPLIT_FILES[key]}.txt"
            listed = read_lines(path) if path.exists() or key == self.split else []
            if key == self.split:
                first = len(names)
                self.classes = list(range(first, first + len(listed)))
            names.extend(listed)
        self._names = names
        self._images: dict[int, list[str]] = {}
        if not self.classes:
            raise DatasetError(f"fss1000 split file for {self.split} lists no class; "
                               "check --splits")
        missing = [names[c] for c in self.classes if not (self.data / names[c]).is_dir()]
        if missing:
            raise DatasetError(
                f"fss1000 class folder {self.data / missing[0]} is missing "
                f"({len(missing)} of {len(self.classes)} classes); pass the FSS-1000 folder as "
                "--data-root"
            )

    def options(self) -> dict[str, Any]:
        """The split folder, absolute."""
        return {"splits": str(self.split_dir.resolve())}

    def class_name(self, cid: int) -> str:
        return self._names[cid]

    def images(self, cid: int) -> list[str]:
        if cid not in self._images:
            if cid not in self.classes:
                raise UserInputError(f"class {cid} is not in fss1000 split {self.split}")
            folder = self.data / self._names[cid]
            files = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
            self._images[cid] = [f"{folder.name}/{f}" for f in sorted(files, key=natural_key)]
        return self._images[cid]

    def mask_path(self, image_id: str) -> Path:
        return (self.data / image_id).with_suffix(".png")

    def files(self, image_id: str) -> list[Path]:
        return [self.data / image_id, self.mask_path(image_id)]

    def load_image(self, image_id: str):
        return open_rgb(self.data / image_id)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        return (open_mask_array(self.mask_path(image_id), gray=True) >= 128).astype(np.uint8)
