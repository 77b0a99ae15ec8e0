"""``OUT/yolo/``: Ultralytics YOLO segmentation labels, read by Ultralytics, CVAT ("Ultralytics
YOLO Segmentation 1.0"), Roboflow and Label Studio's converter.

- ``labels/<stem>.txt`` per target (empty when nothing was found): one line per part of each
  instance, ``<class> x1 y1 ... xn yn``, the 0-based class index then at least 3 points,
  normalised by the image's width and height to [0, 1], 6 decimals. Points are the centres of
  the part's boundary pixels, ``((col + 0.5) / W, (row + 0.5) / H)``: Ultralytics scales them
  back to pixels and casts to int32 before ``cv2.fillPoly``, which then draws the part's exact
  pixels whatever the rounding of the printed digits. A line is one ring, so holes are filled;
  a multi-part instance gives one line per part (as Ultralytics' own mask converter does).
  Label files hold no scores.
- ``data.yaml``: ``path`` (this folder, absolute: Ultralytics reads a relative one under its
  own datasets folder), ``train`` and ``val`` (both ``images``) and ``names`` (``{0: name,
  ...}``, the class order). Ultralytics finds a label by replacing ``/images/`` with
  ``/labels/`` in the image path, so put (or link) the target images in ``yolo/images/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from sansa_cli.artifacts.files import write_bytes_atomic
from sansa_cli.labels.contours import centre_rings
from sansa_cli.labels.model import ClassInfo, LabelledImage
from sansa_cli.labels.writer import LabelWriter

FOLDER = "yolo"


def label_lines(image: LabelledImage) -> list[str]:
    """The YOLO segmentation lines of ``image``, one per part of each instance."""
    scale = np.array([image.width, image.height], dtype=np.float64)
    lines = []
    for instance in image.present():
        for ring in centre_rings(instance.mask):
            points = " ".join(f"{v:.6f}" for v in ((ring + 0.5) / scale).ravel())
            lines.append(f"{instance.class_index} {points}")
    return lines


class YoloWriter(LabelWriter):
    """Writes ``OUT/yolo/labels/<stem>.txt`` as each image is added, ``data.yaml`` on close."""

    def __init__(self, out: str | Path, classes: Sequence[ClassInfo]) -> None:
        super().__init__(out, classes)
        self.folder = self.out / FOLDER

    def _add(self, image: LabelledImage) -> dict:
        # per-image files only: the record names the file for a resumed run's list
        self._claim(image.output_name, image, "the YOLO label name")
        (path,) = self.image_files(image.output_name)
        write_bytes_atomic(path, "".join(f"{line}\n" for line in label_lines(image)).encode())
        return {"file": str(path)}

    def image_files(self, name: str) -> list[Path]:
        return [self.folder / "labels" / f"{name}.txt"]

    def close(self) -> list[Path]:
        import yaml

        data = {"path": str(self.folder.absolute()), "train": "images", "val": "images",
                "names": {i: c.name for i, c in enumerate(self.classes)}}
        text = ("# Put (or link) the target images in images/ beside labels/.\n"
                + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        path = self.folder / "data.yaml"
        write_bytes_atomic(path, text.encode())
        return [*(Path(r["file"]) for r in self._records), path]
