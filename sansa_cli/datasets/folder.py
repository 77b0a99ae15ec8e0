"""A user's own few-shot dataset: one folder of images and one of masks per class.

Layout under ``root``::

    images/<class>/<stem>.<jpg|jpeg|png|bmp|tif|tiff|webp>
    masks/<class>/<stem>.<any image extension>       (same stem as the image)
    splits.json                                       (optional; or --splits FILE)

Masks: a palette PNG is read as indices and any non-zero index is the object; other masks are read
as 8-bit gray and thresholded at 128 (so 0/255 masks and lossy JPEG masks both work), except masks
whose values are all 0 or 1, which are used as is. Without a split file there is one fold and every
split holds every class (train, val and test are the same images; :meth:`Folder.notes` says so). A
split file defines folds::

    {"folds": [{"train": ["cat", "dog"], "test": ["bird"]}, {"train": [...], "test": [...]}]}

A fold's keys are ``train``, ``val`` and ``test`` only, each a non-empty list of class folder
names; the whole file is checked when read. ``val`` falls back to ``test`` when a fold has no
``val`` list. Fold ``None`` (``--fold all``) holds out nothing: every class folder in every split.
Class ids are positions in the sorted list of class folders. Test protocol: each
image of each class is the query once, supports drawn independently from the class's other
images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.datasets.base import FewShotDataset, fold_text
from sansa_cli.datasets.reading import natural_key, open_mask_array, open_rgb
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SPLIT_KEYS = ("train", "val", "test")


class Folder(FewShotDataset):
    """Your own data: ``images/<class>/*`` and ``masks/<class>/*`` with matching stems."""

    name = "folder"
    num_folds = 1
    splits = ("train", "val", "test")
    eval_split = "test"
    default_canvas = None
    episodes_per_fold = None  # one per image
    supports_all_folds = True  # the number of folds is known only once the split file is read

    def __init__(self, root: str | Path, fold: int | None = 0, split: str | None = None, *,
                 splits: str | Path | None = None):
        root = Path(root).expanduser()
        self.split_file = Path(splits).expanduser() if splits else root / "splits.json"
        folds = _read_split_file(self.split_file) if (splits or self.split_file.exists()) else None
        self.num_folds = len(folds) if folds else 1  # instance value shadows the class default
        super().__init__(root, fold, split)
        for sub in ("images", "masks"):
            if not (self.root / sub).is_dir():
                raise DatasetError(f"folder dataset {self.root} has no {sub}/ subfolder; lay it "
                                   "out as images/<class>/* and masks/<class>/* (same stems)")
        self._names = sorted(p.name for p in (self.root / "images").iterdir() if p.is_dir())
        if not self._names:
            raise DatasetError(f"{self.root / 'images'} holds no class folder; add images/<class>/")
        #: False: train, val and test are the same images (see :meth:`notes`)
        self.held_out = folds is not None and fold is not None
        self._check_names(folds or [])
        self.classes = self._select(folds)
        self._images: dict[int, list[str]] = {}

    def _check_names(self, folds: list[dict]) -> None:
        """Every class a split file names, in any fold and split, has an image folder."""
        for number, fold in enumerate(folds):
            for key, names in fold.items():
                unknown = [c for c in names if c not in self._names]
                if unknown:
                    raise DatasetError(
                        f"split file {self.split_file} fold {number} \"{key}\" names class "
                        f"{unknown[0]!r}, which has no folder in {self.root / 'images'}; fix the "
                        "name or add the folder")

    def notes(self) -> list[str]:
        """One-line warnings about how this dataset will be used (shown by train and prepare)."""
        if self.held_out:
            return []
        why = ("is used with fold all" if self.split_file.exists() else
               f"has no split file ({self.split_file.name})")
        return [f"folder dataset {self.root} {why}: train, val and test are the same images of "
                "every class, so scores measure fit, not few-shot generalisation; add splits.json "
                "to hold classes out"]

    def _select(self, folds: list[dict] | None) -> list[int]:
        if folds is None or self.fold is None:
            return list(range(len(self._names)))
        chosen = folds[self.fold].get(self.split)
        if chosen is None and self.split == "val":
            chosen = folds[self.fold].get("test")
        if not chosen:
            raise DatasetError(f"{self.split_file} fold {self.fold} lists no {self.split} class; "
                               f"add a \"{self.split}\" list")
        return sorted({self._names.index(c) for c in chosen})

    def options(self) -> dict[str, Any]:
        """The split file, absolute; None (JSON null) without one."""
        return {"splits": str(self.split_file.resolve()) if self.split_file.exists() else None}

    def class_name(self, cid: int) -> str:
        return self._names[cid]

    def images(self, cid: int) -> list[str]:
        if cid not in self._images:
            if cid not in self.classes:
                raise UserInputError(f"class {cid} is not in folder fold {fold_text(self.fold)} "
                                     f"split {self.split}; its classes are {self.classes}")
            folder = self.root / "images" / self._names[cid]
            files = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
            self._images[cid] = [f"{folder.name}/{f}" for f in sorted(files, key=natural_key)]
        return self._images[cid]

    def mask_path(self, image_id: str) -> Path:
        image = Path(image_id)
        folder = self.root / "masks" / image.parent
        for suffix in (".png", *IMAGE_SUFFIXES):
            for candidate in (suffix, suffix.upper()):
                if (folder / f"{image.stem}{candidate}").exists():
                    return folder / f"{image.stem}{candidate}"
        return folder / f"{image.stem}.png"  # reported missing by `sansa prepare`

    def files(self, image_id: str) -> list[Path]:
        return [self.root / "images" / image_id, self.mask_path(image_id)]

    def load_image(self, image_id: str):
        return open_rgb(self.root / "images" / image_id)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        path = self.mask_path(image_id)
        if not path.exists():
            raise MissingFileError(f"image {image_id} has no mask in {path.parent} (same stem); "
                                   "add it or remove the image")
        raw = open_mask_array(path)
        if raw.max(initial=0) <= 1:
            return raw.astype(np.uint8)
        from PIL import Image

        with Image.open(path) as image:
            palette = image.mode == "P"
        return (raw > 0 if palette else raw >= 128).astype(np.uint8)


def _read_split_file(path: Path) -> list[dict]:
    """The folds of a split file, every value checked (one line naming the fold, key and value)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise MissingFileError(f"split file {path} does not exist; check --splits") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"split file {path} is not valid JSON ({exc}); fix it") from exc
    layout = ('{"folds": [{"train": ["cat", ...], "val": [...], "test": [...]}, ...]}')
    folds = body.get("folds") if isinstance(body, dict) else None
    if not isinstance(folds, list) or not folds:
        raise DatasetError(f"split file {path} needs {layout}; fix its layout")
    extra = sorted(set(body) - {"folds"})
    if extra:
        raise DatasetError(f"split file {path} has unknown key {extra[0]!r}; it holds only "
                           f"\"folds\": {layout}")
    for number, fold in enumerate(folds):
        where = f"split file {path} fold {number}"
        if not isinstance(fold, dict) or not fold:
            raise DatasetError(f"{where} is {_short(fold)}, not a mapping of split names to "
                               f"class lists; write it as {{\"train\": [...], \"test\": [...]}}")
        for key, value in fold.items():
            if key not in SPLIT_KEYS:
                raise DatasetError(f"{where} has unknown key {key!r}; use "
                                   f"{', '.join(SPLIT_KEYS)}")
            if (not isinstance(value, list) or not value
                    or not all(isinstance(c, str) and c for c in value)):
                raise DatasetError(f"{where} \"{key}\" is {_short(value)}; give a non-empty "
                                   f"list of class folder names, e.g. \"{key}\": [\"cat\"]")
    return folds


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
