"""COCO-20i in the HSNet layout that every peer (HSNet, Matcher, GF-SAM, SANSA) uses.

Layout under ``root``::

    train2014/*.jpg  val2014/*.jpg                (COCO 2014 images; or option image_root=DIR)
    annotations/{train2014,val2014}/<stem>.png     (pixel value = class index + 1, 0 = none)
    splits/{trn,val}/fold{0..3}.pkl                (or --splits DIR, e.g. HSNet's data/splits)

A split file is a pickled dict ``{class index 0..79: ['val2014/COCO_val2014_....jpg', ...]}``,
read as data only (:func:`sansa_cli.artifacts.safe_pickle.load_data_pickle`: no code runs).
Fold ``f`` tests classes ``{f + 4v, v = 0..19}`` (interleaved); ``train`` holds the other 60 with
images from ``trn/fold{f}.pkl``, ``val`` the fold's 20 with images from ``val/fold{f}.pkl`` (the
benchmark's test episodes). A class the split file lists no image for stays in the fold (it scores
0 in the mIoU over the fold's classes). Fold ``None`` (``--fold all``) holds out nothing: all 80
classes, each with the images of the split's four files merged (for ``train`` what the SANSA
release's fold -1 reads: it merges folds 0 and 1, whose union on HSNet's files is the same). The
class index needs only the split files, no image is opened. Test protocol: 1000 episodes, class
uniform over the fold's classes (those with 2 images), query uniform over the class's images,
supports drawn independently rejecting only the query (repeats possible).

:meth:`Coco20i.build` writes the masks and split files from the official COCO 2014 instances JSON
(``root/annotations/instances_{train,val}2014.json``, see :mod:`sansa_cli.datasets.prepare_coco`);
its build option ``min_pixels`` (default 2048) is the pixels a class needs in an image to be listed.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.artifacts.safe_pickle import load_data_pickle
from sansa_cli.datasets.base import (
    BuildResult,
    Episode,
    FewShotDataset,
    Track,
    fold_text,
    no_track,
    sample_uniform_class,
)
from sansa_cli.datasets.reading import find_split_dir, open_mask_array, open_rgb
from sansa_cli.errors import DatasetError, UserInputError

COCO_CLASSES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite baseball_bat "
    "baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork knife spoon bowl "
    "banana apple sandwich orange broccoli carrot hot_dog pizza donut cake chair couch "
    "potted_plant bed dining_table toilet tv laptop mouse remote keyboard cell_phone microwave "
    "oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()
NUM_CLASSES = 80
SPLIT_FILES = {"train": "trn", "val": "val"}


def fold_classes(fold: int, num_folds: int = 4) -> list[int]:
    """The interleaved test classes of a fold: ``{fold + num_folds * v}``."""
    return list(range(fold, NUM_CLASSES, num_folds))


@functools.lru_cache(maxsize=16)
def _read_split(path: Path, mtime_ns: int) -> dict[int, tuple[str, ...]]:
    # Split files come from others (HSNet's repository, a colleague): read as data only.
    table = load_data_pickle(path, "split file", "rebuild it with `sansa prepare coco20i` or use "
                             "HSNet's original files")
    if not isinstance(table, dict):
        raise DatasetError(f"split file {path} is not a class -> images dict; use HSNet's files")
    return {int(k): tuple(sorted(v)) for k, v in table.items()}


def _union(tables: list[dict[int, tuple[str, ...]]]) -> dict[int, tuple[str, ...]]:
    """Class -> the sorted images any of ``tables`` lists for it (fold all)."""
    classes = {cid for table in tables for cid in table}
    return {cid: tuple(sorted({i for table in tables for i in table.get(cid, ())}))
            for cid in classes}


class Coco20i(FewShotDataset):
    """COCO-20i: 4 interleaved folds of 20 classes (HSNet layout)."""

    name = "coco20i"
    num_folds = 4
    splits = ("train", "val")
    eval_split = "val"
    default_canvas = 640
    episodes_per_fold = 1000
    build_options = ("min_pixels",)
    supports_all_folds = True

    def __init__(self, root: str | Path, fold: int | None = 0, split: str | None = None, *,
                 splits: str | Path | None = None, image_root: str | Path | None = None):
        super().__init__(root, fold, split)
        folds = range(self.num_folds) if fold is None else [fold]
        probe = f"{SPLIT_FILES[self.split]}/fold{folds[0]}.pkl"
        self.split_dir = find_split_dir(splits, self.root / "splits", "coco", probe)
        self.image_root = Path(image_root).expanduser() if image_root else self.root
        paths = [self.split_dir / SPLIT_FILES[self.split] / f"fold{f}.pkl" for f in folds]
        tables = [_read_split(path, path.stat().st_mtime_ns) for path in paths]
        test = set() if fold is None else set(fold_classes(fold))
        everything = set(range(NUM_CLASSES))
        wanted = sorted(everything if fold is None else
                        test if self.split == "val" else everything - test)
        table = tables[0] if len(tables) == 1 else _union(tables)
        self._images = {cid: list(table.get(cid, ())) for cid in wanted}
        self.classes = wanted
        if not any(self._images.values()):
            raise DatasetError(f"split file {paths[0]} lists no image for fold "
                               f"{fold_text(fold)}'s classes; check --splits")

    @classmethod
    def build(cls, root: Path, out: Path | None, options: dict[str, Any],
              track: Track = no_track) -> BuildResult | None:
        """Masks and split files from ``root/annotations/instances_*2014.json`` when present."""
        from sansa_cli.datasets import prepare_coco

        if not prepare_coco.has_instance_json(Path(root).expanduser()):
            return None
        min_pixels = options.get("min_pixels", prepare_coco.DEFAULT_MIN_PIXELS)
        if isinstance(min_pixels, bool) or not isinstance(min_pixels, int) or min_pixels < 1:
            raise UserInputError(f"coco20i option min_pixels={min_pixels!r} is not a positive "
                                 "number of pixels; use e.g. --dataset-option min_pixels=2048")
        built = prepare_coco.build_coco20i(root, out, min_pixels, track)
        check = {k: v for k, v in options.items() if k not in cls.build_options}
        if built.out.resolve() != Path(root).expanduser().resolve():
            check = {"image_root": root, **check}  # the images stay in the COCO folder
        return BuildResult(built.out, check, built.summary())

    def options(self) -> dict[str, Any]:
        """The split folder and the image folder, absolute."""
        return {"splits": str(self.split_dir.resolve()),
                "image_root": str(self.image_root.resolve())}

    def class_name(self, cid: int) -> str:
        return COCO_CLASSES[cid].replace("_", " ")

    def images(self, cid: int) -> list[str]:
        try:
            return self._images[cid]
        except KeyError:
            raise UserInputError(f"class {cid} is not in coco20i fold {fold_text(self.fold)} "
                                 f"split {self.split}; its classes are {self.classes}") from None

    def mask_path(self, image_id: str) -> Path:
        folder, _, file = image_id.rpartition("/")
        return self.root / "annotations" / folder / (Path(file).stem + ".png")

    def files(self, image_id: str) -> list[Path]:
        return [self.image_root / image_id, self.mask_path(image_id)]

    def load_image(self, image_id: str):
        return open_rgb(self.image_root / image_id)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        return (open_mask_array(self.mask_path(image_id)) == cid + 1).astype(np.uint8)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        return sample_uniform_class(self, rng, shot, count)
