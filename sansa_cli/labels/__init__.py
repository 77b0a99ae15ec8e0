"""Label files for labeling tools, from sansa's predictions (model-free, no torch).

Fill :class:`ClassInfo` (the class list), and per target a :class:`LabelledImage` of
:class:`Instance` objects (one bool mask and score each) and an optional semantic map; hand
them to one writer per format:

- ``coco``: ``coco.json``, a COCO instances file (RLE, or polygons); CVAT, FiftyOne, pycocotools;
- ``yolo``: ``yolo/labels/<stem>.txt`` and ``yolo/data.yaml``; Ultralytics, CVAT, Roboflow;
- ``labelstudio``: ``labelstudio.json`` tasks and ``labelstudio_config.xml``; Label Studio;
- ``png``: ``<stem>.png`` class-index palette PNGs and ``classes.txt``; CVAT, VOC-style readers.

Each writer module's docstring gives its exact format. Polygons (``coco`` with
``polygons=True``, ``yolo``, ``labelstudio`` with ``polygons=True``) need OpenCV
(``pip install "sansa-cli[labels]"``); RLE, brush and PNG outputs do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from sansa_cli.errors import UserInputError
from sansa_cli.labels.coco import CocoWriter
from sansa_cli.labels.labelstudio import LabelStudioWriter
from sansa_cli.labels.model import ClassInfo, Instance, LabelledImage
from sansa_cli.labels.palette import PaletteWriter
from sansa_cli.labels.writer import LabelWriter
from sansa_cli.labels.yolo import YoloWriter

#: format name -> writer class
FORMATS = {"coco": CocoWriter, "yolo": YoloWriter, "labelstudio": LabelStudioWriter,
           "png": PaletteWriter}

__all__ = ["FORMATS", "ClassInfo", "CocoWriter", "Instance", "LabelStudioWriter",
           "LabelWriter", "LabelledImage", "PaletteWriter", "YoloWriter", "make_writer"]


def make_writer(fmt: str, out: str | Path, classes: Sequence[ClassInfo], *,
                polygons: bool = False, image_root: str | Path | None = None,
                document_root: str | Path | None = None,
                image_url_prefix: str | None = None) -> LabelWriter:
    """The writer of format ``fmt`` (a key of :data:`FORMATS`), given the options it takes:
    ``polygons`` (coco, labelstudio), ``image_root`` (coco ``file_name``s are relative to it),
    ``document_root`` and ``image_url_prefix`` (labelstudio image URLs)."""
    if fmt == "coco":
        return CocoWriter(out, classes, polygons=polygons, image_root=image_root)
    if fmt == "labelstudio":
        return LabelStudioWriter(out, classes, polygons=polygons, document_root=document_root,
                                 image_url_prefix=image_url_prefix)
    if fmt in FORMATS:
        return FORMATS[fmt](out, classes)
    raise UserInputError(f"unknown label format {fmt!r}; choose from {', '.join(FORMATS)}")
