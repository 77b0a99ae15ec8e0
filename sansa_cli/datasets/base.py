"""The contract every dataset plugin follows, and the episode samplers the benchmarks share.

A dataset plugin is a class registered under the ``sansa_cli.datasets`` entry-point group and built
as ``Cls(root, fold, split, **options)`` (use :meth:`FewShotDataset.create` to get a one-line error
for an unknown option). It knows the classes of one fold and split, the images holding each class,
how to load an image (RGB) and the mask of one class in it (uint8: 0 background, 1 object,
255 ignore), and how episodes are drawn:

- :meth:`FewShotDataset.episodes` follows the benchmark's test protocol and builds the whole list
  from one ``random.Random(seed)`` in one place, so it does not depend on data-loader workers or
  process count; sharding is slicing that list.
- :meth:`FewShotDataset.training_episode` draws one reference and ``seq_len`` targets of one
  training class from a caller-owned ``random.Random``.

Image ids are strings relative to the dataset (a path or a VOC name), stable across runs.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from sansa_cli.errors import DatasetError, MissingFileError, UserInputError


@dataclass(frozen=True)
class Episode:
    """One test episode: segment ``class_id`` in ``query`` given masks of it in ``supports``."""

    index: int
    class_id: int
    query: str
    supports: tuple[str, ...]


@dataclass(frozen=True)
class TrainingEpisode:
    """One training sample: a ``reference`` image and ``targets`` holding the same class."""

    class_id: int
    reference: str
    targets: tuple[str, ...]


class FewShotDataset:
    """Base class of dataset plugins; subclasses set the class attributes and the loaders."""

    name: ClassVar[str]
    num_folds: ClassVar[int] = 1
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    eval_split: ClassVar[str] = "test"
    #: side of the square canvas the SANSA paper scores this benchmark at; None = original size
    default_canvas: ClassVar[int | None] = None
    #: episodes per fold of the test protocol; None = one per image of the split
    episodes_per_fold: ClassVar[int | None] = None

    classes: list[int]

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None):
        self.root = Path(root).expanduser()
        self.split = self.eval_split if split is None else split
        self.fold = fold
        if not self.root.is_dir():
            raise MissingFileError(
                f"{self.name} root {self.root} is not a folder; pass the dataset folder with --root"
            )
        if self.split not in self.splits:
            raise UserInputError(
                f"{self.name} has no split {self.split!r}; use one of {', '.join(self.splits)}"
            )
        if not isinstance(fold, int) or not 0 <= fold < self.num_folds:
            raise UserInputError(
                f"{self.name} has no fold {fold!r}; use 0..{self.num_folds - 1}"
            )

    @classmethod
    def create(cls, root: str | Path, fold: int = 0, split: str | None = None, **options: Any):
        """Build with keyword ``options``; an unknown option is a one-line error listing the known."""
        known = cls.option_names()
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            raise UserInputError(
                f"dataset '{cls.name}' has no option {', '.join(unknown)}; "
                f"its options are: {', '.join(known) or 'none'}"
            )
        return cls(root, fold, split, **{k: v for k, v in options.items() if v is not None})

    @classmethod
    def option_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)

    # -- what a plugin provides -------------------------------------------------------------
    def class_name(self, cid: int) -> str:
        raise NotImplementedError

    def images(self, cid: int) -> list[str]:
        """Sorted ids of the images of this split that contain class ``cid``."""
        raise NotImplementedError

    def load_image(self, image_id: str):
        """The image as an RGB ``PIL.Image.Image``."""
        raise NotImplementedError

    def load_mask(self, image_id: str, cid: int) -> np.ndarray:
        """HxW uint8 mask of class ``cid``: 0 background, 1 object, 255 ignore."""
        raise NotImplementedError

    def files(self, image_id: str) -> list[Path]:
        """The files ``image_id`` needs (image, mask file if any); ``sansa prepare`` checks them."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The options this instance was built with (recorded in episode lists), JSON-ready."""
        return {}

    # -- shared behaviour -------------------------------------------------------------------
    def image_ids(self) -> list[str]:
        """Sorted unique ids of all images of this fold and split."""
        return sorted({image for cid in self.classes for image in self.images(cid)})

    def episodes(self, shot: int, seed: int = 0, count: int | None = None) -> list[Episode]:
        """The test protocol's episodes for ``shot`` supports, deterministic for ``seed``."""
        if not isinstance(shot, int) or shot < 1:
            raise UserInputError(f"shot must be a positive integer, got {shot!r}")
        if count is not None and count < 1:
            raise UserInputError(f"episode count must be positive, got {count!r}")
        return self._sample_episodes(random.Random(seed), shot, count)

    def _sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        return sample_each_image(self, rng, shot, count)

    def training_episode(self, rng: random.Random, seq_len: int) -> TrainingEpisode:
        """One reference and ``seq_len`` targets of a class drawn uniformly from ``classes``.

        Build the dataset with ``split='train'`` for the fold's training classes. Targets are
        distinct from the reference and from each other while the class has enough images.
        """
        if seq_len < 1:
            raise UserInputError(f"seq_len must be positive, got {seq_len!r}")
        usable = [cid for cid in self.classes if len(self.images(cid)) >= 2]
        if not usable:
            raise DatasetError(
                f"{self.name} fold {self.fold} split {self.split} has no class with 2 images"
            )
        cid = rng.choice(usable)
        pool = self.images(cid)
        reference = rng.choice(pool)
        others = [image for image in pool if image != reference]
        if len(others) >= seq_len:
            targets = rng.sample(others, seq_len)
        else:
            targets = [rng.choice(others) for _ in range(seq_len)]
        return TrainingEpisode(cid, reference, tuple(targets))

    def describe(self) -> str:
        return f"{self.name} fold {self.fold} split {self.split} ({self.root})"


# -- samplers: each builds the whole list from one rng, in one place -----------------------------
def draw_supports(rng: random.Random, pool: Sequence[str], query: str, shot: int) -> tuple[str, ...]:
    """``shot`` supports drawn independently from ``pool``, rejecting only the query (HSNet rule)."""
    if not any(image != query for image in pool):
        raise DatasetError(f"class of image {query!r} has no other image to use as support")
    supports: list[str] = []
    while len(supports) < shot:
        image = rng.choice(pool)
        if image != query:
            supports.append(image)
    return tuple(supports)


def _check_class(dataset: FewShotDataset, cid: int) -> list[str]:
    pool = dataset.images(cid)
    if len(pool) < 2:
        raise DatasetError(
            f"{dataset.name} class {cid} ({dataset.class_name(cid)}) has {len(pool)} image(s) in "
            f"split {dataset.split}; an episode needs at least 2"
        )
    return pool


def sample_uniform_class(dataset: FewShotDataset, rng: random.Random, shot: int,
                         count: int | None) -> list[Episode]:
    """COCO-20i: class uniform over the fold, query uniform over its images, supports by rejection."""
    classes = list(dataset.classes)
    pools = {cid: _check_class(dataset, cid) for cid in classes}
    episodes = []
    for index in range(count or dataset.episodes_per_fold or 1000):
        cid = rng.choice(classes)
        query = rng.choice(pools[cid])
        episodes.append(Episode(index, cid, query, draw_supports(rng, pools[cid], query, shot)))
    return episodes


def sample_round_robin(dataset: FewShotDataset, rng: random.Random, shot: int,
                       count: int | None) -> list[Episode]:
    """LVIS-92i: classes visited in fold order, cycling; query and supports as in COCO-20i."""
    classes = list(dataset.classes)
    pools = {cid: _check_class(dataset, cid) for cid in classes}
    episodes = []
    for index in range(count or dataset.episodes_per_fold or 25 * len(classes)):
        cid = classes[index % len(classes)]
        query = rng.choice(pools[cid])
        episodes.append(Episode(index, cid, query, draw_supports(rng, pools[cid], query, shot)))
    return episodes


def sample_pairs(pairs: Sequence[tuple[str, int]], pool_of: Callable[[int], list[str]],
                 rng: random.Random, shot: int, count: int) -> list[Episode]:
    """Cycle through (query, class) pairs in order; supports from the class's pool by rejection."""
    if not pairs:
        raise DatasetError("the split lists no (image, class) pair to build episodes from")
    episodes = []
    for index in range(count):
        query, cid = pairs[index % len(pairs)]
        episodes.append(Episode(index, cid, query, draw_supports(rng, pool_of(cid), query, shot)))
    return episodes


def sample_each_image(dataset: FewShotDataset, rng: random.Random, shot: int,
                      count: int | None) -> list[Episode]:
    """FSS-1000 and folders: every image of every class is the query once (cycled past the end)."""
    pairs = [(image, cid) for cid in dataset.classes for image in _check_class(dataset, cid)]
    return sample_pairs(pairs, dataset.images, rng, shot, count or len(pairs))


# -- small helpers the plugins share -----------------------------------------------------------
def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file; CRLF and trailing blanks are tolerated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MissingFileError(f"split file {path} does not exist; check --splits") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def open_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise MissingFileError(f"image {path} does not exist; run `sansa prepare` to check") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"image {path} is unreadable ({exc}); replace or remove it") from exc


def open_mask_array(path: Path, gray: bool = False) -> np.ndarray:
    """Pixel values of a mask: palette indices or gray levels (other modes, or all with ``gray``,
    are converted to 8-bit gray as HSNet does)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if gray or image.mode not in ("P", "L"):
                image = image.convert("L")
            return np.asarray(image)
    except FileNotFoundError:
        raise MissingFileError(f"mask {path} does not exist; run `sansa prepare` to check") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"mask {path} is unreadable ({exc}); replace or remove it") from exc


def find_split_dir(given: str | Path | None, default: Path, benchmark: str, probe: str) -> Path:
    """The folder holding split files: ``given`` (or its ``<benchmark>`` subfolder), else ``default``.

    Accepting the parent lets users point ``--splits`` at HSNet's ``data/splits`` as is.
    """
    base = Path(given).expanduser() if given is not None else default
    for candidate in (base, base / benchmark):
        if (candidate / probe).exists():
            return candidate
    hint = "pass --splits DIR (HSNet's data/splits works)" if given is None else "check --splits"
    raise MissingFileError(f"no {benchmark} split file {base / probe}; {hint}")


def natural_key(name: str) -> tuple:
    """Sort key putting '2.jpg' before '10.jpg'."""
    stem, _, ext = name.rpartition(".") if "." in name else (name, "", "")
    return (0, int(stem), ext) if stem.isdigit() else (1, name, "")
