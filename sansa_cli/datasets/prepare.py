"""Build, check and index a dataset folder, and write frozen episode lists (the library side of
``sansa prepare``). Only a plugin's build hook writes dataset files, and only into its ``out``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sansa_cli.datasets.base import BuildResult, FewShotDataset, Track, no_track
from sansa_cli.datasets.episode_list import write_episode_list
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError


@dataclass
class CheckReport:
    """What ``check_dataset`` found, for the summary table."""

    dataset: str
    root: Path
    classes: dict[str, int] = field(default_factory=dict)  # split -> number of classes
    images: dict[str, int] = field(default_factory=dict)  # split -> number of unique images
    files: int = 0
    missing: list[Path] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the datasets' own notes()


def prepare_dataset(cls: type[FewShotDataset], root: str | Path, out: str | Path | None,
                    options: dict[str, Any], track: Track = no_track,
                    folds: Iterable[int] | None = None) -> tuple[BuildResult | None, CheckReport]:
    """Build what ``cls`` builds from the source files at ``root`` (into ``out``), then check the
    result (or ``root`` itself when there is nothing to build) with :func:`check_dataset`."""
    built = cls.build(Path(root), None if out is None else Path(out), options, track)
    if built is not None:
        return built, check_dataset(cls, built.root, built.options, track, folds)
    if out is not None:
        raise UserInputError(f"--out only applies to builds from source files and to --episodes; "
                             f"{cls.name} at {root} has nothing to build; drop --out")
    report = check_dataset(cls, root, options, track, folds)
    unused = sorted(set(options) & set(cls.build_options))
    if unused:
        report.notes.append(f"option {', '.join(unused)} only applies to builds from source "
                            f"files; {cls.name} at {root} had nothing to build")
    return None, report


def check_dataset(cls: type[FewShotDataset], root: str | Path, options: dict[str, Any],
                  track: Track = no_track, folds: Iterable[int] | None = None) -> CheckReport:
    """Index every fold and split of ``cls`` at ``root`` and verify each file an image needs.

    A split or fold that cannot be indexed (e.g. no LVIS train JSON) is noted, not fatal, as long
    as one split is usable. Unreadable images or masks are listed in the report, never raised.
    """
    report = CheckReport(cls.name, Path(root))
    needed: dict[str, list[Path]] = {}
    errors: list[Exception] = []
    for split in cls.splits:
        images: set[str] = set()
        classes: set[int] = set()
        for dataset in _instances(cls, root, split, options, folds, errors, report.notes):
            classes.update(dataset.classes)
            report.notes.extend(_sparse_classes(dataset))
            report.warnings.extend(n for n in dataset.notes() if n not in report.warnings)
            for image in dataset.image_ids():
                images.add(image)
                needed.setdefault(image, dataset.files(image))
        if classes:
            report.classes[split], report.images[split] = len(classes), len(images)
    if not report.classes:
        raise errors[0] if errors else DatasetError(f"{cls.name} at {root} has no class; check it")
    paths = sorted({p for files in needed.values() for p in files})
    report.files = len(paths)
    for path in track(paths, len(paths), f"checking {cls.name}"):
        problem = _verify(path)
        if problem == "missing":
            report.missing.append(path)
        elif problem:
            report.broken.append((path, problem))
    return report


def _instances(cls: type[FewShotDataset], root, split: str, options: dict[str, Any],
               folds: Iterable[int] | None, errors: list, notes: list[str]):
    """One instance per usable fold; the first tells the fold count (a folder's split file sets
    it). Folds that fail to index become notes (and ``errors``), so one report lists them all."""
    wanted = list(folds) if folds is not None else None
    fold, count = (wanted[0] if wanted else 0), None
    while True:
        try:
            dataset = cls.create(root, fold, split, **options)
            count = count or dataset.num_folds
            yield dataset
        except (MissingFileError, DatasetError) as exc:
            errors.append(exc)
            notes.append(f"fold {fold} {split}: {exc}")
            if isinstance(exc, MissingFileError) and count is None:
                return  # the split's files are absent altogether
            count = count or cls.num_folds
        order = wanted if wanted is not None else list(range(count))
        later = [f for f in order if f > fold]
        if not later:
            return
        fold = later[0]


def _sparse_classes(dataset: FewShotDataset) -> list[str]:
    """A note naming the classes no episode can use (fewer than 2 images), if any."""
    sparse = [cid for cid in dataset.classes if len(dataset.images(cid)) < 2]
    if not sparse:
        return []
    shown = ", ".join(map(str, sparse[:10])) + (", ..." if len(sparse) > 10 else "")
    return [f"fold {dataset.fold} {dataset.split}: {len(sparse)} of {len(dataset.classes)} classes "
            f"have fewer than 2 images, are never sampled and score 0 ({shown})"]


def _verify(path: Path) -> str | None:
    """None if ``path`` is a readable image, else 'missing' or the reason it is broken (not a
    regular file, over the pixel limit, a header or checksum PIL refuses)."""
    from sansa_cli.datasets.reading import opened_image

    try:
        with opened_image(path) as image:
            image.verify()
    except MissingFileError:
        return "missing"
    except DatasetError as exc:
        return str(exc)
    return None


def episode_list_name(name: str, fold: int, split: str, shot: int, seed: int) -> str:
    return f"{name}_fold{fold}_{split}_{shot}shot_seed{seed}.json"


def write_episode_lists(cls: type[FewShotDataset], root: str | Path, options: dict[str, Any],
                        folds: list[int], shots: list[int], out: str | Path, seed: int = 0,
                        split: str | None = None, count: int | None = None) -> list[tuple]:
    """Write one frozen episode list per (fold, shot); return (fold, shot, episodes, path) rows.

    ``out`` is a ``.json`` file when exactly one list is written, else a folder that receives
    ``<dataset>_fold<F>_<split>_<K>shot_seed<S>.json`` files. An existing file is never
    rewritten: one holding exactly the list is left as is, any other is refused (before any
    list is written).
    """
    from sansa_cli.artifacts.files import check_output_dir, write_bytes_atomic

    out = Path(out).expanduser()
    single = out.suffix == ".json"
    if single and len(folds) * len(shots) != 1:
        raise UserInputError(f"--out {out} is one file but {len(folds) * len(shots)} lists are "
                             "asked for; pass a folder, or one --fold and one shot")
    check_output_dir(out.parent if single else out)
    rows, texts = [], {}
    for fold in folds:
        for shot in shots:
            dataset = cls.create(root, fold, split, **cls.options_for_shot(options, shot))
            episodes = dataset.episodes(shot, seed=seed, count=count)
            name = episode_list_name(cls.name, fold, dataset.split, shot, seed)
            path = out if single else out / name
            texts[path] = _unwritten(path, _rendered(dataset, episodes, shot, seed))
            rows.append((fold, shot, len(episodes), path))
    for path, text in texts.items():
        if text is not None:
            write_bytes_atomic(path, text)
    return rows


def _rendered(dataset: FewShotDataset, episodes, shot: int, seed: int) -> bytes:
    """The bytes of the episode list, written in a scratch folder (no user file is touched)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        return write_episode_list(Path(scratch) / "list.json", dataset, episodes, shot,
                                  seed).read_bytes()


def _unwritten(path: Path, text: bytes) -> bytes | None:
    """``text`` if ``path`` is still to be written, None if it already holds exactly ``text``;
    any other existing file is refused."""
    if path.is_file() and path.read_bytes() == text:
        return None
    if path.exists() or path.is_symlink():
        raise UserInputError(f"--out {path} already exists and is not this episode list; sansa "
                             "never rewrites your files: choose another file or folder, or "
                             "remove it")
    return text
