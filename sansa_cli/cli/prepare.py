"""``sansa prepare``: build, check and index a dataset; write frozen episode lists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def prepare(
    dataset: Annotated[str, typer.Argument(
        help="Dataset plugin (built-in or third-party; `sansa info` lists them).",
        show_default=False)],
    data_root: Annotated[Optional[Path], typer.Option(
        "--data-root", "--root", "--coco-root",
        help="The dataset folder (for a build: the folder of its official source files).",
        show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out",
        help="Build: folder receiving the built files (default: --data-root). "
        "--episodes: a .json file or a folder.", show_default=False)] = None,
    splits: Annotated[Optional[Path], typer.Option(
        "--splits", help="The dataset option splits: a folder of split files (e.g. HSNet's "
        "data/splits), or a split file for plugins that read one.", show_default=False)] = None,
    dataset_option: Annotated[Optional[list[str]], typer.Option(
        "--dataset-option", "--option", help="Dataset option KEY=VALUE (repeatable), as for "
        "`sansa eval`; a plugin's build options too.", show_default=False)] = None,
    episodes: Annotated[bool, typer.Option(
        "--episodes", help="Write frozen episode lists instead of checking the folder.")] = False,
    shots: Annotated[str, typer.Option("--shots", help="Shots of the episode lists.")] = "1,5",
    fold: Annotated[Optional[int], typer.Option(
        "--fold", help="Fold to check or of the episode lists (default: every fold).",
        show_default=False)] = None,
    split: Annotated[Optional[str], typer.Option(
        "--split", help="Split of the episode lists (default: the benchmark's test split).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episode lists.")] = 0,
    count: Annotated[Optional[int], typer.Option(
        "--count", help="Episodes per list (default: the benchmark's protocol).",
        show_default=False)] = None,
) -> None:
    """Build a dataset from its official files, check and index its folder, or write episode lists.

    [bold]sansa prepare DATASET --data-root DIR[/bold]: a plugin that builds
    from official source files found in DIR does so first (resumable; writes
    only into --out, default DIR), then the folder is checked and indexed.
    Every run prints one summary: images, classes, missing and broken files.

    [bold]sansa prepare DATASET --data-root DIR --episodes --shots 1,5 --out DIR[/bold]:
    write frozen episode lists (every fold, or --fold F) that `sansa eval`
    replays exactly.
    """
    from sansa_cli import registry
    from sansa_cli.errors import UserInputError

    cls = registry.load("dataset", dataset)
    if data_root is None:
        raise UserInputError(f"sansa prepare {dataset} needs the dataset folder; "
                             "pass --data-root DIR")
    options = _options(splits, dataset_option)
    if episodes:
        _episodes(cls, data_root, options, fold, shots, out, seed, split, count)
        return
    if split is not None or count is not None:
        raise UserInputError("--split and --count only apply with --episodes; add --episodes")
    _check(cls, data_root, out, options, fold)


def _options(splits: Optional[Path], extra: Optional[list[str]]) -> dict:
    from sansa_cli.core.parsing import key_values

    options: dict = {"splits": splits}
    options.update(key_values(extra, "--dataset-option", "splits=DIR"))
    return {k: v for k, v in options.items() if v is not None}


def _track(items, total: int, description: str):
    """A rich progress bar over ``items`` (on stderr, so stdout keeps only the summary)."""
    from rich.console import Console
    from rich.progress import track

    return track(items, total=total, description=description, console=Console(stderr=True),
                 transient=True)


def _check(cls, root: Path, out: Optional[Path], options: dict, fold: Optional[int]) -> None:
    from rich.console import Console

    from sansa_cli.datasets.prepare import prepare_dataset

    built, report = prepare_dataset(cls, root, out, options, _track,
                                    None if fold is None else [fold])
    console = Console()
    for line in built.summary if built is not None else ():
        console.print(line, markup=False, highlight=False)
    _print_check(report)


def _episodes(cls, root: Path, options: dict, fold: Optional[int], shots: str,
              out: Optional[Path], seed: int, split: Optional[str], count: Optional[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    from sansa_cli.core.parsing import parse_shots
    from sansa_cli.datasets.prepare import write_episode_lists

    folds = list(range(cls.num_folds)) if fold is None else [fold]
    rows = write_episode_lists(cls, root, options, folds, parse_shots(shots),
                               out if out is not None else Path("episodes"), seed, split, count)
    table = Table(title=f"{cls.name} episode lists (seed {seed})")
    for column in ("fold", "shot", "episodes", "file"):
        table.add_column(column)
    for fold_, shot, n, path in rows:
        table.add_row(str(fold_), str(shot), str(n), str(path))
    Console().print(table)


def _print_check(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.dataset} at {report.root}")
    for column in ("split", "classes", "images"):
        table.add_column(column)
    for split, classes in report.classes.items():
        table.add_row(split, str(classes), str(report.images[split]))
    console = Console()
    console.print(table)
    console.print(f"{report.files} files checked: {len(report.missing)} missing, "
                  f"{len(report.broken)} broken")
    for path in report.missing[:10]:
        console.print(f"[red]missing[/red] {path}")
    for path, reason in report.broken[:10]:
        console.print(f"[red]broken[/red] {path}: {reason}")
    hidden = len(report.missing) + len(report.broken) - min(10, len(report.missing)) - min(
        10, len(report.broken))
    if hidden > 0:
        console.print(f"... and {hidden} more")
    for note in report.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    for warning in report.warnings:
        console.print(f"[yellow]warning[/yellow] {warning}")
