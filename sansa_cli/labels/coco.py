"""``OUT/coco.json``: a COCO instances file, read by CVAT ("COCO 1.0"), FiftyOne, Datumaro,
Roboflow and pycocotools.

- ``images``: one per target, in the order added, ``id`` from 1, ``file_name`` the target's
  path relative to ``image_root`` (default: the folder holding all targets, so usually the
  file name), ``width``, ``height``. Targets with nothing found are listed too.
- ``categories``: one per class, in class order; ``id`` is the class's ``category_id`` when
  given (reuse the ids of a COCO reference file), else the smallest positive id not taken;
  never 0 (Datumaro reads 0 as "no label"). ``supercategory`` is empty.
- ``annotations``: one per instance, ``id`` from 1, ``image_id``, ``category_id``,
  ``segmentation``, ``area`` (int pixels), ``bbox`` ``[x, y, w, h]`` (floats, pixel edges),
  ``iscrowd`` 0 and the instance's ``score``.

``segmentation`` is compressed RLE (``{"size": [h, w], "counts": str}``, exact, holes
included) unless ``polygons=True``: then it is a list of polygons ``[[x1, y1, ...], ...]`` at
the pixel-corner convention, one per part of a multi-part instance, which pycocotools
rasterizes back to the instance's exact pixels. COCO unions the polygons of an annotation, so
they cannot hold a hole: **an instance with a hole keeps its RLE even with
``polygons=True``** (tools that read polygons read RLE too). The ``annotations`` list with RLE
is also a results file for ``COCO.loadRes`` and COCOeval; loadRes refuses polygons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from sansa_cli import __version__
from sansa_cli.artifacts.files import finite_json, write_bytes_atomic
from sansa_cli.errors import UserInputError
from sansa_cli.labels.model import ClassInfo, Instance, LabelledImage
from sansa_cli.labels.writer import LabelWriter, common_folder, relative_name

FILE_NAME = "coco.json"


def category_ids(classes: Sequence[ClassInfo]) -> list[int]:
    """The COCO id of each class: its own ``category_id``, else the smallest positive id that
    no class has (1..N when none is given). Refuses ids below 1 and repeated ids."""
    given = [c.category_id for c in classes if c.category_id is not None]
    if any(i < 1 for i in given) or len(set(given)) != len(given):
        raise UserInputError(f"COCO category ids must be distinct and at least 1, got {given}")
    taken, free, ids = set(given), 1, []
    for c in classes:
        if c.category_id is None:
            while free in taken:
                free += 1
            taken.add(free)
        ids.append(c.category_id if c.category_id is not None else free)
    return ids


def rle(mask: np.ndarray) -> dict:
    """``mask`` (bool HxW) as compressed COCO RLE with ``counts`` as str (JSON-ready)."""
    encoded = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def polygon_segmentation(mask: np.ndarray) -> list[list[float]] | None:
    """Pixel-corner polygons, one per part of ``mask``; None when it has a hole."""
    from sansa_cli.labels.contours import corner_rings

    rings, holes = corner_rings(mask)
    return None if holes else [ring.astype(float).ravel().tolist() for ring in rings]


class CocoWriter(LabelWriter):
    """Collects annotations as images are added; writes ``OUT/coco.json`` on close."""

    def __init__(self, out: str | Path, classes: Sequence[ClassInfo], *, polygons: bool = False,
                 image_root: str | Path | None = None) -> None:
        super().__init__(out, classes)
        self.polygons = polygons
        self.image_root = None if image_root is None else Path(image_root)
        self._ids = category_ids(self.classes)

    def _add(self, image: LabelledImage) -> dict:
        self._claim(str(image.path.absolute()), image, "the COCO image")
        return {"path": str(image.path), "width": image.width, "height": image.height,
                "annotations": [self._annotation(instance) for instance in image.present()]}

    def _annotation(self, instance: Instance) -> dict:
        encoded = rle(instance.mask)
        polygons = polygon_segmentation(instance.mask) if self.polygons else None
        return {"category_id": self._ids[instance.class_index],
                "segmentation": encoded if polygons is None else polygons,
                "area": int(mask_utils.area(encoded)),
                "bbox": mask_utils.toBbox(encoded).tolist(),
                "iscrowd": 0, "score": instance.score}

    def close(self) -> list[Path]:
        records = self._records
        root = self.image_root or common_folder(Path(r["path"]) for r in records)
        images = [{"id": number, "file_name": relative_name(Path(r["path"]), root, "image root"),
                   "width": r["width"], "height": r["height"]}
                  for number, r in enumerate(records, start=1)]
        annotations = [{"id": 0, "image_id": number, **annotation}
                       for number, r in enumerate(records, start=1)
                       for annotation in r["annotations"]]
        for number, annotation in enumerate(annotations, start=1):
            annotation["id"] = number
        categories = [{"id": i, "name": c.name, "supercategory": ""}
                      for i, c in zip(self._ids, self.classes)]
        payload = {"info": {"description": "sansa predictions", "version": __version__},
                   "licenses": [], "images": images, "categories": categories,
                   "annotations": annotations}
        path = self.out / FILE_NAME
        write_bytes_atomic(path, (finite_json(payload, indent=None) + "\n").encode())
        return [path]
