"""The shape every label writer shares, and how outputs name the target images.

A writer is built with the output folder and the class list, takes one
:class:`~sansa_cli.labels.model.LabelledImage` at a time with ``add`` (per-image files are
written then) and writes its collection files with ``close``, which returns every path it
wrote. ``add`` is ``keep(encode(image))``: ``encode`` writes the image's own files and returns
its part of the collection as a small JSON-ready record (or None), ``keep`` stores it; a
``sansa predict`` run records those in its journal, so a resumed run keeps the records of the
targets an earlier run finished instead of labelling them again. Used as a context manager it
closes only when the block succeeds, so a failed run
leaves no half-filled collection file. Every file goes through
:func:`~sansa_cli.artifacts.files.write_bytes_atomic`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from sansa_cli.errors import UserInputError
from sansa_cli.labels.model import ClassInfo, LabelledImage, check_classes, check_image


class LabelWriter:
    """Base class: ``add`` checks an image against the classes, subclasses do the rest."""

    def __init__(self, out: str | Path, classes: Sequence[ClassInfo]) -> None:
        self.out = Path(out)
        self.classes = check_classes(classes)
        self._seen: dict[str, Path] = {}
        self._records: list[dict] = []

    def add(self, image: LabelledImage) -> None:
        """Label one target image (each image once)."""
        self.keep(self.encode(image))

    def encode(self, image: LabelledImage) -> dict | None:
        """Write ``image``'s own files; return its record for the collection file (or None)."""
        check_image(image, len(self.classes))
        return self._add(image)

    def keep(self, record: dict | None) -> None:
        """Store one image's record (from :meth:`encode`, possibly of an earlier run)."""
        if record is not None:
            self._records.append(record)

    def add_all(self, images: Iterable[LabelledImage]) -> list[Path]:
        """``add`` each image, then ``close``; returns the paths written."""
        for image in images:
            self.add(image)
        return self.close()

    def image_files(self, name: str) -> list[Path]:
        """The files this writer writes for the image whose output name is ``name``."""
        return []

    def close(self) -> list[Path]:
        """Write the collection files; returns every path this writer wrote."""
        raise NotImplementedError

    def _add(self, image: LabelledImage) -> dict | None:
        raise NotImplementedError

    def _claim(self, key: str, image: LabelledImage, what: str) -> None:
        """Refuse a second image under the same output ``key`` (a stem, a path)."""
        if key in self._seen and self._seen[key] == image.path:
            raise UserInputError(f"target {image.path} is given twice; give each image once")
        if key in self._seen:
            raise UserInputError(f"targets {self._seen[key]} and {image.path} would share "
                                 f"{what} {key!r}; rename one or run them separately")
        self._seen[key] = image.path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


def common_folder(paths: Iterable[Path]) -> Path:
    """The deepest folder holding every path (absolute; symlinks kept, not resolved)."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path(os.path.abspath("."))


def relative_name(path: Path, root: Path, flag: str) -> str:
    """``path`` relative to ``root`` with forward slashes; refused when outside ``root``."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        raise UserInputError(f"target {path} is not inside {flag} {root}; give a folder "
                             "that holds every target") from None
    return rel.as_posix()
