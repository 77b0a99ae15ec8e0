"""Frozen episode lists: the exact test episodes of one dataset, fold, split, shot and seed, as
JSON.

Anyone holding the file reruns exactly the same episodes (``sansa eval --episodes FILE``). Format::

    {"format": "sansa-episodes", "version": 1, "dataset": "coco20i", "fold": 0, "split": "val",
     "shot": 1, "seed": 0, "classes": [0, 4, ...], "options": {...},
     "episodes": [{"class": 4, "query": "val2014/...jpg", "supports": ["val2014/...jpg"]}, ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sansa_cli.artifacts.files import write_bytes_atomic
from sansa_cli.datasets.base import Episode, FewShotDataset
from sansa_cli.errors import DatasetError, MissingFileError

FORMAT = "sansa-episodes"
VERSION = 1


@dataclass(frozen=True)
class EpisodeList:
    """The content of an episode-list file."""

    dataset: str
    fold: int
    split: str
    shot: int
    seed: int
    classes: tuple[int, ...]
    episodes: tuple[Episode, ...]
    options: dict[str, Any]


def write_episode_list(path: str | Path, dataset: FewShotDataset, episodes: Sequence[Episode],
                       shot: int, seed: int) -> Path:
    """Write ``episodes`` of ``dataset`` atomically as JSON; return the path."""
    body = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": dataset.name,
        "fold": dataset.fold,
        "split": dataset.split,
        "shot": shot,
        "seed": seed,
        "classes": list(dataset.classes),
        "class_names": {str(c): dataset.class_name(c) for c in dataset.classes},
        "options": dataset.options(),
    }
    # One episode per line: readable, and diffs of two lists show the episodes that differ.
    rows = ",\n  ".join(
        json.dumps({"class": e.class_id, "query": e.target, "supports": list(e.references)})
        for e in episodes
    )
    head = json.dumps(body, indent=1)[:-2]
    text = f'{head},\n "episodes": [\n  {rows}\n ]\n}}\n'
    path = Path(path)
    write_bytes_atomic(path, text.encode())
    return path


def read_episode_list(path: str | Path, dataset: FewShotDataset | None = None,
                      shot: int | None = None) -> EpisodeList:
    """Read and validate an episode list; if ``dataset``/``shot`` are given, it must match them."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingFileError(f"episode list {path} does not exist; write one with "
                               "`sansa prepare DATASET --episodes`") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"episode list {path} is not valid JSON ({exc}); rewrite it") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a sansa episode list; write one with "
                           "`sansa prepare DATASET --episodes`")
    if body.get("version") != VERSION:
        raise DatasetError(f"episode list {path} has version {body.get('version')!r}; this sansa "
                           f"reads version {VERSION}; upgrade sansa or rewrite the list")
    try:
        listed = EpisodeList(
            dataset=str(body["dataset"]), fold=int(body["fold"]), split=str(body["split"]),
            shot=int(body["shot"]), seed=int(body["seed"]),
            classes=tuple(int(c) for c in body["classes"]),
            episodes=tuple(
                Episode(i, int(e["class"]), str(e["query"]), tuple(str(s) for s in e["supports"]))
                for i, e in enumerate(body["episodes"])
            ),
            options=dict(body.get("options") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"episode list {path} is malformed ({type(exc).__name__}: {exc}); "
                           "rewrite it with `sansa prepare DATASET --episodes`") from exc
    _check_episodes(path, listed)
    _check_match(path, listed, dataset, shot)
    return listed


def _check_episodes(path: Path, listed: EpisodeList) -> None:
    classes = set(listed.classes)
    for e in listed.episodes:
        if e.class_id not in classes:
            raise DatasetError(f"episode {e.index} of {path} uses class {e.class_id}, "
                               "which is not in its class list; rewrite the list")
        if len(e.references) != listed.shot:
            raise DatasetError(f"episode {e.index} of {path} has {len(e.references)} supports "
                               f"but the list is {listed.shot}-shot; rewrite the list")
        if e.target in e.references:
            raise DatasetError(f"episode {e.index} of {path} uses its query as a support")


def _check_match(path: Path, listed: EpisodeList, dataset: FewShotDataset | None,
                 shot: int | None) -> None:
    if shot is not None and shot != listed.shot:
        raise DatasetError(f"episode list {path} is {listed.shot}-shot, not {shot}-shot; "
                           f"pass --shot {listed.shot} or another list")
    if dataset is None:
        return
    asked = (dataset.name, dataset.fold, dataset.split)
    found = (listed.dataset, listed.fold, listed.split)
    if asked != found:
        raise DatasetError(
            f"episode list {path} is for {found[0]} fold {found[1]} split {found[2]}, not "
            f"{asked[0]} fold {asked[1]} split {asked[2]}; pass the matching dataset and --fold"
        )
    if tuple(dataset.classes) != listed.classes:
        raise DatasetError(f"episode list {path} was written for other {dataset.name} fold "
                           f"{dataset.fold} classes than this dataset has; check its options "
                           "(split files, membership) or rewrite the list")
