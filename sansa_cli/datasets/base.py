"""The contract every dataset plugin follows, and the episode samplers the benchmarks share.

A dataset plugin is a class registered under the ``sansa_cli.datasets`` entry-point group and built
as ``Cls(root, fold, split, **options)`` (use :meth:`FewShotDataset.create` to get a one-line error
for an unknown option). It knows the classes of one fold and split (all of them, also a class with
no image in the split: it is never sampled and scores 0, as in the benchmarks' mIoU), the images
holding each class, how to load an image (RGB) and the mask of one class in it (uint8: 0
background, 1 object, 255 ignore), and how episodes are drawn:

- :meth:`FewShotDataset.sample_episodes` follows the benchmark's test protocol and builds the whole
  list from the one ``random.Random`` it is given, so it does not depend on data-loader workers or
  process count; sharding is slicing that list. The samplers below skip classes with fewer than 2
  images. Callers use :meth:`FewShotDataset.episodes`, which validates and seeds.
- :meth:`FewShotDataset.training_episode` draws one reference and ``seq_len`` targets of one
  training class from a caller-owned ``random.Random``.

``fold=None`` means every class of the split, none held out (``sansa train --fold all``):
:meth:`FewShotDataset.create` builds a plugin with one fold as fold 0; a plugin with several folds
(or folds known per instance) handles ``None`` in its constructor and sets
:attr:`FewShotDataset.supports_all_folds`, else ``create`` refuses it.

Two class-level hooks let generic code (``sansa prepare``, ``sansa eval``) serve every plugin
without naming one: :meth:`FewShotDataset.options_for_shot` (options that depend on the shot) and
:meth:`FewShotDataset.build` (build the plugin's files from official source files, reading the
``build_options``).

Image ids are strings relative to the dataset (a path or a VOC name), stable across runs.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np

from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

#: a progress display: ``track(items, total, description)`` yields ``items``
Track = Callable[[Iterable, int, str], Iterable]


def no_track(items: Iterable, total: int, description: str) -> Iterable:
    """The silent :data:`Track`."""
    return items


@dataclass(frozen=True)
class Episode:
    """One test episode: segment ``class_id`` in ``target`` given masks of it in ``references``
    (the benchmarks' query and supports; episode-list files keep those names)."""

    index: int
    class_id: int
    target: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class BuildResult:
    """What :meth:`FewShotDataset.build` wrote, and how ``sansa prepare`` then checks it."""

    root: Path  # the dataset folder to check (where the build wrote)
    options: dict[str, Any]  # the options to check it with (build options left out)
    summary: tuple[str, ...]  # lines for the summary: what was written, kept or skipped


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
    #: options only :meth:`build` reads; :meth:`create` accepts them and leaves them out
    build_options: ClassVar[tuple[str, ...]] = ()
    #: True when the constructor takes ``fold=None``: every class of the split, none held out
    supports_all_folds: ClassVar[bool] = False

    classes: list[int]  # every class of the fold and split, also one without images

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None):
        self.root = Path(root).expanduser()
        self.split = self.eval_split if split is None else split
        self.fold = fold
        if not self.root.is_dir():
            raise MissingFileError(
                f"{self.name} root {self.root} is not a folder; pass the dataset folder with "
                "--data-root"
            )
        if self.split not in self.splits:
            raise UserInputError(
                f"{self.name} has no split {self.split!r}; use one of {', '.join(self.splits)}"
            )
        every_class = fold is None and self.supports_all_folds
        if not every_class and (not isinstance(fold, int) or not 0 <= fold < self.num_folds):
            raise UserInputError(
                f"{self.name} has no fold {fold!r}; use 0..{self.num_folds - 1}"
            )

    @classmethod
    def create(cls, root: str | Path, fold: int | None = 0, split: str | None = None,
               **options: Any):
        """Build with keyword ``options``; an unknown option is a one-line error listing the
        known ones. ``fold=None``: every class (see the module's docstring)."""
        if fold is None and not cls.supports_all_folds:
            if cls.num_folds != 1:
                raise UserInputError(
                    f"dataset '{cls.name}' cannot train on every class (fold all): its "
                    f"{cls.num_folds} folds hold classes out; give a fold 0..{cls.num_folds - 1}")
            fold = 0
        known = cls.option_names()
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            raise UserInputError(
                f"dataset '{cls.name}' has no option {', '.join(unknown)}; "
                f"its options are: {', '.join(known) or 'none'}"
            )
        return cls(root, fold, split, **{k: v for k, v in options.items()
                                         if v is not None and k not in cls.build_options})

    @classmethod
    def option_names(cls) -> list[str]:
        """The constructor's keyword-only options and the ``build_options``, sorted."""
        params = inspect.signature(cls.__init__).parameters.values()
        keywords = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
        return sorted({*keywords, *cls.build_options})

    # -- hooks a plugin may override; `sansa prepare` and `sansa eval` call them ---------------
    @classmethod
    def options_for_shot(cls, options: dict[str, Any], shot: int) -> dict[str, Any]:
        """The options to build this dataset with for ``shot``-shot episodes.

        The default returns ``options`` unchanged; a benchmark whose fold membership depends on
        the shot adds what it needs. Callers (``sansa eval`` and ``sansa prepare --episodes`` per
        shot, ``sansa train`` with its validation shot) pass the result to :meth:`create` and
        never mutate it.

        The pattern for a benchmark whose lineage decides fold membership per shot (LVIS-92i
        today): the lineage's rule is the default, so the published numbers are comparable;
        this hook gives it the shot; :meth:`options` records the rule and the shot; built
        without a shot (``sansa prepare`` checking the folder, plain Python) it uses one
        documented shot and says so in :meth:`notes`; an instance refuses episodes of another
        shot; a shot-independent rule is an option for users who want one set of folds.
        """
        return options

    @classmethod
    def build(cls, root: Path, out: Path | None, options: dict[str, Any],
              track: Track = no_track) -> BuildResult | None:
        """Build the dataset's files from the official source files under ``root``.

        Called by ``sansa prepare`` before it checks the dataset. Writes only into ``out``
        (default ``root``), never rewrites a source file, and may resume an earlier build.
        ``options`` are the user's dataset options, ``build_options`` included; ``track`` shows
        progress. Returns None when there is nothing to build (the default).
        """
        return None

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
        """The options this instance was built with, as :meth:`create` accepts them.

        Recorded in episode lists and ``results.json``, and part of the settings ``sansa eval``
        hashes to resume. So the record does not depend on where a command ran: values are
        JSON-ready (None stays None, JSON null, never the string "None"), and every path is
        absolute and resolved (``Path.resolve()``), whatever the user typed.
        """
        return {}

    def notes(self) -> list[str]:
        """What a user should know before trusting results on this dataset (e.g. train and test
        are the same images); ``sansa prepare`` and ``sansa train`` print them as warnings."""
        return []

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
        return self.sample_episodes(random.Random(seed), shot, count)

    def sample_episodes(self, rng: random.Random, shot: int, count: int | None) -> list[Episode]:
        """The test protocol: ``count`` episodes (None = the protocol's number) drawn from ``rng``
        only. The default makes every image of every class the query once (FSS-1000's rule)."""
        return sample_each_image(self, rng, shot, count)

    def training_episode(self, rng: random.Random, seq_len: int) -> TrainingEpisode:
        """One reference and ``seq_len`` targets of a class drawn uniformly from ``classes``
        (those with 2 images).

        Build the dataset with ``split='train'`` for the fold's training classes. Targets are
        distinct from the reference and from each other while the class has enough images.
        """
        if seq_len < 1:
            raise UserInputError(f"seq_len must be positive, got {seq_len!r}")
        if "_training_pools" not in self.__dict__:  # once: an epoch draws ~10^5 episodes
            self._training_pools = usable_pools(self)
        pools = self._training_pools
        cid = rng.choice(list(pools))
        pool = pools[cid]
        reference = rng.choice(pool)
        others = [image for image in pool if image != reference]
        if len(others) >= seq_len:
            targets = rng.sample(others, seq_len)
        else:
            targets = [rng.choice(others) for _ in range(seq_len)]
        return TrainingEpisode(cid, reference, tuple(targets))

    def describe(self) -> str:
        return f"{self.name} fold {fold_text(self.fold)} split {self.split} ({self.root})"


def fold_text(fold: int | None) -> str:
    """A fold as users write it: its number, or ``all`` for ``None``."""
    return "all" if fold is None else str(fold)


# -- samplers: each builds the whole list from one rng, in one place -----------------------------
def draw_supports(rng: random.Random, pool: Sequence[str], query: str,
                  shot: int) -> tuple[str, ...]:
    """``shot`` supports drawn independently from ``pool``, rejecting only the query (HSNet's
    rule)."""
    if not any(image != query for image in pool):
        raise DatasetError(f"class of image {query!r} has no other image to use as support")
    supports: list[str] = []
    while len(supports) < shot:
        image = rng.choice(pool)
        if image != query:
            supports.append(image)
    return tuple(supports)


def usable_pools(dataset: FewShotDataset) -> dict[int, list[str]]:
    """Class -> images of the classes with at least 2 images (a query and a support), in class
    order; the others stay in ``classes`` but are never drawn."""
    pools = {cid: dataset.images(cid) for cid in dataset.classes}
    usable = {cid: pool for cid, pool in pools.items() if len(pool) >= 2}
    if not usable:
        raise DatasetError(f"{dataset.name} fold {fold_text(dataset.fold)} split "
                           f"{dataset.split} has no class with 2 images; an episode needs a query "
                           "and a support")
    return usable


def sample_uniform_class(dataset: FewShotDataset, rng: random.Random, shot: int,
                         count: int | None) -> list[Episode]:
    """COCO-20i: class uniform over the fold, query uniform over its images, supports by
    rejection."""
    pools = usable_pools(dataset)
    classes = list(pools)
    episodes = []
    for index in range(count or dataset.episodes_per_fold or 1000):
        cid = rng.choice(classes)
        query = rng.choice(pools[cid])
        episodes.append(Episode(index, cid, query, draw_supports(rng, pools[cid], query, shot)))
    return episodes


def sample_round_robin(dataset: FewShotDataset, rng: random.Random, shot: int,
                       count: int | None) -> list[Episode]:
    """LVIS-92i: classes visited in fold order, cycling; query and supports as in COCO-20i."""
    pools = usable_pools(dataset)
    classes = list(pools)
    episodes = []
    for index in range(count or dataset.episodes_per_fold or 25 * len(classes)):
        cid = classes[index % len(classes)]
        query = rng.choice(pools[cid])
        episodes.append(Episode(index, cid, query, draw_supports(rng, pools[cid], query, shot)))
    return episodes


def sample_pairs(pairs: Sequence[tuple[str, int]], pool_of: Callable[[int], list[str]],
                 rng: random.Random, shot: int, count: int) -> list[Episode]:
    """Cycle through (query, class) pairs in order, skipping classes with fewer than 2 images;
    supports from the class's pool by rejection."""
    usable = [(query, cid) for query, cid in pairs if len(pool_of(cid)) >= 2]
    if not usable:
        raise DatasetError("the split lists no (image, class) pair of a class with 2 images to "
                           "build episodes from")
    episodes = []
    for index in range(count):
        query, cid = usable[index % len(usable)]
        episodes.append(Episode(index, cid, query, draw_supports(rng, pool_of(cid), query, shot)))
    return episodes


def sample_each_image(dataset: FewShotDataset, rng: random.Random, shot: int,
                      count: int | None) -> list[Episode]:
    """FSS-1000 and folders: every image of every class is the query once (cycled past the end)."""
    pairs = [(image, cid) for cid, pool in usable_pools(dataset).items() for image in pool]
    return sample_pairs(pairs, dataset.images, rng, shot, count or len(pairs))
