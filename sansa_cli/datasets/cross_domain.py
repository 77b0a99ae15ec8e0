"""What the cross-domain evaluation sets (DeepGlobe, ISIC 2018, Chest X-ray "Lung") share: the
PATNet lineage's test protocol and binary masks.

The lineage (PATNet, then DR-Adapter, ABCDFSS, GF-SAM and SANSA) scores these sets with one
sampler: 600 episodes per run, class ``classes[index mod n]`` (round-robin), query uniform over
the class's images, supports drawn independently rejecting only the query (so supports may
repeat). Masks are white-on-black PNGs read as 8-bit gray and binarised at 128. There are no
folds and no training split; the SANSA release scores them on a 518 px canvas.

A plugin subclasses :class:`CrossDomainDataset`, sets ``name`` and ``class_names``, and calls
:meth:`CrossDomainDataset.index` with its (class, image id, image file, mask file) rows. Image ids
are the dataset's own file names (``123_sat_01.jpg``, ``ISIC_0000000.jpg``,
``CHNCXR_0001_0.png``), so an episode list replays on any layout of the same data.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar, Iterable

import numpy as np

from sansa_cli.datasets.base import Episode, FewShotDataset, sample_round_robin
from sansa_cli.datasets.reading import open_mask_array, open_rgb, opened_image
from sansa_cli.errors import DatasetError, UserInputError

#: the lineage's episodes per run
EPISODES = 600
#: masks are object where their gray level is at least this
THRESHOLD = 128


def binary_mask(path: Path) -> np.ndarray:
    """A white-on-black mask file as uint8 0/1 (gray level >= :data:`THRESHOLD` is object)."""
    return (open_mask_array(path, gray=True) >= THRESHOLD).astype(np.uint8)


def image_size(path: Path, what: str = "image") -> tuple[int, int]:
    """(width, height) from the file's header; nothing is decoded."""
    with opened_image(path, what) as image:
        return image.size


def flag(value: Any, dataset: str, option: str) -> bool:
    """A yes/no option given in Python (bool) or on the command line (``true``/``false``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise UserInputError(f"{dataset} option {option}={value!r} is not true or false; use e.g. "
                         f"--dataset-option {option}=false")


def folder_hint(root: Path, names: Iterable[str]) -> str:
    """``'; pass --data-root DIR/<name> (found there)'`` when ``root`` holds one of ``names``
    (the user gave the parent of the dataset folder), else ``''``."""
    for name in names:
        if (root / name).is_dir():
            return f"; --data-root is the dataset folder itself: pass {root / name}"
    return ""


class CrossDomainDataset(FewShotDataset):
    """Base of the cross-domain sets: one fold, a test split only, the lineage's sampler."""

    num_folds = 1
    splits = ("test",)
    eval_split = "test"
    default_canvas = 518
    episodes_per_fold = EPISODES
    #: class id -> name; ids are the numbers the dataset's own folders or labels use
    class_names: ClassVar[dict[int, str]]

    def index(self, rows: Iterable[tuple[int, str, Path, Path]]) -> None:
        """Record (class, image id, image file, mask file) rows; every class of
        ``class_names`` stays in ``classes``, also one without images."""
        self.classes = sorted(self.class_names)
        self._images: dict[int, list[str]] = {cid: [] for cid in self.classes}
        self._image_files: dict[str, Path] = {}
        self._mask_files: dict[str, dict[int, Path]] = {}
        for cid, image_id, image_file, mask_file in rows:
            self._images[cid].append(image_id)
            self._image_files.setdefault(image_id, image_file)
            self._mask_files.setdefault(image_id, {})[cid] = mask_file
        for images in self._images.values():
            images.sort()

    def class_name(self, cid: int) -> str:
        return self.class_names[cid]

    def images(self, cid: int) -> list[str]:
        try:
            return self._images[cid]
        except KeyError:
            raise UserInputError(f"class {cid} is not in {self.name}; its classes are "
                                 f"{self.classes}") from None

    def image_file(self, image_id: str) -> Path:
        try:
            return self._image_files[image_id]
        except KeyError:
            raise DatasetError(f"{self.name} at {self.root} has no image {image_id!r} (an "
                               "episode list written for other data?); check --data-root and "
                               "the dataset options") from None

    def mask_file(self, image_id: str, cid: int) -> Path | None:
        """The mask of ``cid`` in ``image_id``; None when the image does not hold the class."""
        self.image_file(image_id)
        return self._mask_files[image_id].get(cid)

    def files(self, image_id: str) -> list[Path]:
        masks = self._mask_files.get(image_id, {})
        return [self.image_file(image_id), *(masks[cid] for cid in sorted(masks))]

    def load_image(self, image_id: str):
        return open_rgb(self.image_file(image_id))

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        path = self.mask_file(image_id, cid)
        if path is None:  # the image does not hold the class: nothing is object
            width, height = image_size(self.image_file(image_id))
            return np.zeros((height, width), dtype=np.uint8)
        return binary_mask(path)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        """The lineage's protocol: 600 episodes (or ``count``), classes round-robin."""
        return sample_round_robin(self, rng, shot, count)
