"""PACO-Part: parts of objects in COCO 2017 images (PACO-LVIS as Matcher distilled it), 4 folds;
SANSA scores it at canvas 640 and trains on it in its generalist mix.

Layout (``--data-root`` = the ``PACO-Part`` folder of Matcher's ``paco.zip``, or its parent):
``coco/{train2017,val2017}/*.jpg`` and ``paco/paco_part_{train,val}.pkl``. A pkl holds
``{"cid2img": {part category id: [{image id: path}, ...]}, "img2anno": {image id:
[{"category_id", "obj_ann_id", "obj_bbox": [x, y, w, h], "segmentation": polygons or RLE},
...]}}``; a path's last two parts (``val2017/x.jpg``) name the file under ``coco/``. The pkl files
come from others and are read as data only (nothing in them runs).

Classes are part category ids. Fold ``f`` takes the categories at positions ``f, f+4, ...`` of the
train pkl's key order (Matcher asserts 448 categories; a count that is not a multiple of 4 is
refused, another one noted). Option ``membership`` says which of them are fold classes:
``lineage`` (default, the published folds): those with more than ``shot`` distinct val images
(val lists de-duplicated per image; 1-shot: 79/82/66/76 = 303), with LVIS-92i's handling of the
shot (:meth:`PacoPart.options_for_shot`; without one the 1-shot folds, and a note; an instance
serves its own shot only); ``fixed``: more than 5 val images whatever the shot (the lineage's
5-shot folds). ``val`` holds the fold's classes with the val lists; ``train`` every train category
that is not a fold class (Matcher's rule: a candidate too rare to test is trained on), with the
train lists as they are (repeats kept). Fold ``None`` (``--fold all``) holds nothing out.

Image ids are ``<folder>/<file>#<obj_ann_id>``, e.g. ``val2017/000000123456.jpg#1234``: one parent
object; :meth:`PacoPart.images` lists every parent carrying the part. The mask is the union of
that parent's segments of the part. Option ``box_crop`` (default true, as the lineage): image and
mask are cropped to the parent's box ``obj_bbox``, rows ``int(y):int(y+h)``, cols
``int(x):int(x+w)`` (from its first annotation; a note counts parents whose annotations disagree).

Test protocol (SANSA's): 2500 episodes per fold; a class uniformly, an image uniformly from its
list, then one of its parents carrying the part uniformly; supports the same way, rejecting only
the query's file (repeats possible). With ``box_crop``, an episode where a crop would be empty
(``int(x+w) <= int(x)``, ``int(y+h) <= int(y)`` or a negative start) is redrawn whole, as SANSA
does (Matcher does not); such parents are not in :meth:`PacoPart.images`. A training episode is
drawn the same way: the reference as the query, the targets as the supports.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.artifacts.safe_pickle import load_data_pickle
from sansa_cli.datasets.base import (BuildResult, Episode, FewShotDataset, TrainingEpisode,
                                     Track, no_track)
from sansa_cli.datasets.part_crop import (FIXED_SHOT, check_flag, check_shot, crop, cropped_image,
                                          find_layout, fold_sizes, fold_text, instance_id,
                                          membership_rule, split_instance_id, unknown_class,
                                          write_frozen_folds)
from sansa_cli.datasets.reading import open_rgb, opened_image
from sansa_cli.datasets.segmentation import merged_mask
from sansa_cli.errors import DatasetError, UserInputError

PKL = {"train": "paco/paco_part_train.pkl", "val": "paco/paco_part_val.pkl"}
IMAGES = "coco"
MATCHER_CATEGORIES = 448
PUBLISHED_SIZES = (79, 82, 66, 76)
MAX_EPISODES = 2500
MAX_REDRAWS = 1000
DOWNLOAD = ("download Matcher's paco.zip (paco_part_{train,val}.pkl, linked from Matcher's "
            "datasets/README.md) into paco/ and the COCO 2017 images into coco/")
FOLDS_FILE = "paco_part_folds.json"
ID_FORM = "<folder>/<file>#<obj_ann_id>, e.g. val2017/000000123456.jpg#1234"


@dataclass(frozen=True)
class PacoSplit:
    """One pkl, indexed."""

    order: tuple[int, ...]  # part category ids, in key order
    lists: dict[int, list[str]]  # category -> files as listed (val: one entry per image)
    image_key: dict[str, Any]  # file -> its img2anno key
    instances: dict[Any, dict[int, list[int]]]  # img2anno key -> category -> parents, first seen
    boxes: dict[tuple[Any, int], tuple[float, ...]]  # (key, parent) -> obj_bbox, first annotation
    annotations: dict  # img2anno
    disagreeing: int  # parents whose annotations carry different obj_bbox


def index_split(table: Any, path: Path, dedupe: bool) -> PacoSplit:
    """Index Matcher's pkl content; ``dedupe`` keeps one entry per image in each list (val)."""
    try:
        lists, image_key = {}, {}
        for cid, entries in table["cid2img"].items():
            files, seen = [], set()
            for entry in entries:
                ((key, where),) = entry.items()
                file = "/".join(str(where).replace("\\", "/").split("/")[-2:])
                image_key[file] = key
                if not (dedupe and key in seen):
                    seen.add(key)
                    files.append(file)
            lists[int(cid)] = files
        instances, boxes, disagreeing = {}, {}, set()
        for key, annotations in table["img2anno"].items():
            per_image = instances[key] = {}
            for a in annotations:  # ~10^6 in the train pkl: kept lean
                obj, cid, box = int(a["obj_ann_id"]), int(a["category_id"]), a["obj_bbox"]
                parents = per_image.get(cid)
                if parents is None:
                    per_image[cid] = [obj]
                elif obj not in parents:
                    parents.append(obj)
                first = boxes.get((key, obj))
                if first is None:
                    x, y, w, h = box
                    boxes[key, obj] = (float(x), float(y), float(w), float(h))
                elif first != tuple(box):
                    disagreeing.add((key, obj))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(f"{path} is not Matcher's PACO-Part pkl ({type(exc).__name__}: {exc}); "
                           f"{DOWNLOAD}") from exc
    return PacoSplit(tuple(lists), lists, image_key, instances, boxes, table["img2anno"],
                     len(disagreeing))


@functools.lru_cache(maxsize=4)
def _load_split(path: Path, mtime_ns: int, dedupe: bool) -> PacoSplit:
    table = load_data_pickle(path, "PACO-Part annotation file", f"re-download it: {DOWNLOAD}")
    return index_split(table, path, dedupe)


def load_splits(top: Path) -> tuple[PacoSplit, PacoSplit]:
    """(train, val) of the PACO-Part folder ``top``; the category count checked."""
    train, val = (_load_split(top / PKL[s], (top / PKL[s]).stat().st_mtime_ns, s == "val")
                  for s in ("train", "val"))
    if len(train.order) % 4:
        raise DatasetError(f"paco_part: {top / PKL['train']} has {len(train.order)} part "
                           f"categories, not a multiple of the 4 folds (Matcher's file has "
                           f"{MATCHER_CATEGORIES}); {DOWNLOAD}")
    return train, val


def fold_members(order: tuple[int, ...], val: PacoSplit, fold: int | None,
                 threshold: int) -> list[int]:
    """The categories at positions ``fold, fold+4, ...`` (every position for None) with more than
    ``threshold`` distinct val images, in key order."""
    positions = range(len(order)) if fold is None else range(fold, len(order), 4)
    return [order[p] for p in positions if len(val.lists.get(order[p], ())) > threshold]


def _rows_cols(box: tuple[float, ...]) -> tuple[tuple[int, int], tuple[int, int]]:
    x, y, w, h = box
    return (int(y), int(y + h)), (int(x), int(x + w))


def _crops(box: tuple[float, ...]) -> bool:
    """Whether the box's crop holds a pixel (the images' own size aside: COCO boxes lie inside)."""
    (r0, r1), (c0, c1) = _rows_cols(box)
    return 0 <= r0 < r1 and 0 <= c0 < c1


class PacoPart(FewShotDataset):
    """PACO-Part in Matcher's layout: part categories dealt to 4 folds by key position."""

    name = "paco_part"
    num_folds = 4
    splits = ("train", "val")
    eval_split = "val"
    default_canvas = 640
    episodes_per_fold = MAX_EPISODES
    supports_all_folds = True

    def __init__(self, root: str | Path, fold: int | None = 0, split: str | None = None, *,
                 box_crop: bool = True, membership: str = "lineage", shot: int | None = None):
        super().__init__(root, fold, split)
        self.box_crop = check_flag(box_crop, "box_crop", self.name)
        self.membership, self.shot = membership_rule(membership, shot, self.name)
        self._shot_given = shot is not None
        self.top = find_layout(self.root, "PACO-Part", (PKL["train"], PKL["val"], IMAGES),
                               self.name, DOWNLOAD)
        train, val = load_splits(self.top)
        test = fold_members(train.order, val, fold, FIXED_SHOT if self.shot is None else self.shot)
        self.categories = len(train.order)
        self.data = val if self.split == "val" else train
        held_out = set(test) if fold is not None else set()
        self.classes = sorted(test if self.split == "val" else
                              [c for c in train.order if c not in held_out])
        if not self.classes:
            raise DatasetError(f"paco_part fold {fold_text(fold)} has no "
                               f"{self.split} class in {self.top / 'paco'}; {DOWNLOAD}")
        self._pools: dict[int, list[str]] = {}
        self._drawable: dict[int, list[str]] = {}
        self._classes: list[int] | None = None

    @classmethod
    def options_for_shot(cls, options: dict[str, Any], shot: int) -> dict[str, Any]:
        """The lineage's folds depend on the shot: unless ``membership`` is ``fixed``, the
        options get ``shot``."""
        if options.get("membership", "lineage") == "lineage":
            return {**options, "shot": shot}
        return options

    @classmethod
    def build(cls, root: Path, out: Path | None, options: dict[str, Any],
              track: Track = no_track) -> BuildResult:
        """Check the layout and freeze the fold classes (lineage 1-shot and 5-shot, fixed) into
        ``out/paco_part_folds.json`` (default: the PACO-Part folder)."""
        top = find_layout(Path(root).expanduser(), "PACO-Part", (PKL["train"], PKL["val"],
                                                                  IMAGES), cls.name, DOWNLOAD)
        train, val = load_splits(top)
        rules = {"lineage_1shot": 1, "lineage_5shot": 5, "fixed": FIXED_SHOT}
        folds = {rule: [sorted(fold_members(train.order, val, f, threshold)) for f in range(4)]
                 for rule, threshold in rules.items()}
        body = {"dataset": cls.name, "categories": len(train.order),
                "annotations": {s: str((top / PKL[s]).resolve()) for s in PKL}, "folds": folds}
        line = write_frozen_folds((Path(out).expanduser() if out else top) / FOLDS_FILE, body)
        summary = (f"paco_part fold classes of {len(train.order)} part categories, lineage "
                   f"1-shot: {fold_sizes(folds['lineage_1shot'])} (Matcher's files: "
                   f"{fold_sizes([range(n) for n in PUBLISHED_SIZES])}); lineage 5-shot and "
                   f"fixed: {fold_sizes(folds['fixed'])}", line)
        return BuildResult(top, dict(options), summary)

    def options(self) -> dict[str, Any]:
        """The crop, the membership rule and its shot (None for ``fixed``)."""
        return {"box_crop": self.box_crop, "membership": self.membership, "shot": self.shot}

    def notes(self) -> list[str]:
        notes = []
        if self.categories != MATCHER_CATEGORIES:
            notes.append(f"paco_part: {self.top / PKL['train']} has {self.categories} part "
                         f"categories, not the {MATCHER_CATEGORIES} of Matcher's file; folds and "
                         "scores are not comparable with the published ones")
        if self.membership == "lineage" and not self._shot_given:
            notes.append("paco_part: no shot given, so these are the lineage's 1-shot folds; "
                         "K-shot runs (`sansa eval --shots`, `sansa prepare --episodes --shots`) "
                         "use the K-shot folds; --dataset-option membership=fixed keeps one set "
                         "of folds for every shot")
        if self.data.disagreeing:
            notes.append(f"paco_part: {self.data.disagreeing} parents in {PKL[self.split]} carry "
                         "different obj_bbox on their part annotations; their crop uses the "
                         "first (Matcher: the first of the episode's part)")
        if not self.box_crop:
            notes.append("paco_part: box_crop=false scores whole images; the published numbers "
                         "are measured inside the parent object's box")
        return notes

    # -- classes and images --------------------------------------------------------------------
    def _check_class(self, cid: int) -> None:
        if cid not in self.classes:
            raise unknown_class(self, cid)

    def class_name(self, cid: int) -> str:
        return f"part category {cid}"  # the pkl files carry no names

    def _parents(self, file: str, cid: int) -> list[int]:
        return self.data.instances.get(self.data.image_key[file], {}).get(cid, [])

    def images(self, cid: int) -> list[str]:
        """Every ``<file>#<parent>`` of the split whose parent carries the part (and, with
        ``box_crop``, whose box crops a pixel)."""
        if cid not in self._pools:
            self._check_class(cid)
            key = self.data.image_key
            self._pools[cid] = sorted({
                instance_id(file, obj) for file in set(self.data.lists.get(cid, ()))
                for obj in self._parents(file, cid)
                if not self.box_crop or _crops(self.data.boxes[(key[file], obj)])})
        return list(self._pools[cid])

    def _instance(self, image_id: str) -> tuple[str, Any, int]:
        file, obj = split_instance_id(image_id, self.name, ID_FORM)
        key = self.data.image_key.get(file)
        parent = int(obj) if obj.isdigit() else None
        if key is None or (key, parent) not in self.data.boxes:
            raise UserInputError(f"paco_part image id {image_id!r} is no parent object of the "
                                 f"{self.split} pkl; ids have the form {ID_FORM}")
        return file, key, parent

    def files(self, image_id: str) -> list[Path]:
        return [self.top / IMAGES / split_instance_id(image_id, self.name, ID_FORM)[0]]

    def load_image(self, image_id: str):
        file, key, parent = self._instance(image_id)
        image = open_rgb(self.top / IMAGES / file)
        if not self.box_crop:
            return image
        rows, cols = _rows_cols(self.data.boxes[(key, parent)])
        return cropped_image(image, rows, cols, image_id, self.name)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        """The union of the parent's segments of part ``cid`` (cropped with ``box_crop``)."""
        self._check_class(cid)
        file, key, parent = self._instance(image_id)
        segments = [a["segmentation"] for a in self.data.annotations[key]
                    if int(a["category_id"]) == cid and int(a["obj_ann_id"]) == parent]
        if not segments:
            raise UserInputError(f"paco_part image id {image_id!r} has no part of category {cid}")
        with opened_image(self.top / IMAGES / file) as image:
            height, width = image.height, image.width
        mask = merged_mask(segments, height, width)
        if not self.box_crop:
            return mask
        rows, cols = _rows_cols(self.data.boxes[(key, parent)])
        return np.ascontiguousarray(crop(mask, rows, cols))

    # -- episodes --------------------------------------------------------------------------------
    def _draw_list(self, cid: int) -> list[str]:
        """The class's list, less files without a parent of it (Matcher would crash on them)."""
        if cid not in self._drawable:
            self._drawable[cid] = [f for f in self.data.lists.get(cid, ())
                                   if self._parents(f, cid)]
        return self._drawable[cid]

    def _draw(self, rng: random.Random, supports: int) -> tuple[int, str, tuple[str, ...]]:
        """(class, query, supports) as SANSA draws them, redrawn whole while a crop is empty."""
        if self._classes is None:  # drawn from: classes with parents in 2 files
            self._classes = [c for c in self.classes if len(set(self._draw_list(c))) >= 2]
        classes = self._classes
        if not classes:
            raise DatasetError(f"no paco_part class of fold {fold_text(self.fold)} split "
                               f"{self.split} has parents in 2 files, as an episode needs")
        for _ in range(MAX_REDRAWS):
            cid = rng.choice(classes)
            files = self._draw_list(cid)
            query = rng.choice(files)
            chosen = [(query, rng.choice(self._parents(query, cid)))]
            while len(chosen) <= supports:
                file = rng.choice(files)
                if file != query:
                    chosen.append((file, rng.choice(self._parents(file, cid))))
            key = self.data.image_key
            if not self.box_crop or all(_crops(self.data.boxes[(key[f], o)]) for f, o in chosen):
                ids = [instance_id(f, o) for f, o in chosen]
                return cid, ids[0], tuple(ids[1:])
        raise DatasetError(f"paco_part: {MAX_REDRAWS} draws in a row held an object box that "
                           f"crops nothing; check obj_bbox in {PKL[self.split]} or use "
                           "--dataset-option box_crop=false")

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        check_shot(self.name, self.shot, shot)
        return [Episode(index, *self._draw(rng, shot))
                for index in range(count or self.episodes_per_fold)]

    def training_episode(self, rng: random.Random, seq_len: int) -> TrainingEpisode:
        """A class uniformly, the reference drawn as a query, ``seq_len`` targets as supports
        (other files than the reference's; repeats possible, as in the lineage)."""
        if seq_len < 1:
            raise UserInputError(f"seq_len must be positive, got {seq_len!r}")
        return TrainingEpisode(*self._draw(rng, seq_len))

