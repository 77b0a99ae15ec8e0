"""``sansa prepare``: build, check and index a dataset; write frozen episode lists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def prepare(
    dataset: Annotated[str, typer.Argument(
        help="Dataset plugin: coco20i, lvis92i, fss1000, pascal5i, folder (or a third-party one).",
        show_default=False)],
    root: Annotated[Optional[Path], typer.Option(
        "--root", "--coco-root",
        help="Dataset folder (for coco20i and lvis92i: the COCO folder with the images).",
        show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out",
        help="coco20i build: folder receiving masks and split files (default: --root). "
        "--episodes: a .json file or a folder.", show_default=False)] = None,
    splits: Annotated[Optional[Path], typer.Option(
        "--splits", help="Split files: a folder (e.g. HSNet's data/splits) or, for folder, a "
        "splits.json.", show_default=False)] = None,
    lvis_json: Annotated[Optional[Path], typer.Option(
        "--lvis-json", help="lvis92i: folder (or one file) of lvis_v1_{train,val}.json or "
        "Matcher's lvis_{train,val}.pkl.", show_default=False)] = None,
    episodes: Annotated[bool, typer.Option(
        "--episodes", help="Write frozen episode lists instead of checking the folder.")] = False,
    shots: Annotated[str, typer.Option("--shots", help="Shots of the episode lists.")] = "1,5",
    fold: Annotated[Optional[int], typer.Option(
        "--fold", help="Fold of the episode lists (default: every fold).",
        show_default=False)] = None,
    split: Annotated[Optional[str], typer.Option(
        "--split", help="Split of the episode lists (default: the benchmark's test split).",
        show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episode lists.")] = 0,
    count: Annotated[Optional[int], typer.Option(
        "--count", help="Episodes per list (default: the benchmark's protocol).",
        show_default=False)] = None,
    min_pixels: Annotated[int, typer.Option(
        "--min-pixels", help="coco20i build: pixels a class needs in an image to be listed.")] = 2048,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", help="Any other dataset option as KEY=VALUE (repeatable), e.g. "
        "membership=peers for lvis92i.", show_default=False)] = None,
) -> None:
    """Check a dataset folder, build COCO-20i from the official JSON, or write episode lists.

    [bold]sansa prepare coco20i --coco-root DIR[/bold]: build the HSNet-layout
    masks and split files from annotations/instances_{train,val}2014.json
    (resumable; writes only into --out, default --coco-root).

    [bold]sansa prepare fss1000 --root DIR[/bold] (or lvis92i, pascal5i, folder):
    check and index the folder.

    Every run prints one summary: images, classes, missing and broken files.

    [bold]sansa prepare DATASET --root DIR --episodes --shots 1,5 --out DIR[/bold]:
    write frozen episode lists (every fold, or --fold F) that `sansa eval`
    replays exactly.
    """
    from sansa_cli import registry
    from sansa_cli.errors import UserInputError

    cls = registry.load("dataset", dataset)
    if root is None:
        raise UserInputError(f"sansa prepare {dataset} needs the dataset folder; pass --root DIR")
    options = _options(splits, lvis_json, option)
    if episodes:
        _episodes(cls, root, options, fold, shots, out, seed, split, count)
        return
    if split is not None or count is not None:
        raise UserInputError("--split and --count only apply with --episodes; add --episodes")
    _check(cls, root, out, options, min_pixels, fold)


def _options(splits: Optional[Path], lvis_json: Optional[Path],
             extra: Optional[list[str]]) -> dict:
    from sansa_cli.core.parsing import key_values

    options: dict = {"splits": splits, "annotations": lvis_json}
    options.update(key_values(extra, "--option", "membership=peers"))
    return {k: v for k, v in options.items() if v is not None}


def _track(items, total: int, description: str):
    """A rich progress bar over ``items`` (on stderr, so stdout keeps only the summary)."""
    from rich.console import Console
    from rich.progress import track

    return track(items, total=total, description=description, console=Console(stderr=True),
                 transient=True)


def _check(cls, root: Path, out: Optional[Path], options: dict, min_pixels: int,
           fold: Optional[int]) -> None:
    from sansa_cli.datasets.prepare import check_dataset

    if cls.name == "coco20i":
        from sansa_cli.datasets import prepare_coco

        if prepare_coco.has_instance_json(root):
            built = prepare_coco.build_coco20i(root, out, min_pixels, _track)
            _print_build(built)
            if out is not None and Path(out).resolve() != Path(root).resolve():
                options = {"image_root": root, **options}
                root = out
    elif out is not None:
        from sansa_cli.errors import UserInputError

        raise UserInputError("--out only applies to coco20i builds and --episodes; drop it")
    folds = None if fold is None else [fold]
    _print_check(check_dataset(cls, root, options, _track, folds))


def _episodes(cls, root: Path, options: dict, fold: Optional[int], shots: str,
              out: Optional[Path], seed: int, split: Optional[str], count: Optional[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    from sansa_cli.datasets.prepare import parse_shots, write_episode_lists

    folds = list(range(cls.num_folds)) if fold is None else [fold]
    rows = write_episode_lists(cls, root, options, folds, parse_shots(shots),
                               out if out is not None else Path("episodes"), seed, split, count)
    table = Table(title=f"{cls.name} episode lists (seed {seed})")
    for column in ("fold", "shot", "episodes", "file"):
        table.add_column(column)
    for fold_, shot, n, path in rows:
        table.add_row(str(fold_), str(shot), str(n), str(path))
    Console().print(table)


def _print_build(built) -> None:
    from rich.console import Console

    console = Console()
    images = ", ".join(f"{n} {split}" for split, n in built.images.items())
    console.print(f"coco20i masks in {built.out / 'annotations'}: {built.written} written, "
                  f"{built.kept} kept from an earlier run ({images} annotated images)")
    for split in built.skipped_splits:
        console.print(f"[yellow]no instances_{split}.json: {split} skipped[/yellow]")


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
