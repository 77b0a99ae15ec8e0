"""Training on a weighted mixture of datasets, and the datasets of any run.

A run trains on one dataset (``--dataset NAME --data-root DIR``) or on a mixture (``--dataset mix
--mix coco20i:0.45,lvis92i:0.4 --data-root coco20i=DIR,lvis92i=DIR``). Weights are normalised
(they need not sum to 1). Each training episode picks its dataset with probability weight / sum,
drawn from the epoch's own ``random.Random`` (``train/episode_data.py``), then draws the episode
from that dataset with the same generator: the stream depends on the seed and the epoch only, so
resumed and multi-process runs see the episodes of one uninterrupted process. Episodes of every
dataset have one format (a :class:`~sansa_cli.datasets.base.TrainingEpisode` whose image ids carry
the dataset's name), so batches mix datasets freely.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from sansa_cli.errors import UserInputError

#: the ``--dataset`` value of a mixture (not a plugin)
MIX = "mix"
#: the ``--fold`` value that holds out no class
ALL = "all"
_ROOT_ITEM = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*=")


@dataclass(frozen=True)
class Entry:
    """One dataset of a run: its plugin name, folder, options and weight."""

    name: str
    root: str
    options: dict[str, Any]
    weight: float


def dataset_fold(fold: int | str) -> int | None:
    """The plugin's ``fold`` for a config's fold: ``None`` (every class) for ``all``."""
    return None if fold == ALL else fold


def entries(config) -> list[Entry]:
    """The datasets a (checked) config trains on, in ``--mix`` order."""
    if config.dataset != MIX:
        root = config.data_root
        if isinstance(root, dict):
            root = root.get(config.dataset, "")
        return [Entry(config.dataset, root, config.dataset_options, 1.0)]
    roots = config.data_root if isinstance(config.data_root, dict) else {}
    return [Entry(name, roots.get(name, ""), config.dataset_options.get(name, {}), weight)
            for name, weight in config.mix.items()]


# -- parsing and checking (before any work) -------------------------------------------------------
def parse_roots(items: list[str] | str) -> str | dict[str, str]:
    """``--data-root``: one folder, or ``NAME=DIR`` pairs (comma-separated or repeated)."""
    items = [items] if isinstance(items, str) else list(items)
    if len(items) == 1 and not _ROOT_ITEM.match(items[0]):
        return items[0]
    roots: dict[str, str] = {}
    for item in items:
        for pair in re.split(r",(?=[A-Za-z_][A-Za-z0-9_.-]*=)", item):
            name, sep, root = pair.partition("=")
            if not sep or not _ROOT_ITEM.match(pair) or not root:
                raise UserInputError(f"--data-root {pair!r} is not NAME=DIR; give one folder, or "
                                     "one per dataset: --data-root coco20i=DIR,lvis92i=DIR")
            roots[name] = root
    return roots


def checked_mix(value: Any, where: str) -> dict[str, float]:
    """``mix`` from a flag (``NAME:WEIGHT,...``) or a file (a mapping); every weight a positive
    finite number."""
    if isinstance(value, str):
        pairs = [item.rpartition(":") for item in value.split(",") if item.strip()]
        bad = [name + sep + weight for name, sep, weight in pairs if not sep or not name.strip()]
        if bad or not pairs:
            raise UserInputError(f"{where} item {(bad or [value])[0]!r} is not NAME:WEIGHT; use "
                                 "e.g. coco20i:0.45,lvis92i:0.4 (weights need not sum to 1)")
        names = [name.strip() for name, _, _ in pairs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserInputError(f"{where} names {twice[0]} twice; give each dataset once")
        value = {name.strip(): weight.strip() for name, _, weight in pairs}
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise UserInputError(f"{where} is {value!r}, not a mapping of dataset names to weights; "
                             "give e.g. coco20i:0.45,lvis92i:0.4")
    weights = {}
    for name, weight in value.items():
        number = weight
        if isinstance(weight, str):
            try:
                number = float(weight)
            except ValueError:
                pass
        if (isinstance(number, bool) or not isinstance(number, (int, float))
                or not math.isfinite(number) or number <= 0):
            raise UserInputError(f"{where}: the weight of {name} is {weight!r}; give a positive "
                                 "finite number such as 0.45 (weights need not sum to 1)")
        weights[name] = float(number)
    return weights


def checked_roots(value: Any, where: str) -> str | dict[str, str]:
    """``data_root``: a folder, or a mapping of dataset name to folder."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and k for k in value):
        roots = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in value.items()}
        bad = [k for k, v in roots.items() if not isinstance(v, str) or not v]
        if not bad:
            return roots
        value = f"{bad[0]}: {roots[bad[0]]!r}"
    raise UserInputError(f"{where} is {value!r}; give one folder, or one per dataset as "
                         "NAME=DIR (a mapping in a file)")


def nested_options(options: dict[str, Any], names: list[str], where: str) -> dict[str, dict]:
    """A mixture's dataset options by dataset: ``{"lvis92i.membership": "fixed"}`` (a flag) and
    ``{"lvis92i": {"membership": "fixed"}}`` (a file) both give the second form."""
    nested: dict[str, dict] = {}
    for key, value in options.items():
        name, dot, option = key.partition(".")
        if not dot and isinstance(value, dict):
            nested.setdefault(name, {}).update(value)
        elif dot and option:
            nested.setdefault(name, {})[option] = value
        else:
            raise UserInputError(f"{where} {key}={value!r} names no dataset; in a mixture give "
                                 "NAME.KEY=VALUE, e.g. --dataset-option lvis92i.membership=fixed")
        if name not in names:
            raise UserInputError(f"{where} {key} is for {name}, which is not in --mix "
                                 f"({', '.join(names)}); add it to --mix or drop the option")
    return nested


def check_roots(config) -> None:
    """A folder for every dataset of the run and none for another one (one line each)."""
    root = config.data_root
    if config.dataset != MIX:
        if isinstance(root, dict) and set(root) != {config.dataset}:
            raise UserInputError(f"--data-root names {', '.join(root)}, but the run trains on "
                                 f"{config.dataset} alone; give --data-root DIR")
        return
    names = list(config.mix)
    root = root or {}
    if not isinstance(root, dict):
        raise UserInputError(f"--data-root {root!r} is one folder; a mixture needs one per "
                             f"dataset: --data-root {','.join(n + '=DIR' for n in names)}")
    missing = [n for n in names if n not in root]
    if missing:
        raise UserInputError(f"--data-root has no folder for {', '.join(missing)}; give "
                             f"--data-root {','.join(n + '=DIR' for n in missing)}")
    extra = [n for n in root if n not in config.mix]
    if extra:
        raise UserInputError(f"--data-root names {', '.join(extra)}, which is not in --mix "
                             f"({', '.join(names)}); add it to --mix or drop its folder")


def has_eval_split(cls) -> bool:
    """Whether a dataset plugin has data to validate on: an evaluation split other than its
    training split (ADE20K is training only)."""
    return cls.eval_split in cls.splits and cls.eval_split != "train"


# -- the mixed training split ---------------------------------------------------------------------
class Mixture:
    """The training split of a mixture: each episode from one member, drawn by weight.

    Image ids are ``NAME:ID`` (the member's name, then its own id), so the loaders find the
    member of every image of a mixed batch. The draw takes the datasets in name order, so the
    stream does not depend on the order the mixture was written in (``config.yaml`` sorts it).
    """

    name = MIX

    def __init__(self, members: dict[str, Any], weights: dict[str, float]):
        self.members = members
        self.names = list(members)  # as given, for display
        total = sum(weights[n] for n in self.names)
        self.shares = {n: weights[n] / total for n in self.names}
        self._order = sorted(self.names)
        self._cumulative = list(itertools.accumulate(weights[n] for n in self._order))

    def pick(self, rng) -> str:
        """The dataset of the next episode (one draw from ``rng``)."""
        return rng.choices(self._order, cum_weights=self._cumulative)[0]

    def training_episode(self, rng, seq_len: int):
        from sansa_cli.datasets.base import TrainingEpisode

        name = self.pick(rng)
        episode = self.members[name].training_episode(rng, seq_len)
        return TrainingEpisode(episode.class_id, f"{name}:{episode.reference}",
                               tuple(f"{name}:{t}" for t in episode.targets))

    def _member(self, image_id: str):
        name, _, inner = image_id.partition(":")
        return self.members[name], inner

    def load_image(self, image_id: str):
        dataset, inner = self._member(image_id)
        return dataset.load_image(inner)

    def load_mask(self, image_id: str, cid: int):
        dataset, inner = self._member(image_id)
        return dataset.load_mask(inner, cid)

    def files(self, image_id: str):
        dataset, inner = self._member(image_id)
        return dataset.files(inner)

    def image_ids(self) -> list[str]:
        return [f"{n}:{i}" for n, dataset in self.members.items() for i in dataset.image_ids()]

    def notes(self) -> list[str]:
        return [note for dataset in self.members.values() for note in dataset.notes()]

    def describe(self) -> str:
        """``mixture of coco20i 45%, ...`` (the normalised weights)."""
        return "mixture of " + ", ".join(f"{n} {100 * self.shares[n]:.4g}%" for n in self.names)
