"""Everything an evaluation will do, checked before anything runs or is written.

:func:`build_plan` turns the command's options into tasks (one per fold and shot, each with its
frozen episode list and that list's hash), the adapter file of each fold, the canvas and the
settings recorded in ``results.json``. Every user error surfaces here, as one line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sansa_cli.core.parsing import key_values, parse_int_list, parse_shots
from sansa_cli.datasets.base import Episode, FewShotDataset
from sansa_cli.errors import MissingFileError, UserInputError


@dataclass
class EvalJob:
    """The options of ``sansa eval`` (see the command's help for each)."""

    dataset: str
    data_root: Path
    out: Path
    shots: Optional[str] = None  # default 1,5 (or those of the --episodes file or folder)
    folds: Optional[str] = None  # default all (or those of the --episodes file or folder)
    split: Optional[str] = None
    episodes: Optional[Path] = None
    episodes_per_fold: Optional[int] = None
    seed: int = 0
    canvas: Optional[str] = None
    adapters: str = "none"
    sam2: Optional[str] = None
    sam2_checkpoint: Optional[Path] = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int | None = None  # None: the device default (1 on the CPU, 4 on GPUs)
    cache_mb: float = 1024.0
    prompt: str = "mask"
    dataset_options: list[str] = field(default_factory=list)
    compare_frozen: bool = False
    save_predictions: Optional[Path] = None
    visualize: int = 0
    allow_base_mismatch: bool = False
    input_profile: list[str] = field(default_factory=list)  # --input-profile values


@dataclass
class Task:
    """One (fold, shot) of the evaluation: its dataset, episodes and where they came from."""

    fold: int
    shot: int
    dataset: FewShotDataset
    episodes: list[Episode]
    episode_hash: str
    source: str  # "sampled" or the episode-list path


@dataclass
class EvalPlan:
    job: EvalJob
    cls: type
    tasks: list[Task]
    canvas: int | None
    adapters: dict[int, Path | None]  # fold -> adapter file (None: frozen SAM2)
    options: dict[str, Any]


def parse_canvas(text: str | None, default: int | None) -> int | None:
    """``--canvas``: a square side in pixels, or ``original``; None = the dataset's default."""
    if text is None:
        return default
    if text.strip().lower() == "original":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UserInputError(f"--canvas {text!r} is neither a positive size nor 'original'; "
                             "use e.g. --canvas 640 or --canvas original")
    return value


def parse_options(items: list[str]) -> dict[str, Any]:
    return key_values(items, "--dataset-option", "membership=fixed")


def episode_hash(dataset: FewShotDataset, shot: int, episodes: list[Episode]) -> str:
    """SHA-256 of the canonical JSON of an episode list (same for a sampled and a frozen list)."""
    body = {"dataset": dataset.name, "fold": dataset.fold, "split": dataset.split, "shot": shot,
            "classes": list(dataset.classes),
            "episodes": [[e.class_id, e.target, list(e.references)] for e in episodes]}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_adapters(value: str, folds: list[int]) -> dict[int, Path | None]:
    """``none``, one file for every fold, or a pattern with ``{fold}``; every file must exist."""
    from sansa_cli.artifacts.adapter_file import read_adapter_info

    if value.strip().lower() == "none":
        return {fold: None for fold in folds}
    if "{fold}" in value:
        paths = {fold: Path(value.replace("{fold}", str(fold))).expanduser() for fold in folds}
        for fold, path in paths.items():
            if not path.is_file():
                raise MissingFileError(f"--adapters pattern {value} has no file for fold {fold} "
                                       f"({path}); train or export it, or choose --folds")
    else:
        path = Path(value).expanduser()
        if not path.is_file():
            raise MissingFileError(f"adapter file {value} does not exist; pass a .safetensors "
                                   "file, a pattern with {fold}, or 'none'")
        paths = {fold: path for fold in folds}
    for path in dict.fromkeys(paths.values()):
        read_adapter_info(path)  # a broken or foreign file fails now, not after hours
    return paths


def _dataset(cls, job: EvalJob, fold: int, shot: int, options: dict) -> FewShotDataset:
    return cls.create(job.data_root, fold, job.split, **cls.options_for_shot(options, shot))


def _listed(job: EvalJob, cls, dataset: FewShotDataset, shot: int) -> tuple[list[Episode], str]:
    from sansa_cli.datasets.episode_list import read_episode_list
    from sansa_cli.datasets.prepare import episode_list_name

    path = Path(job.episodes).expanduser()
    if path.is_dir():
        name = episode_list_name(cls.name, dataset.fold, dataset.split, shot, job.seed)
        if not (path / name).is_file():
            raise MissingFileError(
                f"no episode list {name} in {path}; write it with `sansa prepare {cls.name} "
                f"--data-root DIR --episodes --seed {job.seed} --out {path}` or pass another "
                "--episodes")
        path = path / name
    listed = read_episode_list(path, dataset, shot)
    return list(listed.episodes), str(path)


def _selection(job: EvalJob, cls) -> tuple[list[int] | None, list[int]]:
    """Folds (None = all) and shots asked for; an episode-list file, or a folder of them,
    supplies the defaults (what it holds)."""
    from sansa_cli.datasets.episode_list import read_episode_list

    folds = None if job.folds in (None, "all") else parse_int_list(job.folds, "--folds")
    shots = parse_shots(job.shots) if job.shots is not None else None
    path = Path(job.episodes).expanduser() if job.episodes is not None else None
    if path is not None and path.is_file():
        listed = read_episode_list(path)
        if listed.dataset != cls.name:
            raise UserInputError(f"episode list {job.episodes} is for {listed.dataset}, not "
                                 f"{cls.name}; pass the matching --dataset or another list")
        if (folds or [listed.fold]) != [listed.fold] or (shots or [listed.shot]) != [listed.shot]:
            raise UserInputError(
                f"episode list {job.episodes} holds fold {listed.fold} {listed.shot}-shot only; "
                f"pass --folds {listed.fold} --shots {listed.shot} or a folder of lists")
        return [listed.fold], [listed.shot]
    if path is not None and path.is_dir() and (job.folds is None or shots is None):
        present = _lists_in(path, cls, job.split or cls.eval_split, job.seed)
        if not present:
            raise MissingFileError(
                f"{path} holds no {cls.name} episode list of split "
                f"{job.split or cls.eval_split} and seed {job.seed}; write them with `sansa "
                f"prepare {cls.name} --data-root DIR --episodes --seed {job.seed} --out {path}` "
                "or pass another --episodes (or --seed)")
        if job.folds is None:  # the folds holding lists of the shots asked for (else any
            # list: the first missing list is then named, with the command that writes it)
            folds = (sorted({f for f, k in present if shots is None or k in shots})
                     or sorted({f for f, _ in present}))
        if shots is None:
            shots = sorted({k for f, k in present if folds is None or f in folds})
    return folds, shots or [1, 5]


def _lists_in(folder: Path, cls, split: str, seed: int) -> set[tuple[int, int]]:
    """(fold, shot) of each episode list of ``cls``, ``split`` and ``seed`` in ``folder``, by
    the names ``sansa prepare --episodes`` gives them."""
    import re

    pattern = re.compile(rf"{re.escape(cls.name)}_fold(\d+)_{re.escape(split)}_(\d+)shot"
                         rf"_seed{seed}\.json")
    found = (pattern.fullmatch(p.name) for p in folder.iterdir())
    return {(int(m[1]), int(m[2])) for m in found if m}


def build_plan(job: EvalJob) -> EvalPlan:
    """Check every option and input file, sample or read every episode list; write nothing."""
    from sansa_cli import registry
    from sansa_cli.core.prompt_sampling import PROMPT_TYPES

    cls = registry.load("dataset", job.dataset)
    if not Path(job.data_root).expanduser().is_dir():
        raise MissingFileError(f"--data-root {job.data_root} is not a folder; pass the "
                               f"{job.dataset} dataset folder")
    if job.prompt not in PROMPT_TYPES:
        raise UserInputError(f"--prompt {job.prompt!r} is unknown; use one of "
                             f"{', '.join(PROMPT_TYPES)}")
    if job.episodes_per_fold is not None and job.episodes_per_fold < 1:
        raise UserInputError(f"--episodes-per-fold {job.episodes_per_fold} must be positive")
    if job.compare_frozen and job.adapters.strip().lower() == "none":
        raise UserInputError("--compare-frozen compares adapters with frozen SAM2; "
                             "pass --adapters FILE or drop --compare-frozen")
    if job.cache_mb < 0 or job.visualize < 0:
        raise UserInputError("--cache-mb and --visualize must not be negative")
    options = parse_options(job.dataset_options)
    folds, shots = _selection(job, cls)
    first = _dataset(cls, job, (folds or [0])[0], shots[0], options)
    folds = folds if folds is not None else list(range(first.num_folds))
    canvas = parse_canvas(job.canvas, cls.default_canvas)
    tasks = []
    for fold in folds:
        for shot in shots:
            dataset = _dataset(cls, job, fold, shot, options)
            if job.episodes is not None:
                episodes, source = _listed(job, cls, dataset, shot)
            else:
                episodes = dataset.episodes(shot, job.seed, job.episodes_per_fold)
                source = "sampled"
            if job.episodes_per_fold is not None:
                episodes = episodes[:job.episodes_per_fold]
            tasks.append(Task(fold, shot, dataset, episodes,
                              episode_hash(dataset, shot, episodes), source))
    adapters = resolve_adapters(job.adapters, folds)
    return EvalPlan(job, cls, tasks, canvas, adapters, first.options())
