"""LVIS-92i: COCO 2017 images with LVIS v1 masks, 10 folds of 92 classes (Matcher's benchmark).

Layout: ``root`` holds the COCO 2017 images as ``train2017/`` and ``val2017/`` (or option
``image_root=DIR``, e.g. the release's ``LVIS/coco``); the annotations are LVIS v1's
``lvis_v1_{train,val}.json`` or Matcher's ``lvis_{train,val}.pkl`` (``{cat_id: {image:
{'annotations': [...]}}}``, read as data only: nothing in it runs), looked up in option
``annotations=DIR`` (``--dataset-option annotations=DIR``), else ``root/annotations``, else
``root``; the JSON wins when one folder holds both. All instances of a class in an image are
merged into one mask (polygons and RLE, pycocotools).

Folds (``val`` = the benchmark's test episodes, from the LVIS val annotations): the eligible
classes, in category-id order (pkl key order for Matcher's pkl), are dealt round-robin: fold ``k``
takes eligible classes ``k, k+10, ...``, ``len(eligible) // 10`` of them (92 for LVIS v1).
Which classes are eligible is option ``membership``:

- ``membership="lineage"`` (default; ``peers`` is the same): the rule of Matcher and the SANSA
  release, behind every published LVIS-92i number: a class is eligible when it has more than
  ``shot`` val images, so 1-shot and 5-shot folds may hold different classes. ``sansa eval``,
  ``sansa prepare --episodes`` and ``sansa train`` set ``shot`` to the shot asked for (train: its
  validation shot) through :meth:`Lvis92i.options_for_shot`; a given ``shot=K`` is replaced.
  Without a shot (``sansa prepare lvis92i`` checking the folder, or ``Lvis92i(root, fold)`` in
  Python) the 1-shot folds are used, and :meth:`Lvis92i.notes` says so. An instance serves
  episodes of its own shot only.
- ``membership="fixed"`` (``frozen`` is the same; ``frozen`` was the default before
  ``lineage``): a class is eligible when it has more than 5 val images, the benchmark's largest
  shot, whatever the shot: 1-shot and 5-shot use the same folds, the lineage's 5-shot folds.
  It takes no ``shot``.

:meth:`Lvis92i.options` records the membership and the shot (null for ``fixed``) with the
absolute annotation and image folders, in episode lists and ``results.json``.
``train`` holds every category of the train annotations except the fold's test classes (Matcher).
Fold ``None`` (``--fold all``) holds out nothing: ``train`` holds every train category, ``val`` the
classes of all ten folds.
Test protocol: 2300 episodes, classes visited round-robin in fold order (25 each), query uniform
over the class's images, supports drawn independently rejecting only the query.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.artifacts.safe_pickle import load_data_pickle
from sansa_cli.datasets.base import Episode, FewShotDataset, fold_text, sample_round_robin
from sansa_cli.datasets.reading import open_rgb, opened_image
from sansa_cli.datasets.segmentation import merged_mask
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

#: membership spellings -> the rule they name (``peers`` and ``frozen`` are the older names)
MEMBERSHIPS = {"lineage": "lineage", "peers": "lineage", "fixed": "fixed", "frozen": "fixed"}
#: ``fixed``: eligible with more than this many val images (the benchmark's largest shot)
FIXED_SHOT = 5
#: ``lineage`` without a shot: the 1-shot folds
DEFAULT_SHOT = 1


@dataclass
class LvisIndex:
    """Class -> image -> segmentations of one LVIS split, plus image sizes and class names."""

    per_class: dict[int, dict[str, list[Any]]]
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)


def image_name(image: dict) -> str:
    """'val2017/000000397133.jpg' from an LVIS image record (its ``coco_url``)."""
    url = image.get("coco_url") or image.get("file_name") or ""
    parts = url.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-1]:
        raise DatasetError(f"LVIS image {image.get('id')} has no coco_url; use the LVIS v1 JSON")
    return "/".join(parts[-2:])


def index_from_json(body: dict) -> LvisIndex:
    """Build the index from a parsed LVIS v1 JSON (plain ``json``: what the lvis API reads)."""
    try:
        names_by_id = {int(img["id"]): image_name(img) for img in body["images"]}
        sizes = {image_name(img): (int(img["height"]), int(img["width"])) for img in body["images"]}
        per_class: dict[int, dict[str, list[Any]]] = {}
        for ann in body["annotations"]:
            name = names_by_id[int(ann["image_id"])]
            per_class.setdefault(int(ann["category_id"]), {}).setdefault(name, []).append(
                ann["segmentation"])
        names = {int(c["id"]): str(c.get("name", c["id"])) for c in body.get("categories", [])}
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"not an LVIS v1 annotation file ({type(exc).__name__}: {exc}); "
                           "use lvis_v1_{train,val}.json") from exc
    ordered = {cid: dict(sorted(per_class[cid].items())) for cid in sorted(per_class)}
    return LvisIndex(ordered, sizes, names)


def index_from_matcher(table: dict) -> LvisIndex:
    """Build the index from Matcher's pkl; its key order is kept (it defines Matcher's folds)."""
    per_class = {}
    for cid, images in table.items():
        per_class[int(cid)] = {
            name: [a["segmentation"] for a in info["annotations"]]
            for name, info in sorted(images.items())
        }
    return LvisIndex(per_class)


@functools.lru_cache(maxsize=2)
def _load_index(path: Path, mtime_ns: int) -> LvisIndex:
    table = None
    if path.suffix == ".pkl":  # Matcher's table comes from others: read as data only
        table = load_data_pickle(path, "LVIS annotation file",
                                 "re-download Matcher's lvis_{train,val}.pkl or use LVIS v1's JSON")
    try:
        if table is not None:
            return index_from_matcher(table)
        return index_from_json(json.loads(path.read_text()))
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    except (OSError, ValueError, TypeError, EOFError, AttributeError, KeyError) as exc:
        raise DatasetError(f"LVIS annotations {path} are unreadable ({exc}); "
                           "re-download them") from exc


def find_annotations(folders: list[Path], split: str) -> Path:
    """``lvis_v1_<split>.json`` or Matcher's ``lvis_<split>.pkl`` in the first folder holding
    one."""
    for folder in folders:
        for name in (f"lvis_v1_{split}.json", f"lvis_{split}.pkl"):
            if (folder / name).is_file():
                return folder / name
    raise MissingFileError(f"no lvis_v1_{split}.json (or lvis_{split}.pkl) in "
                           f"{', '.join(map(str, folders))}; pass the folder with "
                           "--dataset-option annotations=DIR")


def fold_members(index: LvisIndex, fold: int | None, min_images: int,
                 num_folds: int = 10) -> list[int]:
    """Eligible classes (more than ``min_images`` images) dealt round-robin; fold ``fold``'s
    share (``None``: every fold's, in eligible order)."""
    eligible = [cid for cid, images in index.per_class.items() if len(images) > min_images]
    per_fold = len(eligible) // num_folds
    if fold is None:
        return eligible[:per_fold * num_folds]
    return [eligible[fold + num_folds * v] for v in range(per_fold)]


class Lvis92i(FewShotDataset):
    """LVIS-92i with the lineage's shot-dependent folds (or shot-independent ones on request)."""

    name = "lvis92i"
    num_folds = 10
    splits = ("train", "val")
    eval_split = "val"
    default_canvas = 640
    episodes_per_fold = 2300
    supports_all_folds = True

    def __init__(self, root: str | Path, fold: int | None = 0, split: str | None = None, *,
                 annotations: str | Path | None = None, image_root: str | Path | None = None,
                 membership: str = "lineage", shot: int | None = None):
        super().__init__(root, fold, split)
        self.membership, self.shot = membership_rule(membership, shot)
        self._shot_given = shot is not None
        given = Path(annotations).expanduser() if annotations else None
        if given is not None and given.is_file():
            given = given.parent
        folders = [given] if given else [self.root / "annotations", self.root]
        self.image_root = Path(image_root).expanduser() if image_root else self.root
        self.val = self._index(folders, "val")
        self.annotation_dir = find_annotations(folders, "val").parent  # recorded in options()
        threshold = FIXED_SHOT if self.shot is None else self.shot
        test = fold_members(self.val, fold, threshold, self.num_folds)
        if self.split == "val":
            self.index, self.classes = self.val, test
        else:
            self.index = self._index(folders, "train")
            held_out = set() if fold is None else set(test)
            self.classes = [c for c in self.index.per_class if c not in held_out]
        if not self.classes:
            raise DatasetError(f"lvis92i fold {fold_text(fold)} has no {self.split} class: the "
                               f"annotations have {len(self.val.per_class)} val classes; use the "
                               "full LVIS v1 files")

    @classmethod
    def options_for_shot(cls, options: dict[str, Any], shot: int) -> dict[str, Any]:
        """The lineage's folds depend on the shot: unless ``membership`` is ``fixed`` (or
        ``frozen``), the options get ``shot``."""
        if _rule(options.get("membership", "lineage")) == "lineage":
            return {**options, "shot": shot}
        return options

    def _index(self, folders: list[Path], split: str) -> LvisIndex:
        path = find_annotations(folders, split)
        return _load_index(path, path.stat().st_mtime_ns)

    def options(self) -> dict[str, Any]:
        """The membership rule and its shot (None for ``fixed``), the absolute folder of the val
        annotations (which decide the folds) and of the images."""
        return {"membership": self.membership, "shot": self.shot,
                "annotations": str(self.annotation_dir.resolve()),
                "image_root": str(self.image_root.resolve())}

    def notes(self) -> list[str]:
        """Without a shot, the lineage's 1-shot folds are used: say so, and whether the 5-shot
        folds differ from them."""
        if self.membership != "lineage" or self._shot_given:
            return []
        moving = sum(DEFAULT_SHOT < len(images) <= FIXED_SHOT
                     for images in self.val.per_class.values())
        differ = (f"{moving} class{'es' if moving > 1 else ''} with {DEFAULT_SHOT + 1} to "
                  f"{FIXED_SHOT} val images make{'' if moving > 1 else 's'} the {FIXED_SHOT}-shot "
                  "folds differ" if moving else
                  f"no class has {DEFAULT_SHOT + 1} to {FIXED_SHOT} val images, so the "
                  f"{FIXED_SHOT}-shot folds are the same")
        return [f"lvis92i: no shot given, so these are the lineage's {DEFAULT_SHOT}-shot folds "
                f"(classes with more than {DEFAULT_SHOT} val image); K-shot runs (`sansa eval "
                f"--shots`, `sansa prepare --episodes --shots`) use the K-shot folds; {differ}; "
                "--dataset-option membership=fixed keeps one set of folds for every shot"]

    def class_name(self, cid: int) -> str:
        return self.index.names.get(cid, f"class {cid}")

    def images(self, cid: int) -> list[str]:
        try:
            return list(self.index.per_class[cid])
        except KeyError:
            raise UserInputError(f"class {cid} is not in lvis92i {self.split}") from None

    def files(self, image_id: str) -> list[Path]:
        return [self.image_root / image_id]

    def load_image(self, image_id: str):
        return open_rgb(self.image_root / image_id)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        segmentations = self.index.per_class.get(cid, {}).get(image_id)
        if segmentations is None:
            raise UserInputError(f"image {image_id} has no class {cid} in lvis92i {self.split}")
        size = self.index.sizes.get(image_id)
        if size is None:  # Matcher's pkl carries no sizes: read the image header
            with opened_image(self.image_root / image_id) as image:
                size = (image.height, image.width)
        return merged_mask(segmentations, *size)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        if self.shot is not None and shot != self.shot:
            raise UserInputError(
                f"this lvis92i has the lineage's {self.shot}-shot folds; build it with "
                f"shot={shot} (Lvis92i.options_for_shot) for {shot}-shot episodes, or with "
                "membership=fixed")
        return sample_round_robin(self, rng, shot, count)


def _rule(membership: Any) -> str | None:
    """The rule a membership spelling names (None if unknown)."""
    return MEMBERSHIPS.get(membership) if isinstance(membership, str) else None


def membership_rule(membership: Any, shot: Any) -> tuple[str, int | None]:
    """(``lineage`` or ``fixed``, the shot whose folds are used: None for ``fixed``), every
    option value checked."""
    rule = _rule(membership)
    if rule is None:
        raise UserInputError(f"lvis92i membership {membership!r} is unknown; use lineage (the "
                             "published folds, per shot) or fixed (the same folds for every "
                             "shot)")
    if shot is not None and (isinstance(shot, bool) or not isinstance(shot, int) or shot < 1):
        raise UserInputError(f"lvis92i option shot={shot!r} is not a positive whole number; use "
                             "e.g. --dataset-option shot=1")
    if rule == "fixed":
        if shot is not None:
            raise UserInputError(f"lvis92i membership={membership} uses the same folds for every "
                                 f"shot and takes no shot; drop shot={shot} or use "
                                 "membership=lineage")
        return rule, None
    return rule, DEFAULT_SHOT if shot is None else shot
