"""What the label writers take: classes, and per target image its instances and semantic map.

A prediction job fills these; every writer in :mod:`sansa_cli.labels` reads the same objects.
The constructors check shapes and scores, so a writer never sees a mask at the wrong size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from sansa_cli.core.components import Component
from sansa_cli.errors import UserInputError

#: a palette PNG holds class indices 1..255 (0 is background)
MAX_CLASSES = 255


@dataclass(frozen=True)
class ClassInfo:
    """One class of the class list; its position in the list is its 0-based class index."""

    name: str
    #: the COCO category id to write (reuse the references' ids); None: the writer chooses one
    category_id: int | None = None


class Instance:
    """One object of one class in one image.

    ``mask`` is HxW at the image's size (anything non-zero is the object; stored as bool), or a
    :class:`~sansa_cli.core.components.Component` of a shared label map, made into a mask only
    when a writer reads it (an image with hundreds of parts then holds one map, not a mask per
    part). ``score`` is the confidence in [0, 1]. Writers skip instances whose mask is empty.
    """

    def __init__(self, class_index: int, mask, score: float) -> None:
        self.class_index = int(class_index)
        if isinstance(mask, Component):
            self._source = mask
        else:
            self._source = np.asarray(mask).astype(bool, copy=False)
            if self._source.ndim != 2:
                raise UserInputError(f"an instance mask must be 2-D (HxW), got shape "
                                     f"{self._source.shape}")
        self.score = float(score)
        if not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise UserInputError(f"an instance score must lie in [0, 1], got {self.score}")

    @property
    def mask(self) -> np.ndarray:
        source = self._source
        return source.mask() if isinstance(source, Component) else source

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._source.shape)

    def is_empty(self) -> bool:
        source = self._source
        return source.area == 0 if isinstance(source, Component) else not source.any()

    def __repr__(self) -> str:
        return f"Instance(class_index={self.class_index}, shape={self.shape}, score={self.score})"


@dataclass
class LabelledImage:
    """One target image and what was found in it.

    ``path`` is the target image (outputs name it by its file name or its path relative to a
    root folder). ``semantic`` is a uint8 HxW class-index map, 0 background and ``k + 1`` for
    class ``k``; when None, the palette writer paints it from the instances.
    """

    path: Path
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    semantic: np.ndarray | None = None
    name: str | None = None  # per-image files' name (``a/b`` mirrors folders); default the stem

    @property
    def output_name(self) -> str:
        return self.name or self.path.stem

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.width, self.height = int(self.width), int(self.height)  # JSON needs Python ints
        size = (self.height, self.width)
        for instance in self.instances:
            if instance.shape != size:
                raise UserInputError(f"{self.path}: an instance mask is {instance.shape} "
                                     f"(HxW) but the image is {size}")
        if self.semantic is not None:
            self.semantic = np.asarray(self.semantic)
            if self.semantic.shape != size or self.semantic.dtype != np.uint8:
                raise UserInputError(f"{self.path}: the semantic map must be uint8 {size} (HxW), "
                                     f"got {self.semantic.dtype} {self.semantic.shape}")

    def present(self) -> list[Instance]:
        """The instances whose masks are not empty (the ones every writer writes)."""
        return [instance for instance in self.instances if not instance.is_empty()]


def check_classes(classes: Sequence[ClassInfo]) -> list[ClassInfo]:
    """``classes`` as a list, refused when empty, too long, or with names no format can hold."""
    classes = list(classes)
    if not 1 <= len(classes) <= MAX_CLASSES:
        raise UserInputError(f"give between 1 and {MAX_CLASSES} classes, got {len(classes)}")
    names = [c.name for c in classes]
    for name in names:
        if not name.strip() or any(ch in name for ch in "\r\n"):
            raise UserInputError(f"class name {name!r} is empty or spans lines; rename it")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserInputError(f"class names must be unique; repeated: {', '.join(duplicates)}")
    return classes


def check_image(image: LabelledImage, num_classes: int) -> None:
    """Refuse class indices (in instances and the semantic map) outside the class list."""
    for instance in image.instances:
        if not 0 <= instance.class_index < num_classes:
            raise UserInputError(f"{image.path}: class index {instance.class_index} is outside "
                                 f"the {num_classes} classes")
    if image.semantic is not None and image.semantic.size and image.semantic.max() > num_classes:
        raise UserInputError(f"{image.path}: the semantic map holds class value "
                             f"{image.semantic.max()}, above the {num_classes} classes")
