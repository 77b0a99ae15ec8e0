"""Everything a training run checks before it downloads a checkpoint, builds a model or takes a
step: the run folder, the plugin names and options, the base model's files, the datasets, their
files and their masks. Each problem is one line naming the bad value and the fix.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sansa_cli.core import distributed
from sansa_cli.errors import (
    AdapterFileError,
    DatasetError,
    MissingFileError,
    SansaError,
    UserInputError,
)
from sansa_cli.train.config import TrainConfig

#: training masks loaded to see that some object is marked (a bounded sample: the check must
#: stay fast on COCO-sized datasets)
MASK_SAMPLE = 64
LOG_FIX = "remove that line (the log is a record only) and resume"


@dataclass
class Checked:
    """What the checks built, handed to the run: the training split, the validator, warnings."""

    dataset: object
    validator: object | None
    warnings: list[str] = field(default_factory=list)


def check_run(config: TrainConfig, out: Path, resume: bool, ctx, show: bool) -> Checked:
    """Check everything a run needs, cheapest first; nothing is written or downloaded.

    Every process runs the cheap checks; the main process alone reads the dataset's files (with
    a progress bar on a terminal when ``show``) and passes its verdict to the others.
    """
    from sansa_cli import registry
    from sansa_cli.adapters.base import build_strategy
    from sansa_cli.datasets.base import usable_pools
    from sansa_cli.train.setup import epoch_plan

    check_run_dir(out, resume)
    cls = registry.load("dataset", config.dataset)
    build_strategy(config.adapter, config.adapter_options)  # names and options, no model
    check_base_files(config)
    # Where fold membership depends on the shot, the held-out classes are the validation shot's.
    options = cls.options_for_shot(config.dataset_options, config.val_shot)
    dataset = cls.create(config.data_root, config.fold, "train", **options)
    usable_pools(dataset)
    epoch_plan(config, dataset, ctx.world)
    validator = None
    if config.val_episodes:
        from sansa_cli.train.validation import Validator

        validator = Validator(config, ctx.rank, ctx.world)
    failure = None
    if ctx.is_main:
        try:
            check_files(dataset, validator, config, show)
            check_masks(dataset)
        except SansaError as exc:
            failure = (type(exc), str(exc))
    failure = distributed.broadcast_from_main(failure)
    if failure is not None:
        raise failure[0](failure[1])
    warnings = list(dataset.notes())
    return Checked(dataset, validator, warnings)


def check_run_dir(out: Path, resume: bool) -> None:
    """A new run needs a writable folder holding no run; a resumed one needs its checkpoint."""
    import zipfile

    from sansa_cli.artifacts.files import check_output_dir

    check_output_dir(out, "--resume" if resume else "--out")
    latest = out / "checkpoints" / "latest.pt"
    if not resume:
        if latest.exists():
            raise UserInputError(f"{out} already holds a run; continue it with --resume {out} "
                                 "or choose another --out")
        return
    if not latest.is_file():
        raise MissingFileError(
            f"{out} has no checkpoint to resume: checkpoints/latest.pt is missing (the run "
            f"stopped before its first save); start it over with `sansa train --config "
            f"{out / 'config.yaml'} --out {out}`")
    if not zipfile.is_zipfile(latest):  # torch.save writes a zip archive; a torn one is not
        raise AdapterFileError(
            f"training checkpoint {latest} is corrupt or truncated (not a complete torch.save "
            f"archive); restore it from a copy or start over with `sansa train --config "
            f"{out / 'config.yaml'} --out NEW_DIR`")
    log = out / "log.jsonl"
    if log.is_file():  # a torn last line is dropped on resume; a bad line elsewhere is named
        from sansa_cli.evaluation.resume import read_json_lines

        read_json_lines(log, log.read_text(errors="replace").splitlines(), LOG_FIX)


def check_base_files(config: TrainConfig) -> None:
    """The base model's name or YAML, and a checkpoint that will not be downloaded, exist."""
    from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
    from sansa_cli.core.assemble import base_spec

    spec = base_spec(config.sam2)
    if config.sam2_checkpoint is not None or not spec.is_stock:
        sam2_checkpoint(spec, config.sam2_checkpoint, download=False)


def check_files(dataset, validator, config: TrainConfig, show: bool) -> int:
    """Every file of the training split and of the validation episodes opens as an image (a
    header check, as ``sansa prepare`` does); returns the number of files checked."""
    paths = {p: None for image in dataset.image_ids() for p in dataset.files(image)}
    if validator is not None:
        images = {i for e in validator.episodes for i in (e.target, *e.references)}
        paths.update({p: None for image in sorted(images) for p in validator.dataset.files(image)})
    bad = _problems(list(paths), show)
    if bad:
        path, reason = bad[0]
        first = (f"{path} is missing" if reason == "missing" else
                 reason if str(path) in reason else  # the reason names the file, and a fix
                 f"{path} is unreadable ({reason})")
        raise DatasetError(
            f"{first}; {len(bad)} of the {len(paths)} files training reads are missing or "
            f"unreadable: run `{_prepare_command(config)}` to list them")
    return len(paths)


def _problems(paths: list[Path], show: bool) -> list[tuple[Path, str]]:
    """(path, 'missing' or the reason) of each bad file, in order; files are read in threads
    (the check waits on the disk, not the CPU)."""
    from concurrent.futures import ThreadPoolExecutor

    from sansa_cli.datasets.prepare import _verify

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        verdicts = pool.map(_verify, paths)
        if show and sys.stderr.isatty() and paths:
            verdicts = _track(verdicts, len(paths), f"checking {len(paths)} training files")
        return [(path, reason) for path, reason in zip(paths, verdicts) if reason]


def _track(items, total: int, description: str):
    from rich.console import Console
    from rich.progress import track

    return track(items, total=total, description=description, console=Console(stderr=True),
                 transient=True)


def _prepare_command(config: TrainConfig) -> str:
    options = "".join(f" --dataset-option {k}={v}" for k, v in config.dataset_options.items())
    return f"sansa prepare {config.dataset} --data-root {config.data_root}{options}"


def check_masks(dataset) -> None:
    """Some training mask marks an object: a run on empty masks would learn nothing, silently.

    Up to :data:`MASK_SAMPLE` (image, class) pairs are read, taking the classes in turn.
    """
    from sansa_cli.datasets.base import usable_pools

    import itertools

    pools = usable_pools(dataset)
    deepest = max(len(pool) for pool in pools.values())
    turns = ((pool[k], cid) for k in range(deepest) for cid, pool in pools.items()
             if k < len(pool))
    pairs = list(itertools.islice(turns, MASK_SAMPLE + 1))
    if len(pairs) > MASK_SAMPLE:
        pairs = pairs[:MASK_SAMPLE]
        scope = f"a sample of {len(pairs)} taking the classes in turn"
    else:
        scope = f"all {len(pairs)}"
    for image, cid in pairs:
        if (dataset.load_mask(image, cid) == 1).any():
            return
    raise DatasetError(
        f"every training mask read is empty ({scope} of {dataset.describe()}): no pixel marks "
        f"the object; check the masks (the object must be non-zero) and --data-root")
