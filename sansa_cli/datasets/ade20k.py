"""ADE20K (SceneParsing, 150 classes) as a training set of the generalist mix (training only).

``--data-root`` is the ``ADEChallengeData2016`` folder of the official release::

    images/training/<name>.jpg  annotations/training/<name>.png   (class 1..150, 0 = other)
    utils/ade20k_classes.json                                      (optional: the 150 names)

The class names file is SegIC's ``utils/dataset/ade20k_classes.json`` (a JSON list of 150
names); without it class ``k`` is named "class k". 0 ("other") is plain background: there is no
ignore label. One fold, split ``train`` only; no test protocol (:meth:`Ade20k.sample_episodes`
refuses). SANSA's release trains on it at a 640 px canvas.

Which classes each image holds is read from the annotation PNGs (2.5 to 5.5 ms each on one core:
one to two minutes for the 20,210 training annotations; 0.6 s from the cache). It is kept in
sansa's cache (``$SANSA_CACHE/ade20k/<hash of the folder>.json``, per file: size, modification
time, classes), so later runs re-read only annotations that changed; nothing is written into the
data folder. ``sansa prepare ade20k`` builds it with a progress bar.

Training episode (the release's sampler): an image drawn uniformly among those holding a class
other than 0 (with another image of it), one of its classes chosen uniformly; the image is the
first target, the reference and the other targets are distinct other images of the class
(repeats only when the class has too few).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.datasets.base import (
    Episode,
    FewShotDataset,
    Track,
    TrainingEpisode,
    no_track,
    usable_pools,
)
from sansa_cli.datasets.cross_domain import folder_hint
from sansa_cli.datasets.reading import open_mask_array, open_rgb
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

NUM_CLASSES = 150
IMAGES = Path("images") / "training"
ANNOTATIONS = Path("annotations") / "training"
CLASS_FILE = Path("utils") / "ade20k_classes.json"
SOURCE = "ADEChallengeData2016.zip of the MIT Scene Parsing benchmark (ADE20K SceneParsing)"
INDEX_FORMAT, INDEX_VERSION = "sansa-ade20k-index", 1


class Ade20k(FewShotDataset):
    """ADE20K SceneParsing training images, 150 classes; training only."""

    name = "ade20k"
    num_folds = 1
    splits = ("train",)
    eval_split = "train"
    default_canvas = 640
    episodes_per_fold = None

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None):
        super().__init__(root, fold, split)
        for sub in (IMAGES, ANNOTATIONS):
            if not (self.root / sub).is_dir():
                raise MissingFileError(
                    f"ade20k folder {self.root / sub} is missing; it comes from {SOURCE}"
                    f"{folder_hint(self.root, ['ADEChallengeData2016'])}")
        self._names = _class_names(self.root / CLASS_FILE)
        self.classes = list(range(1, NUM_CLASSES + 1))
        self._images: dict[int, list[str]] = {cid: [] for cid in self.classes}
        self._held: dict[str, tuple[int, ...]] = {}
        for stem, cids in sorted(index_annotations(self.root / ANNOTATIONS).items()):
            if cids:
                self._held[f"{stem}.jpg"] = cids
                for cid in cids:
                    self._images[cid].append(f"{stem}.jpg")
        if not self._held:
            raise DatasetError(f"ade20k annotations in {self.root / ANNOTATIONS} mark no class "
                               f"1..{NUM_CLASSES}; use the annotations of {SOURCE}")
        self._draws: list[tuple[str, tuple[int, ...]]] | None = None

    @classmethod
    def build(cls, root: Path, out: Path | None, options: dict[str, Any],
              track: Track = no_track) -> None:
        """Nothing is built in the data folder: the class index of the annotations is read into
        sansa's cache, with ``track`` showing progress (later runs reuse it)."""
        folder = Path(root).expanduser() / ANNOTATIONS
        if folder.is_dir():
            index_annotations(folder, track)
        return None

    def notes(self) -> list[str]:
        if self._names:
            return []
        return [f"ade20k: no {self.root / CLASS_FILE} (SegIC's list of the 150 names), so "
                "classes are named 'class 1'..'class 150'"]

    def class_name(self, cid: int) -> str:
        return self._names[cid - 1] if self._names else f"class {cid}"

    def images(self, cid: int) -> list[str]:
        try:
            return self._images[cid]
        except KeyError:
            raise UserInputError(f"class {cid} is not an ade20k class; use 1..{NUM_CLASSES}") \
                from None

    def annotation(self, image_id: str) -> Path:
        return self.root / ANNOTATIONS / f"{Path(image_id).stem}.png"

    def files(self, image_id: str) -> list[Path]:
        return [self.root / IMAGES / image_id, self.annotation(image_id)]

    def load_image(self, image_id: str):
        return open_rgb(self.root / IMAGES / image_id)

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        return (open_mask_array(self.annotation(image_id)) == cid).astype(np.uint8)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        raise UserInputError("ade20k is a training set (SANSA's generalist mix) with no test "
                             "protocol; evaluate on another dataset (e.g. coco20i), and train "
                             "on ade20k without --val-episodes")

    def training_episode(self, rng: random.Random, seq_len: int) -> TrainingEpisode:
        """The release's draw: image uniform, then one of its classes uniform; that image is
        the first target, the reference and the other targets are other images of the class."""
        if seq_len < 1:
            raise UserInputError(f"seq_len must be positive, got {seq_len!r}")
        if self._draws is None:
            pools = usable_pools(self)
            self._draws = [(image, usable) for image, cids in self._held.items()
                           if (usable := tuple(c for c in cids if c in pools))]
        image, cids = rng.choice(self._draws)
        cid = rng.choice(cids)
        pool = self._images[cid]
        others = [other for other in pool if other != image]
        if len(others) >= seq_len:
            reference, *more = rng.sample(others, seq_len)
        else:
            reference = rng.choice(others)
            spare = [other for other in pool if other != reference]
            more = [rng.choice(spare) for _ in range(seq_len - 1)]
        return TrainingEpisode(cid, reference, (image, *more))


def _class_names(path: Path) -> list[str]:
    """The 150 names of ``path`` (a JSON list), or [] when the file is absent."""
    if not path.is_file():
        return []
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"ade20k class names {path} is not valid JSON ({exc}); replace it "
                           "with SegIC's ade20k_classes.json or remove it") from exc
    if not (isinstance(names, list) and len(names) == NUM_CLASSES
            and all(isinstance(n, str) and n.strip() for n in names)):
        raise DatasetError(f"ade20k class names {path} is not a JSON list of {NUM_CLASSES} "
                           "names; replace it with SegIC's ade20k_classes.json or remove it")
    return [n.strip() for n in names]


# -- the class index of the annotations, remembered in sansa's cache ----------------------------
def index_annotations(folder: Path, track: Track = no_track) -> dict[str, tuple[int, ...]]:
    """Annotation stem -> the classes 1..150 it holds, reading only annotations the cache does
    not know unchanged (same size and modification time)."""
    with os.scandir(folder) as entries:
        stamps = {e.name: [e.stat().st_size, e.stat().st_mtime_ns] for e in entries
                  if e.name.lower().endswith(".png") and e.is_file()}
    entry = _cache_entry(folder)
    saved = _read_cache(entry, folder)
    index: dict[str, list] = {}
    todo = []
    for name, stamp in sorted(stamps.items()):
        known = saved.get(name)
        if known is not None and known[:2] == stamp:
            index[name] = known
        else:
            todo.append(name)
    for name in track(todo, len(todo), "indexing ade20k annotations"):
        index[name] = [*stamps[name], list(_classes_in(folder / name))]
    if todo or len(saved) != len(index):
        body = {"format": INDEX_FORMAT, "version": INDEX_VERSION,
                "folder": str(folder.resolve()), "files": index}
        with contextlib.suppress(OSError):  # an unwritable cache only costs the next scan
            from sansa_cli.artifacts.files import write_bytes_atomic

            write_bytes_atomic(entry, json.dumps(body, separators=(",", ":")).encode())
    return {Path(name).stem: tuple(value[2]) for name, value in index.items()}


def _cache_entry(folder: Path) -> Path:
    from sansa_cli.artifacts.hashing import cache_dir

    key = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir() / "ade20k" / f"{key}.json"


def _read_cache(entry: Path, folder: Path) -> dict[str, list]:
    """The cached files of ``folder``; {} for an absent, foreign or malformed entry."""
    try:
        body = json.loads(entry.read_text(encoding="utf-8"))
        files = body["files"]
        fits = (body["format"] == INDEX_FORMAT and body["version"] == INDEX_VERSION
                and body["folder"] == str(folder.resolve()) and isinstance(files, dict))
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    if not fits or not all(_well_formed(v) for v in files.values()):
        return {}
    return files


def _well_formed(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) for v in value[:2]) and isinstance(value[2], list)
            and all(isinstance(c, int) and 1 <= c <= NUM_CLASSES for c in value[2]))


def _classes_in(path: Path) -> tuple[int, ...]:
    """The classes 1..150 an annotation PNG holds (0 = other is left out)."""
    values = np.flatnonzero(np.bincount(open_mask_array(path).ravel(), minlength=256))
    if values.max(initial=0) > NUM_CLASSES:
        raise DatasetError(f"ade20k annotation {path} holds value {int(values.max())}, but the "
                           f"classes are 1..{NUM_CLASSES} (0 = other); replace it with the "
                           f"file of {SOURCE}")
    return tuple(int(v) for v in values if v)
