"""Tiny part datasets in the real on-disk formats: Pascal-Part as Matcher's pascal.zip lays it out
(index JSON + per-image JSON with RLE part masks) and PACO-Part as Matcher's paco.zip (pickled
plain dicts and lists).

Every builder takes an empty folder and returns ``(root, options)`` for ``Cls.create``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from tests.datasets_fixtures import box_polygon, box_rle, picture

# -- Pascal-Part ---------------------------------------------------------------------------------
#: supercategory -> object -> parts, in the index's order
PASCAL_PARTS = {
    "animals": {"bird": ["FACE", "WING", "TAIL"], "cat": ["FACE", "LEGS"]},
    "indoor": {"pottedplant": ["POT", "PLANT"]},
    "person": {"person": ["HEAD", "TORSO"]},
    "vehicles": {"aeroplane": ["BODY", "TAIL"], "car": ["WHEEL"]},
}
NO_TRAIN = {("bird", "TAIL")}  # never annotated in train images: not a fold class
NO_VAL = {("cat", "LEGS")}  # never annotated in val images: not a fold class
#: the fold classes these files make (aeroplane+TAIL is excluded by name)
PASCAL_FOLDS = [["bird+FACE", "bird+WING", "cat+FACE"], ["pottedplant+POT", "pottedplant+PLANT"],
                ["person+HEAD", "person+TORSO"], ["aeroplane+BODY", "car+WHEEL"]]
PASCAL_SIZE = (40, 30)  # w, h
VAL_PER_OBJECT, TRAIN_PER_OBJECT = 5, 2
#: instance 0's box and, per part j, its RLE pieces (x0, y0, x1, y1); part 0 has two pieces
BOX0 = (2, 3, 20, 27)
BOX1 = (12, 2, 38, 28)


def part_pieces(j: int) -> list[tuple[int, int, int, int]]:
    if j == 0:
        return [(3, 4, 9, 8), (12, 20, 18, 24)]
    return [(5, 4 + 5 * j, 15, 8 + 5 * j)]


#: instance 1 carries part 0 only, over a region that overlaps instance 0's box
OTHER_PIECE = (10, 10, 30, 16)


def _rle(piece) -> dict:
    w, h = PASCAL_SIZE
    return box_rle(w, h, *piece)


def _pascal_object(name: str, box, parts: dict[str, list]) -> dict:
    xmin, ymin, xmax, ymax = box
    return {"name": name, "bndbox": {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax},
            "parts": [{"name": part, "mask": [_rle(p) for p in pieces]}
                      for part, pieces in parts.items()]}


def make_pascal_part(root: Path, order: list[str] | None = None):
    """The Pascal-Part folder: per object 5 val and 2 train images, each with two instances of
    it (instance 0 carries every part, instance 1 only the first), odd images with a part-less
    chair first in the object list. ``order`` sets the index's supercategory key order."""
    voc = root / "VOCdevkit" / "VOC2010"
    index: dict = {}
    n = 0
    for supercategory, objects in PASCAL_PARTS.items():
        for obj, parts in objects.items():
            for k in range(VAL_PER_OBJECT + TRAIN_PER_OBJECT):
                split = "val" if k < VAL_PER_OBJECT else "train"
                voc_id, n = f"2008_{n:06d}", n + 1
                skip = NO_VAL if split == "val" else NO_TRAIN
                kept = [p for p in parts if (obj, p) not in skip]
                first = {parts[0]: [OTHER_PIECE]} if parts[0] in kept else {}
                listing = [_pascal_object(obj, BOX0, {p: part_pieces(parts.index(p))
                                                      for p in kept}),
                           _pascal_object(obj, BOX1, first)]
                if n % 2:
                    listing.insert(0, _pascal_object("chair", (1, 1, 10, 10), {}))
                (voc / "Annotations_Part_json_merged_part_classes").mkdir(parents=True,
                                                                          exist_ok=True)
                (voc / "Annotations_Part_json_merged_part_classes" / f"{voc_id}.json").write_text(
                    json.dumps({"object": listing}))
                picture(voc / "JPEGImages" / f"{voc_id}.jpg", PASCAL_SIZE, seed=n)
                entry = index.setdefault(supercategory, {"object": {}})["object"].setdefault(
                    obj, {"part": {p: {"train": [], "val": []} for p in parts}})
                for p in kept:
                    entry["part"][p][split].append(voc_id)
    order = order or list(PASCAL_PARTS)
    (voc / "all_obj_part_to_image.json").write_text(json.dumps({s: index[s] for s in order}))
    return root, {}


# -- PACO-Part -----------------------------------------------------------------------------------
#: part category ids in the train pkl's key order (not sorted: folds follow positions)
PACO_CATEGORIES = [501, 17, 230, 42, 8, 300, 77, 120]
#: distinct val images per category; 8's are listed twice each (de-duplication matters at 3-shot)
PACO_VAL_COUNTS = {501: 8, 17: 7, 230: 7, 42: 6, 8: 3, 300: 8, 77: 7, 120: 3}
LISTED_TWICE = 8
PACO_SIZE = (40, 32)
PARENT_A = [2.0, 3.0, 18.0, 20.0]  # x, y, w, h
PARENT_B = [16.0, 6.0, 20.0, 22.0]
TINY = [5.2, 5.0, 0.5, 10.0]  # int(5.2 + 0.5) == int(5.2): crops nothing
TINY_CATEGORY = 77  # parents C (tiny box) carry it in the first 3 val images
TWO_PIECES = 501  # parent A has two annotations of it; parent B one (RLE)


def paco_file(split: str, i: int) -> str:
    """val images 7 and 8 live in train2017, as LVIS val images do."""
    folder = "train2017" if split == "train" or i >= 7 else "val2017"
    return f"{folder}/{(100 if split == 'val' else 200) + i:012d}.jpg"


def _paco_annotations(image_key: int, i: int, categories: list[int]) -> list[dict]:
    w, h = PACO_SIZE
    annotations = []
    for c in categories:
        x = 4 + (c % 5)
        a = {"category_id": c, "obj_ann_id": 1000 + i, "obj_bbox": PARENT_A,
             "segmentation": box_polygon(x, 5, x + 8, 12), "image_id": image_key}
        annotations.append(a)
        if c == TWO_PIECES:
            annotations.append({**a, "segmentation": box_polygon(4, 14, 10, 18)})
            annotations.append({**a, "obj_ann_id": 2000 + i, "obj_bbox": PARENT_B,
                                "segmentation": box_rle(w, h, 10, 8, 30, 20)})
        if c == TINY_CATEGORY and i <= 3:
            annotations.append({**a, "obj_ann_id": 3000 + i, "obj_bbox": TINY})
    return annotations


def paco_table(split: str, counts: dict[int, int], images: int, order: list[int]) -> dict:
    """A pkl body: category ``c`` in the first ``counts[c]`` images, listed in ``order``."""
    cid2img: dict = {c: [] for c in order}
    img2anno: dict = {}
    for i in range(1, images + 1):
        key = (100 if split == "val" else 200) + i
        present = [c for c in order if i <= counts[c]]
        img2anno[key] = _paco_annotations(key, i, present)
        for c in present:
            cid2img[c].append({key: f"/data/coco/{paco_file(split, i)}"})
    for c in order:
        if split == "val" and c == LISTED_TWICE:
            cid2img[c] = cid2img[c] * 2  # repeated entries, as Matcher's val pkl has
        if split == "train" and c == order[1]:
            cid2img[c].append(dict(cid2img[c][0]))
    return {"cid2img": cid2img, "img2anno": img2anno}


def write_paco_pkl(path: Path, body: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(body))


def make_paco_part(root: Path, categories: list[int] | None = None):
    """The PACO-Part folder: 8 val and 6 train images (two or three parents each)."""
    order = categories or PACO_CATEGORIES
    val_counts = {c: PACO_VAL_COUNTS.get(c, 8) for c in order}
    for split, counts, n in (("val", val_counts, 8), ("train", {c: 6 for c in order}, 6)):
        write_paco_pkl(root / "paco" / f"paco_part_{split}.pkl", paco_table(split, counts, n,
                                                                            order))
        for i in range(1, n + 1):
            picture(root / "coco" / paco_file(split, i), PACO_SIZE, seed=i + 50 * (split == "val"))
    return root, {}


BUILDERS = {"pascal_part": make_pascal_part, "paco_part": make_paco_part}
