"""Semantic label PNGs for several classes: ``OUT/<stem>.png`` per target and ``OUT/classes.txt``.

Each PNG is a palette image (PIL mode ``"P"``) at the target's size whose pixel values are
class indices: 0 background, ``k + 1`` for class ``k``, coloured with the Pascal VOC colormap
(1 dark red, 2 green, 3 olive, ...). Readers that take index PNGs (CVAT's "Segmentation Mask
1.0", mmsegmentation, torchvision's VOC loader) use the values; viewers show the colours.

``classes.txt`` holds one name per line in index order, ``background`` first, so line ``i``
(from 0) names PNG value ``i``, the one-line-per-index order CVAT's labelmap needs.

sansa writes this for two classes or more; with one class it keeps its 0/255 mask PNGs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sansa_cli.artifacts.files import write_bytes_atomic
from sansa_cli.labels.model import LabelledImage
from sansa_cli.labels.writer import LabelWriter
from sansa_cli.visualize.pictures import png_bytes

#: the first line of ``classes.txt``, the name of PNG value 0
BACKGROUND = "background"


def voc_colormap(count: int = 256) -> np.ndarray:
    """(count, 3) uint8: the Pascal VOC colours, index bits spread over R, G and B."""
    index = np.arange(count)
    colours = np.zeros((count, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return colours.astype(np.uint8)


def semantic_map(image: LabelledImage) -> np.ndarray:
    """``image.semantic``, or its instances painted in ascending score (the highest-scoring
    instance keeps each contested pixel): uint8 HxW, 0 background, ``k + 1`` for class ``k``."""
    if image.semantic is not None:
        return image.semantic
    semantic = np.zeros((image.height, image.width), np.uint8)
    for instance in sorted(image.present(), key=lambda i: i.score):
        semantic[instance.mask] = instance.class_index + 1
    return semantic


class PaletteWriter(LabelWriter):
    """Writes ``OUT/<stem>.png`` as each image is added and ``OUT/classes.txt`` on close."""

    def __init__(self, out: str | Path, classes) -> None:
        super().__init__(out, classes)
        self._palette = voc_colormap().ravel().tolist()

    def _add(self, image: LabelledImage) -> dict:
        # per-image files only: the record names the file for a resumed run's list
        self._claim(image.output_name, image, "the palette PNG name")
        picture = Image.fromarray(semantic_map(image))
        picture.putpalette(self._palette)  # an "L" image becomes "P", keeping its values
        (path,) = self.image_files(image.output_name)
        write_bytes_atomic(path, png_bytes(picture))
        return {"file": str(path)}

    def image_files(self, name: str) -> list[Path]:
        return [self.out / f"{name}.png"]

    def close(self) -> list[Path]:
        path = self.out / "classes.txt"
        names = [BACKGROUND, *(c.name for c in self.classes)]
        write_bytes_atomic(path, "".join(f"{name}\n" for name in names).encode())
        return [*(Path(r["file"]) for r in self._records), path]
