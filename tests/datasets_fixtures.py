"""Tiny datasets in each benchmark's real on-disk format, written by the tests.

Every builder takes an empty folder and returns ``(root, options)`` for ``Cls.create``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

SHARED_SPLITS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hsnet-splits"
# Real COCO category ids are 1..90 with ten gaps; keep the gaps so the 0..79 mapping is exercised.
COCO_GAPS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO_CATEGORY_IDS = [c for c in range(1, 91) if c not in COCO_GAPS]


def picture(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A random RGB image of ``size`` (w, h), saved in the format of its suffix."""
    rng = np.random.default_rng(seed)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def box_polygon(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def box_rle(w: int, h: int, x0: int, y0: int, x1: int, y1: int, compressed: bool = True) -> dict:
    """COCO RLE of a box; ``compressed=False`` gives the uncompressed (counts list) variant."""
    m = np.zeros((h, w), dtype=np.uint8, order="F")
    m[y0:y1, x0:x1] = 1
    if compressed:
        rle = mask_utils.encode(m)
        return {"size": list(rle["size"]), "counts": rle["counts"].decode()}
    flat, counts, value, run = m.ravel(order="F"), [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return {"size": [h, w], "counts": counts}


# -- COCO 2014 instance JSON (input of `sansa prepare coco20i`) -----------------------------------
def coco_instances(split: str, num_images: int, classes: list[int], size=(24, 20)) -> dict:
    """Images each holding a big instance of ``classes[i % n]`` and a small one of the next class
    overlapping it (to check the smaller-on-top rule), as polygons, RLE and uncompressed RLE."""
    w, h = size
    images, annotations = [], []
    for i in range(num_images):
        name = f"COCO_{split}_{i + 1:012d}.jpg"
        images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        big, small = classes[i % len(classes)], classes[(i + 1) % len(classes)]
        kinds = [box_polygon(2, 2, 20, 18), box_rle(w, h, 2, 2, 20, 18),
                 box_rle(w, h, 2, 2, 20, 18, compressed=False)]
        annotations.append({"id": 2 * i + 1, "image_id": i + 1, "iscrowd": 0, "area": 288.0,
                            "category_id": COCO_CATEGORY_IDS[big], "segmentation": kinds[i % 3]})
        annotations.append({"id": 2 * i + 2, "image_id": i + 1, "iscrowd": 0, "area": 36.0,
                            "category_id": COCO_CATEGORY_IDS[small],
                            "segmentation": box_polygon(8, 8, 14, 14)})
    categories = [{"id": c, "name": f"cat{c}"} for c in COCO_CATEGORY_IDS]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_coco_source(root: Path, val_classes=(0, 4, 8), train_classes=(1, 2, 3)) -> Path:
    """A COCO 2014 folder: images + official-style instance JSON."""
    for split, classes, n in (("val2014", val_classes, 6), ("train2014", train_classes, 6)):
        body = coco_instances(split, n, list(classes))
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(body))
        for k, image in enumerate(body["images"]):
            picture(root / split / image["file_name"], (24, 20), seed=k)
    return root


def make_coco20i(root: Path):
    from sansa_cli.datasets.prepare_coco import build_coco20i

    build_coco20i(make_coco_source(root), min_pixels=1)
    return root, {}


# -- LVIS v1 ---------------------------------------------------------------------------------------
def lvis_json(folder: str, num_images: int, counts: dict[int, int] | None = None,
              num_classes: int = 12) -> dict:
    """Category ``c`` is in the first ``counts[c]`` images (default: category 1 in 3, the others
    in every image)."""
    counts = {1: 3} if counts is None else counts
    w, h = 24, 20
    images, annotations = [], []
    for i in range(num_images):
        images.append({"id": 100 + i, "height": h, "width": w,
                       "coco_url": f"http://images.cocodataset.org/{folder}/{100 + i:012d}.jpg"})
        for c in range(1, num_classes + 1):
            if i >= counts.get(c, num_images):
                continue
            x = (c * 3 + i) % 14
            segmentation = (box_polygon(x, 2, x + 8, 10) if c % 2
                            else box_rle(w, h, x, 10, x + 8, 18))
            annotations.append({"id": len(annotations) + 1, "image_id": 100 + i, "category_id": c,
                                "segmentation": segmentation})
    # a second instance of class 3 in image 0, merged into the same mask
    annotations.append({"id": len(annotations) + 1, "image_id": 100, "category_id": 3,
                        "segmentation": box_polygon(0, 14, 4, 19)})
    categories = [{"id": c, "name": f"thing{c}"} for c in range(1, num_classes + 1)]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_lvis92i(root: Path, num_classes: int = 13, val_counts: dict[int, int] | None = None):
    """COCO 2017 images + lvis_v1_{train,val}.json. By default 13 classes (1 fold member each);
    category 1 has 3 val images: in the lineage's 1-shot folds, not in its 5-shot ones.
    ``val_counts`` sets the val images of chosen categories (the others are in all 8)."""
    (root / "annotations").mkdir(parents=True)
    for split, n in (("val", 8), ("train", 5)):
        body = lvis_json(f"{split}2017", n, val_counts if split == "val" else None, num_classes)
        (root / "annotations" / f"lvis_v1_{split}.json").write_text(json.dumps(body))
        for k, image in enumerate(body["images"]):
            picture(root / f"{split}2017" / image["coco_url"].rsplit("/", 1)[1], (24, 20), k)
    return root, {}


# -- FSS-1000 --------------------------------------------------------------------------------------
def make_fss1000(root: Path, per_class: int = 4):
    names = {"trn": ["apple", "bus"], "val": ["cat"], "test": ["dog", "egg", "fig"]}
    for split, classes in names.items():
        (root / "splits").mkdir(parents=True, exist_ok=True)
        # CRLF, as HSNet's real test.txt
        (root / "splits" / f"{split}.txt").write_bytes("\r\n".join(classes).encode() + b"\r\n")
        for c, name in enumerate(classes):
            for k in range(1, per_class + 1):
                size = (20 + k, 16 + c)
                picture(root / "data" / name / f"{k}.jpg", size, seed=k + 10 * c)
                m = np.zeros(size[::-1], dtype=np.uint8)
                m[4:12, 4:14] = 200 + k  # anything >= 128 is object
                m[0, 0] = 100  # below 128: background
                Image.fromarray(m).save(root / "data" / name / f"{k}.png")
    return root, {}


# -- Pascal VOC2012 + SBD -------------------------------------------------------------------------
def voc_mask(path: Path, size, classes: list[int]) -> None:
    """Palette PNG: one box per class (1-based) in its own quadrant, each with a 255 border."""
    w, h = size
    m = np.zeros((h, w), dtype=np.uint8)
    for q, cls in enumerate(classes):
        x, y = (q % 2) * (w // 2), (q // 2) * (h // 2)
        m[y + 1:y + h // 2 - 1, x + 1:x + w // 2 - 1] = 255
        m[y + 2:y + h // 2 - 2, x + 2:x + w // 2 - 2] = cls
    image = Image.fromarray(m).convert("P")
    image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_pascal5i(root: Path):
    """8 images, each holding one class of every fold; split files list them per fold."""
    lines: dict[tuple[str, int], list[str]] = {}
    for i in range(8):
        name = f"2008_{i:06d}"
        classes = [5 * fold + 1 + i % 3 for fold in range(4)]
        picture(root / "JPEGImages" / f"{name}.jpg", (32, 24), seed=i)
        voc_mask(root / "SegmentationClassAug" / f"{name}.png", (32, 24), classes)
        for fold, cls in enumerate(classes):
            for split in ("val", "trn"):
                lines.setdefault((split, fold), []).append(f"{name}__{cls:02d}")
    for (split, fold), listed in lines.items():
        path = root / "splits" / split / f"fold{fold}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(listed) + "\n")
    return root, {}


# -- a user's folder -------------------------------------------------------------------------------
def make_folder(root: Path):
    for c, name in enumerate(["bolt", "nut", "washer"]):
        for k in range(3):
            suffix = ".png" if (c + k) % 2 else ".jpg"
            picture(root / "images" / name / f"img{k}{suffix}", (22 + k, 18), seed=c * 3 + k)
            m = np.zeros((18, 22 + k), dtype=np.uint8)
            m[3:10, 3:12] = 255
            (root / "masks" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(m).save(root / "masks" / name / f"img{k}.png")
    return root, {}


BUILDERS = {
    "coco20i": make_coco20i,
    "fss1000": make_fss1000,
    "lvis92i": make_lvis92i,
    "pascal5i": make_pascal5i,
    "folder": make_folder,
}


def _more_builders() -> None:
    """The part and cross-domain datasets' builders (in modules of their own)."""
    from tests.crossdomain_fixtures import BUILDERS as cross_domain
    from tests.part_fixtures import BUILDERS as parts

    BUILDERS.update(parts)
    BUILDERS.update(cross_domain)


_more_builders()


def matcher_pkl(body: dict) -> dict:
    """Matcher's ``lvis_*.pkl`` layout built from an LVIS JSON body."""
    names = {im["id"]: "/".join(im["coco_url"].split("/")[-2:]) for im in body["images"]}
    table: dict = {}
    for ann in sorted(body["annotations"], key=lambda a: a["id"]):
        entry = table.setdefault(ann["category_id"], {}).setdefault(names[ann["image_id"]],
                                                                   {"annotations": []})
        entry["annotations"].append({"segmentation": ann["segmentation"]})
    return dict(sorted(table.items()))


def write_pickle(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
