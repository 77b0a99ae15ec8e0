"""Pascal-Part: object parts in PASCAL VOC 2010 images, 4 folds = supercategories (Matcher's
part benchmark, scored by SANSA at canvas 518).

Layout (``--data-root`` = the ``Pascal-Part`` folder of Matcher's ``pascal.zip``, or its
parent)::

    VOCdevkit/VOC2010/JPEGImages/<VOC id>.jpg
    VOCdevkit/VOC2010/Annotations_Part_json_merged_part_classes/<VOC id>.json
    VOCdevkit/VOC2010/all_obj_part_to_image.json

The index ``all_obj_part_to_image.json`` maps supercategory -> ``object`` -> object name ->
``part`` -> PART name -> ``train``/``val`` -> VOC ids. A per-image JSON holds a list ``object``
of ``{name, bndbox: {xmin, ymin, xmax, ymax}, parts: [{name, mask: [COCO RLE]}]}``.

Classes are (object, PART) pairs named ``object+PART``. Fold ``f`` is the supercategory named
``animals``, ``indoor``, ``person``, ``vehicles`` (by name, whatever the index's key order): every
pair of it with at least one train and one val image except ``aeroplane+TAIL``, in the index's
order (31/4/5/16 = 56 classes in Matcher's files). Class ids number the pairs of all four folds in
fold order. ``val`` (the test episodes) holds the fold's pairs with their val lists; ``train``
the other supercategories' pairs with their train lists (Pascal-Part is not in the paper's
training mix). Fold ``None`` (``--fold all``) holds every pair.

Image ids are ``<VOC id>#<k>``, e.g. ``2008_000123#2``: instance ``k`` (0-based position in the
per-image ``object`` list) of the class's object; :meth:`PascalPart.images` lists every instance
that carries the part. The mask is the union of that instance's masks of the part (RLEs OR-ed);
the same part on another instance is background. Option ``box_crop`` (default true, as the
lineage): image and mask are cropped to the instance's ``bndbox``, rows ``ymin:ymax``, cols
``xmin:xmax`` (VOC's values as they are), so the score is measured inside the object.

Test protocol (Matcher's): ``min(n, 2500)`` episodes, ``n`` the length of all the split's per-pair
lists of the fold's supercategories joined (excluded pairs and repeats included: indoor gives
959). Classes are visited in turn. Query: an image drawn uniformly from the pair's list, then one
instance of the object uniformly; the image is redrawn while that instance lacks the part.
Supports: the same draw, rejecting the query's image and images already drawn. A class with no
more than ``shot`` images carrying the part is skipped (the lineage would loop forever on it).
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.datasets.base import BuildResult, Episode, FewShotDataset, Track, no_track
from sansa_cli.datasets.part_crop import (check_flag, crop, cropped_image, find_layout,
                                         fold_sizes, fold_text, instance_id, split_instance_id,
                                         unknown_class, write_frozen_folds)
from sansa_cli.datasets.reading import open_rgb, opened_image
from sansa_cli.datasets.segmentation import merged_mask
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

SUPERCATEGORIES = ("animals", "indoor", "person", "vehicles")
EXCLUDED = frozenset({"aeroplane+TAIL"})
PUBLISHED_SIZES = (31, 4, 5, 16)
MAX_EPISODES = 2500
VOC = "VOCdevkit/VOC2010"
INDEX = f"{VOC}/all_obj_part_to_image.json"
ANNOTATIONS = f"{VOC}/Annotations_Part_json_merged_part_classes"
IMAGES = f"{VOC}/JPEGImages"
DOWNLOAD = ("download Matcher's pascal.zip (Pascal-Part with merged part classes, linked from "
            "Matcher's datasets/README.md) and unzip it")
FOLDS_FILE = "pascal_part_folds.json"
ID_FORM = "<VOC id>#<object index>, e.g. 2008_000123#0"


@dataclass(frozen=True)
class PartPair:
    """One class: an object's part in one supercategory, with the index's image lists."""

    fold: int
    obj: str
    part: str
    lists: dict[str, tuple[str, ...]]  # split -> VOC ids, as listed

    @property
    def name(self) -> str:
        return f"{self.obj}+{self.part}"


@dataclass(frozen=True)
class PartIndex:
    pairs: tuple[PartPair, ...]  # class id = position
    listed: tuple[dict[str, int], ...]  # per fold: split -> ids listed over all its pairs


@dataclass(frozen=True)
class PartObject:
    """One object of a per-image JSON: its name, box (xmin, ymin, xmax, ymax), part names."""

    name: str
    box: tuple[int, int, int, int]
    parts: frozenset[str]


def read_index(body: Any, path: Path) -> PartIndex:
    """The fold classes from the parsed index, supercategories looked up by name."""
    pairs, listed = [], []
    try:
        for fold, supercategory in enumerate(SUPERCATEGORIES):
            if supercategory not in body:
                raise DatasetError(f"pascal_part index {path} has no supercategory "
                                   f"{supercategory!r}; {DOWNLOAD}")
            counts = {"train": 0, "val": 0}
            for obj, entry in body[supercategory]["object"].items():
                for part, lists in entry["part"].items():
                    split_lists = {s: tuple(str(i) for i in lists[s]) for s in counts}
                    for split in counts:
                        counts[split] += len(split_lists[split])
                    pair = PartPair(fold, str(obj), str(part), split_lists)
                    if all(split_lists.values()) and pair.name not in EXCLUDED:
                        pairs.append(pair)
            listed.append(counts)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path} is not Matcher's Pascal-Part index ({type(exc).__name__}: "
                           f"{exc}); {DOWNLOAD}") from exc
    return PartIndex(tuple(pairs), tuple(listed))


@functools.lru_cache(maxsize=4)
def _load_index(path: Path, mtime_ns: int) -> PartIndex:
    return read_index(_read_json(path, "index"), path)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingFileError(f"pascal_part {what} {path} does not exist; {DOWNLOAD}") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"pascal_part {what} {path} is unreadable ({exc}); {DOWNLOAD}") from exc


@functools.lru_cache(maxsize=65536)
def _objects(path: Path, mtime_ns: int) -> tuple[PartObject, ...]:
    body = _read_json(path, "annotation")
    try:
        return tuple(PartObject(str(o["name"]), _box(o["bndbox"]),
                                frozenset(str(p["name"]) for p in o.get("parts", ())))
                     for o in body["object"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(f"pascal_part annotation {path} is malformed ({type(exc).__name__}: "
                           f"{exc}); {DOWNLOAD}") from exc


def _box(bndbox: dict) -> tuple[int, int, int, int]:
    # by name; Matcher reads the values in key order, which is xmin, ymin, xmax, ymax
    return tuple(int(float(bndbox[k])) for k in ("xmin", "ymin", "xmax", "ymax"))


class PascalPart(FewShotDataset):
    """Pascal-Part in Matcher's layout: (object, PART) classes, folds by supercategory."""

    name = "pascal_part"
    num_folds = 4
    splits = ("train", "val")
    eval_split = "val"
    default_canvas = 518
    episodes_per_fold = MAX_EPISODES  # at most; an instance holds its own count
    supports_all_folds = True

    def __init__(self, root: str | Path, fold: int | None = 0, split: str | None = None, *,
                 box_crop: bool = True):
        super().__init__(root, fold, split)
        self.box_crop = check_flag(box_crop, "box_crop", self.name)
        self.top = find_layout(self.root, "Pascal-Part", (INDEX, ANNOTATIONS, IMAGES), self.name,
                               DOWNLOAD)
        path = self.top / INDEX
        self.index = _load_index(path, path.stat().st_mtime_ns)
        folds = ([fold] if self.split == "val" else [f for f in range(4) if f != fold]) \
            if fold is not None else list(range(4))
        self.classes = [cid for cid, pair in enumerate(self.index.pairs) if pair.fold in folds]
        if not self.classes:
            raise DatasetError(f"pascal_part {self.split} of fold {fold_text(fold)} has no "
                               f"(object, part) pair with train and val images in {path}; "
                               f"{DOWNLOAD}")
        listed = sum(self.index.listed[f][self.split] for f in folds)
        self.episodes_per_fold = min(listed, MAX_EPISODES)
        self._pools: dict[int, list[str]] = {}

    @classmethod
    def build(cls, root: Path, out: Path | None, options: dict[str, Any],
              track: Track = no_track) -> BuildResult:
        """Check the layout and freeze the fold classes into ``out/pascal_part_folds.json``
        (default: the Pascal-Part folder)."""
        top = find_layout(Path(root).expanduser(), "Pascal-Part", (INDEX, ANNOTATIONS, IMAGES),
                          cls.name, DOWNLOAD)
        path = top / INDEX
        index = _load_index(path, path.stat().st_mtime_ns)
        folds = [[(cid, p.name) for cid, p in enumerate(index.pairs) if p.fold == f]
                 for f in range(4)]
        body = {"dataset": cls.name, "index": str(path.resolve()), "folds": [
            {"fold": f, "supercategory": SUPERCATEGORIES[f],
             "episodes": min(index.listed[f]["val"], MAX_EPISODES),
             "classes": [{"id": cid, "name": name} for cid, name in classes]}
            for f, classes in enumerate(folds)]}
        dest = (Path(out).expanduser() if out is not None else top) / FOLDS_FILE
        line = write_frozen_folds(dest, body)
        summary = (f"pascal_part fold classes ({'/'.join(SUPERCATEGORIES)}): {fold_sizes(folds)} "
                   f"(Matcher's files: {fold_sizes([range(n) for n in PUBLISHED_SIZES])})", line)
        return BuildResult(top, dict(options), summary)

    def options(self) -> dict[str, Any]:
        """Whether images and masks are cropped to the object's box."""
        return {"box_crop": self.box_crop}

    def notes(self) -> list[str]:
        notes = []
        sizes = tuple(sum(p.fold == f for p in self.index.pairs) for f in range(4))
        if sizes != PUBLISHED_SIZES:
            notes.append(f"pascal_part: the folds hold {'/'.join(map(str, sizes))} classes, not "
                         f"the {'/'.join(map(str, PUBLISHED_SIZES))} of Matcher's files; scores "
                         "are not comparable with the published ones")
        if not self.box_crop:
            notes.append("pascal_part: box_crop=false scores whole images; the published numbers "
                         "are measured inside the object's box")
        return notes

    # -- classes and images --------------------------------------------------------------------
    def _pair(self, cid: int) -> PartPair:
        if cid not in self.classes:
            raise unknown_class(self, cid)
        return self.index.pairs[cid]

    def class_name(self, cid: int) -> str:
        """``object+PART``, for any class of the index (another shot's or fold's too)."""
        pairs = self.index.pairs
        return pairs[cid].name if isinstance(cid, int) and 0 <= cid < len(pairs) else f"class {cid}"

    def _objects_of(self, voc: str) -> tuple[PartObject, ...]:
        path = self.top / ANNOTATIONS / f"{voc}.json"
        return _objects(path, path.stat().st_mtime_ns if path.exists() else 0)

    def images(self, cid: int) -> list[str]:
        """Every ``<VOC id>#<k>`` of the split whose object ``k`` carries the part."""
        if cid not in self._pools:
            pair = self._pair(cid)
            self._pools[cid] = sorted(
                instance_id(voc, k) for voc in set(pair.lists[self.split])
                for k, obj in enumerate(self._objects_of(voc))
                if obj.name == pair.obj and pair.part in obj.parts)
        return list(self._pools[cid])

    def _instance(self, image_id: str) -> tuple[str, int, PartObject]:
        voc, k = split_instance_id(image_id, self.name, ID_FORM)
        objects = self._objects_of(voc)
        if not k.isdigit() or int(k) >= len(objects):
            raise UserInputError(f"pascal_part image id {image_id!r}: {voc} has {len(objects)} "
                                 f"objects (0..{len(objects) - 1}); ids have the form {ID_FORM}")
        return voc, int(k), objects[int(k)]

    def files(self, image_id: str) -> list[Path]:
        """The image (the per-image JSON is read, and checked, when the classes are indexed)."""
        return [self.top / IMAGES / f"{split_instance_id(image_id, self.name, ID_FORM)[0]}.jpg"]

    def load_image(self, image_id: str):
        voc, _, obj = self._instance(image_id)
        image = open_rgb(self.top / IMAGES / f"{voc}.jpg")
        if not self.box_crop:
            return image
        xmin, ymin, xmax, ymax = obj.box
        return cropped_image(image, (ymin, ymax), (xmin, xmax), image_id, self.name)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        """The union of instance ``k``'s masks of the part (cropped with ``box_crop``)."""
        pair = self._pair(cid)
        voc, k, obj = self._instance(image_id)
        path = self.top / ANNOTATIONS / f"{voc}.json"
        raw = _read_json(path, "annotation")["object"][k]
        rles = [rle for part in raw.get("parts", ()) if part["name"] == pair.part
                for rle in part["mask"]]
        if obj.name != pair.obj or not rles:
            raise UserInputError(f"pascal_part image id {image_id!r} is a {obj.name} without "
                                 f"{pair.part}; class {cid} is {pair.name}")
        with opened_image(self.top / IMAGES / f"{voc}.jpg") as image:
            height, width = image.height, image.width
        mask = merged_mask(rles, height, width)
        if not self.box_crop:
            return mask
        xmin, ymin, xmax, ymax = obj.box
        return np.ascontiguousarray(crop(mask, (ymin, ymax), (xmin, xmax)))

    # -- episodes --------------------------------------------------------------------------------
    def _draw(self, rng: random.Random, pair: PartPair, taken: set[str]) -> str:
        """One instance as Matcher draws it: an image of the pair's list (not in ``taken``),
        an instance of the object in it, redrawn while that instance lacks the part."""
        listed = pair.lists[self.split]
        while True:
            voc = rng.choice(listed)
            if voc in taken:
                continue
            objects = self._objects_of(voc)
            candidates = [k for k, obj in enumerate(objects) if obj.name == pair.obj]
            if not candidates:
                continue
            k = rng.choice(candidates)
            if pair.part in objects[k].parts:
                return instance_id(voc, k)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        usable = [cid for cid in self.classes
                  if len({_image(i) for i in self.images(cid)}) > shot]
        if not usable:
            raise DatasetError(f"no pascal_part class of fold {fold_text(self.fold)} split "
                               f"{self.split} has the {shot + 1} images carrying its part that a "
                               f"{shot}-shot episode needs")
        episodes = []
        for index in range(count or self.episodes_per_fold):
            cid = usable[index % len(usable)]
            pair = self.index.pairs[cid]
            query = self._draw(rng, pair, set())
            taken, supports = {_image(query)}, []
            for _ in range(shot):
                supports.append(self._draw(rng, pair, taken))
                taken.add(_image(supports[-1]))
            episodes.append(Episode(index, cid, query, tuple(supports)))
        return episodes


def _image(image_id: str) -> str:
    """The VOC id of an instance id."""
    return image_id.rpartition("#")[0]

