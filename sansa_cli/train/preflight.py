"""Everything a training run checks before it downloads a checkpoint, builds a model or takes a
step: the run folder, the plugin names and options, the base model's files, the datasets (every
one of a mixture: name, folder, options), their files and their masks. Each problem is one line
naming the bad value and the fix.
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
from sansa_cli.train.mixture import MIX, Entry, Mixture, check_roots, dataset_fold, entries

#: training masks loaded to see that some object is marked (a bounded sample: the check must
#: stay fast on COCO-sized datasets)
MASK_SAMPLE = 64
LOG_FIX = "remove that line (the log is a record only) and resume"


@dataclass
class Checked:
    """What the checks built, handed to the run: the training split (a plugin's, or a
    :class:`~sansa_cli.train.mixture.Mixture` of them), the validation, warnings."""

    dataset: object
    validator: object | None
    warnings: list[str] = field(default_factory=list)


def check_run(config: TrainConfig, out: Path, resume: bool, ctx, show: bool) -> Checked:
    """Check everything a run needs, cheapest first; nothing is written or downloaded.

    Every process runs the cheap checks; the main process alone reads the datasets' files (with
    a progress bar on a terminal when ``show``) and passes its verdict to the others.
    """
    from sansa_cli.adapters.base import build_strategy
    from sansa_cli.datasets.base import usable_pools
    from sansa_cli.train.setup import epoch_plan

    check_run_dir(out, resume)
    plugins = check_entries(config)
    build_strategy(config.adapter, config.adapter_options)  # names and options, no model
    check_base_files(config)
    members = {}
    for entry in entries(config):
        cls = plugins[entry.name]
        # Where fold membership depends on the shot, the held-out classes are the validation
        # shot's.
        options = cls.options_for_shot(entry.options, config.val_shot)
        members[entry.name] = cls.create(entry.root, dataset_fold(config.fold), "train",
                                         **options)
        usable_pools(members[entry.name])
    dataset = (Mixture(members, config.mix) if config.dataset == MIX
               else members[config.dataset])
    epoch_plan(config, dataset, ctx.world)
    validation = None
    if config.val_episodes:
        from sansa_cli.train.validation import Validation

        validation = Validation(config, ctx.rank, ctx.world)
    failure = None
    if ctx.is_main:
        try:
            for entry in entries(config):
                validators = [v for v in getattr(validation, "validators", ())
                              if v.name == entry.name]
                check_files(members[entry.name], validators, _prepare_command(entry), show)
                check_masks(members[entry.name])
        except SansaError as exc:
            failure = (type(exc), str(exc))
    failure = distributed.broadcast_from_main(failure)
    if failure is not None:
        raise failure[0](failure[1])
    warnings = [*dataset.notes(), *(validation.notes() if validation else [])]
    return Checked(dataset, validation, warnings)


def check_entries(config: TrainConfig) -> dict[str, type]:
    """Every dataset of the run: a registered plugin, a folder given (and none for a dataset
    the run does not name); returns name -> plugin class. Weights and option names were
    checked with the config (``train/config.py``)."""
    from sansa_cli import registry
    from sansa_cli.errors import PluginError

    plugins = {}
    for entry in entries(config):
        try:
            plugins[entry.name] = registry.load("dataset", entry.name)
        except PluginError as exc:
            if config.dataset != MIX:
                raise
            raise PluginError(f"--mix: {exc}") from None
    check_roots(config)
    return plugins


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


def check_files(dataset, validators, prepare_command: str, show: bool) -> int:
    """Every file of the training split and of the ``validators``' episodes (of the same
    dataset) opens as an image (a header check, as ``sansa prepare`` does); returns the number
    of files checked."""
    paths = {p: None for image in dataset.image_ids() for p in dataset.files(image)}
    for validator in validators:
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
            f"unreadable: run `{prepare_command}` to list them")
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


def _prepare_command(entry: Entry) -> str:
    options = "".join(f" --dataset-option {k}={v}" for k, v in entry.options.items())
    return f"sansa prepare {entry.name} --data-root {entry.root}{options}"


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
