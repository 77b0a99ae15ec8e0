"""The work behind ``sansa eval``: plan, run the episodes (sharded under torchrun), report.

Sharding: every process builds the same plan (episode lists are seed-deterministic or frozen
files), drops the episodes already in the log, and takes every ``world``-th of the rest. After each
step (one episode per process) the rows are gathered on rank 0, which appends them to the log;
the scores are computed from the log's integer sums on rank 0 only, so they do not depend on
the number of processes, their order, or on resuming. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from sansa_cli.core import distributed
from sansa_cli.evaluation.plan import EvalJob, EvalPlan, Task, build_plan
from sansa_cli.evaluation.resume import EpisodeLog, row_key

LOG_NAME = "episodes.jsonl"


def _versions() -> dict[str, Any]:
    from importlib import metadata

    import torch

    import sansa_cli

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"sansa": sansa_cli.__version__, "torch": torch.__version__,
            "sam2": version("sam2"), "numpy": np.__version__,
            "python": platform.python_version()}


def _base_model(plan: EvalPlan) -> tuple[str, Path]:
    """The SAM2 name and checkpoint every model of the run is built from."""
    from sansa_cli.artifacts.adapter_file import read_adapter_info
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.core.assemble import base_spec
    from sansa_cli.core.choices import expand_sam2_name

    files = [p for p in plan.adapters.values() if p is not None]
    info = read_adapter_info(files[0]) if files else None
    spec = base_spec(plan.job.sam2, info)
    # a stock name in full (tiny -> sam2.1_hiera_tiny), a YAML path as it was given
    given = plan.job.sam2 and expand_sam2_name(plan.job.sam2)
    if given and Path(given).is_file():  # a YAML: recorded wherever the run was started from
        given = str(Path(given).resolve())
    name = given or (info.base_model if info else spec.name)
    return name, sam2_checkpoint(spec, plan.job.sam2_checkpoint)


def _settings(plan: EvalPlan, sam2: str, checkpoint: Path) -> tuple[dict, dict, dict]:
    """(settings that decide the numbers, hashed for resuming; everything recorded;
    fold -> adapter sha256)."""
    from sansa_cli.artifacts.hashing import sha256_file

    job = plan.job
    decisive = {
        "dataset": plan.cls.name, "split": plan.tasks[0].dataset.split,
        "dataset_options": dict(plan.options),  # JSON-ready, paths absolute (the contract)
        "input_profile_options": list(job.input_profile), "seed": job.seed,
        "canvas": "original" if plan.canvas is None else plan.canvas, "prompt": job.prompt,
        "precision": job.precision, "sam2": sam2, "sam2_checkpoint_sha256": sha256_file(checkpoint),
    }
    adapters = {str(f): None if p is None else {"path": str(p), "sha256": sha256_file(p)}
                for f, p in plan.adapters.items()}
    recorded = {
        **decisive, "data_root": str(Path(job.data_root).resolve()),
        "sam2_checkpoint": str(checkpoint), "folds": sorted(plan.adapters),
        "shots": sorted({t.shot for t in plan.tasks}),
        "adapters": "none" if all(v is None for v in adapters.values()) else adapters,
        "compare_frozen": job.compare_frozen, "episodes_per_fold": job.episodes_per_fold,
        "episode_lists": [{"fold": t.fold, "shot": t.shot, "sha256": t.episode_hash,
                           "source": t.source, "episodes": len(t.episodes),
                           "options": t.dataset.options()} for t in plan.tasks],
        "input_profiles": _profiles(plan),
        "device": job.device, "batch_size": job.batch_size, "cache_mb": job.cache_mb,
        "world_size": distributed.world_size(),
    }
    shas = {f: None if v is None else v["sha256"] for f, v in zip(plan.adapters, adapters.values())}
    return decisive, recorded, shas


def _profiles(plan: EvalPlan) -> dict[str, dict]:
    """Adapter file (or 'none') -> the input profile its model is fed by, as recorded."""
    import dataclasses

    from sansa_cli.artifacts.adapter_file import read_adapter_info
    from sansa_cli.core.input_profile import VIDEO_PREDICTOR, apply_profile_options

    files = set(plan.adapters.values()) | ({None} if plan.job.compare_frozen else set())
    profiles = {}
    for path in sorted(files, key=str):
        base = read_adapter_info(path).profile()[0] if path is not None else VIDEO_PREDICTOR
        profile = apply_profile_options(base, plan.job.input_profile)
        profiles["none" if path is None else str(path)] = dataclasses.asdict(profile)
    return profiles


def _task_hash(task: Task, adapter_sha: str | None) -> str:
    return hashlib.sha256(f"{task.episode_hash}:{adapter_sha or 'none'}".encode()).hexdigest()[:16]


def _models(plan: EvalPlan, shas: dict[int, str | None]
            ) -> list[tuple[str, dict[int, Path | None], dict[int, str | None]]]:
    """(model name, fold -> adapter file, fold -> its sha256) for each model evaluated."""
    adapted = any(p is not None for p in plan.adapters.values())
    runs = [("adapted" if adapted else "frozen", plan.adapters, shas)]
    if plan.job.compare_frozen:
        runs.append(("frozen", {f: None for f in plan.adapters}, {f: None for f in plan.adapters}))
    return runs


def _visualized(plan: EvalPlan) -> set[tuple[int, int, int]]:
    """(fold, shot, index) of the first ``--visualize`` episodes, in task order."""
    chosen, left = set(), plan.job.visualize
    for task in plan.tasks:
        for episode in task.episodes[:max(left, 0)]:
            chosen.add((task.fold, task.shot, episode.index))
        left -= len(task.episodes)
    return chosen


class _Runner:
    def __init__(self, plan: EvalPlan, sam2: str, checkpoint: Path, device, log: EpisodeLog,
                 shas: dict[int, str | None]):
        self.plan, self.sam2, self.checkpoint, self.device = plan, sam2, checkpoint, device
        self.log, self.models = log, _models(plan, shas)
        self.visualize = _visualized(plan)
        self.cache_stats: dict[str, dict] = {}
        self.ran = 0

    def load(self, adapter: Path | None):
        from sansa_cli.api import load_model

        job = self.plan.job
        model = load_model(sam2=self.sam2, sam2_checkpoint=self.checkpoint,
                           adapters="none" if adapter is None else adapter,
                           device=self.device.type, precision=job.precision,
                           batch_size=job.batch_size, download=False,
                           allow_base_mismatch=job.allow_base_mismatch,
                           input_profile=job.input_profile)
        model.device = self.device  # cuda:LOCAL_RANK under torchrun (the current device)
        return model

    def run(self, done: set, progress) -> None:
        from sansa_cli.evaluation.cache import FeatureCache

        rank, world = distributed.rank(), distributed.world_size()
        for name, adapters, shas in self.models:
            model, cache, loaded = None, None, ()
            for task in self.plan.tasks:
                thash = _task_hash(task, shas[task.fold])
                todo = [e for e in task.episodes
                        if (name, task.fold, task.shot, e.index, thash) not in done]
                mine = todo[rank::world]
                if mine and loaded != (adapters[task.fold],):
                    model, loaded = self.load(adapters[task.fold]), (adapters[task.fold],)
                    cache = FeatureCache(self.plan.job.cache_mb)
                for step in range(math.ceil(len(todo) / world)):
                    payload = None
                    if step < len(mine):
                        payload = self._episode(model, cache, task, mine[step], name, thash)
                    gathered = distributed.gather_to_main(payload)
                    if distributed.is_main():
                        self._keep(task, [g for g in gathered if g is not None], progress)
            if cache is not None:
                self.cache_stats[name] = cache.stats()

    def _episode(self, model, cache, task: Task, episode, name: str, thash: str):
        from sansa_cli.evaluation.episodes import run_episode

        job = self.plan.job
        result = run_episode(model, task.dataset, episode, cache, self.plan.canvas, job.prompt,
                             job.seed)
        row = {**result.row, "model": name, "fold": task.fold, "shot": task.shot, "task": thash,
               "rank": distributed.rank()}
        pictures = None
        sheet = name == self.models[0][0] and \
            (task.fold, task.shot, episode.index) in self.visualize
        if job.save_predictions is not None or sheet:
            pictures = (np.packbits(result.prediction), result.prediction.shape,
                        (result.ground_truth, result.prompts) if sheet else None)
        return row, pictures

    def _keep(self, task: Task, items: list, progress) -> None:
        from sansa_cli.artifacts.masks import write_mask

        self.log.append(row for row, _ in items)
        self.ran += len(items)
        job = self.plan.job
        for row, pictures in items:
            if pictures is not None:
                packed, shape, for_sheet = pictures
                mask = np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).astype(bool)
                if job.save_predictions is not None:
                    folder = Path(job.save_predictions) / ("" if row["model"] != "frozen" or
                                                           not job.compare_frozen else "frozen")
                    name = f"{task.fold}_{task.shot}shot_{row['index']}.png"
                    write_mask(folder / name, mask)
                if for_sheet is not None:
                    self._sheet(task, row, mask, *for_sheet)
            if progress is not None:
                progress.advance(progress.task_ids[0])

    def _sheet(self, task: Task, row: dict, mask: np.ndarray, truth: np.ndarray,
               prompts: list) -> None:
        from sansa_cli.evaluation.report import write_sheet

        episode = next(e for e in task.episodes if e.index == row["index"])
        path = Path(self.plan.job.out) / "pictures" / \
            f"fold{task.fold}_{task.shot}shot_{episode.index}.png"
        write_sheet(path, task.dataset, episode, prompts, mask, truth, row["iou"])


def run_eval(job: EvalJob, console=None) -> list:
    """Run an evaluation end to end and return its scores (rank 0; [] on other ranks).

    Every input is checked before anything is written or any model is built; the output
    folders are locked against a second run while this one writes them.
    """
    from sansa_cli.artifacts.files import check_output_dir

    started = time.perf_counter()
    check_output_dir(job.out, "--out")
    if job.save_predictions is not None:
        check_output_dir(job.save_predictions, "--save-predictions")
    plan = build_plan(job)
    sam2, checkpoint = _base_model(plan)
    with _locked_outputs(job):
        return _evaluate(plan, sam2, checkpoint, console, started)


@contextlib.contextmanager
def _locked_outputs(job: EvalJob):
    """Hold ``--out`` and ``--save-predictions`` (rank 0 only: the other ranks write nothing)."""
    from sansa_cli.artifacts.files import output_lock

    folders = {Path(job.out).expanduser().resolve(): (job.out, "--out")}
    if job.save_predictions is not None:
        folders.setdefault(Path(job.save_predictions).expanduser().resolve(),
                           (job.save_predictions, "--save-predictions"))
    with contextlib.ExitStack() as stack:
        for path, flag in folders.values() if distributed.is_main() else ():
            stack.enter_context(output_lock(path, flag))
        yield


def _evaluate(plan: EvalPlan, sam2: str, checkpoint: Path, console, started: float) -> list:
    from sansa_cli.core.device import resolve_device, resolve_precision
    from sansa_cli.evaluation import report

    job = plan.job
    # "auto" is recorded as what it chose here: a resumed run elsewhere must choose the same
    def warn(message: str) -> None:
        if console is not None:
            console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)

    job.precision = resolve_precision(job.precision, resolve_device(job.device), warn)
    decisive, recorded, shas = _settings(plan, sam2, checkpoint)
    log = EpisodeLog(Path(job.out) / LOG_NAME, decisive)
    previous = log.read()
    device = distributed.init(resolve_device(job.device).type)
    try:
        done = {row_key(r) for r in previous}
        runner = _Runner(plan, sam2, checkpoint, device, log, shas)
        total = _pending(plan, runner, done)
        with _progress(total) as progress:
            runner.run(done, progress)
        if not distributed.is_main():
            return []
        scores = _scores(plan, runner, log.read())
        extra = {"cache": runner.cache_stats,
                 "run": {"episodes_run": runner.ran, "episodes_resumed": total[1],
                         "seconds": round(time.perf_counter() - started, 2)}}
        report.write_results(Path(job.out), recorded, _versions(), scores, extra)
        report.write_per_class(Path(job.out), scores,
                               lambda fold, cid: _class_names(plan)[fold](cid))
        if console is not None:
            console.print(report.table(f"{plan.cls.name} ({_canvas_label(plan)}, "
                                       f"{job.prompt} references)", scores))
        return scores
    finally:
        distributed.teardown()


def _pending(plan: EvalPlan, runner: _Runner, done: set) -> tuple[int, int]:
    todo = resumed = 0
    for name, _, shas in runner.models:
        for task in plan.tasks:
            thash = _task_hash(task, shas[task.fold])
            n = sum((name, task.fold, task.shot, e.index, thash) in done for e in task.episodes)
            resumed += n
            todo += len(task.episodes) - n
    return todo, resumed


def _progress(total: tuple[int, int]):
    """A progress bar on stderr on rank 0 (a do-nothing context elsewhere)."""
    if not distributed.is_main():
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(console=Console(stderr=True), transient=True)
    progress.add_task(f"episodes ({total[1]} already done)", total=total[0])
    return progress


def _class_names(plan: EvalPlan) -> dict:
    return {t.fold: t.dataset.class_name for t in plan.tasks}


def _canvas_label(plan: EvalPlan) -> str:
    return "original size" if plan.canvas is None else f"canvas {plan.canvas}"


def _scores(plan: EvalPlan, runner: _Runner, rows: list[dict]) -> list:
    from sansa_cli.evaluation.report import score

    latest = {}
    for row in rows:
        latest.setdefault(row_key(row), row)
    scores = []
    for name, _, shas in runner.models:
        for task in plan.tasks:
            thash = _task_hash(task, shas[task.fold])
            wanted = [latest[k] for k in ((name, task.fold, task.shot, e.index, thash)
                                          for e in task.episodes) if k in latest]
            scores.append(score(name, task.fold, task.shot, list(task.dataset.classes), wanted))
    return scores
