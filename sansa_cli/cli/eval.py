"""``sansa eval``: the benchmark's 1- and 5-shot numbers for a model, over all folds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.cli import options as opt


def eval_command(
    dataset: Annotated[str, typer.Option(
        "--dataset", help="Dataset plugin: coco20i, lvis92i, fss1000, pascal5i, folder, ...",
        show_default=False)],
    data_root: Annotated[Path, typer.Option(
        "--data-root", help="The dataset folder (as for `sansa prepare --data-root`).",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for results.json, per_class.csv and the resumable episode log.",
        show_default=False)],
    shots: Annotated[Optional[str], typer.Option(
        "--shots", help="Shots to evaluate, e.g. 1,5. Default: 1,5 (or those of the --episodes "
        "file or folder).",
        show_default=False)] = None,
    folds: Annotated[Optional[str], typer.Option(
        "--folds", help="'all' or a list such as 0,2. Default: all (or those of the --episodes "
        "file or folder).",
        show_default=False)] = None,
    split: Annotated[Optional[str], typer.Option(
        "--split", help="Split to evaluate. Default: the benchmark's test split.",
        show_default=False)] = None,
    episodes: Annotated[Optional[Path], typer.Option(
        "--episodes", help="A frozen episode list (.json from `sansa prepare --episodes`) or a "
        "folder of them. Default: the benchmark's episodes drawn with --seed.",
        show_default=False)] = None,
    episodes_per_fold: Annotated[Optional[int], typer.Option(
        "--episodes-per-fold", help="Episodes per fold and shot. Default: the benchmark's count "
        "(1000 COCO-20i, 2300 LVIS-92i, 2400 FSS-1000).", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episodes and prompts.")] = 0,
    canvas: Annotated[Optional[str], typer.Option(
        "--canvas", help="Score on an N x N canvas (e.g. 640) or at each image's 'original' "
        "size. Default: the SANSA paper's protocol for the dataset (640 COCO-20i and LVIS-92i, "
        "518 FSS-1000, original otherwise).", show_default=False)] = None,
    adapters: Annotated[str, typer.Option(
        "--adapters", help="Adapter file (.safetensors), a per-fold pattern such as "
        "'adapters/coco_fold{fold}.safetensors', or 'none' for frozen SAM2 (required: say which "
        "model you are scoring).", show_default=False)] = "",
    sam2: opt.Sam2 = None,
    sam2_checkpoint: opt.Sam2Checkpoint = None,
    device: opt.DeviceOpt = opt.Device.auto,
    precision: opt.PrecisionOpt = opt.Precision.auto,
    batch_size: opt.BatchSize = None,
    cache_mb: Annotated[float, typer.Option(
        "--cache-mb", min=0, help="Host memory for cached image-encoder outputs (0: no cache).")
    ] = 1024.0,
    prompt: Annotated[opt.PromptType, typer.Option(
        "--prompt", help="How references are marked: their masks, or points, a box, a scribble "
        "(or a random mix) drawn from the masks with a seeded generator.")] = opt.PromptType.mask,
    dataset_option: Annotated[Optional[list[str]], typer.Option(
        "--dataset-option", help="Dataset option KEY=VALUE (repeatable), e.g. "
        "membership=fixed for lvis92i.", show_default=False)] = None,
    compare_frozen: Annotated[bool, typer.Option(
        "--compare-frozen", help="Also evaluate frozen SAM2 on the same episodes.")] = False,
    save_predictions: Annotated[Optional[Path], typer.Option(
        "--save-predictions", help="Folder for <fold>_<shot>shot_<index>.png predicted masks "
        "(at the canvas).", show_default=False)] = None,
    visualize: Annotated[int, typer.Option(
        "--visualize", min=0, help="Write this many picture sheets to OUT/pictures.")] = 0,
    allow_base_mismatch: opt.AllowBaseMismatch = False,
    input_profile: opt.InputProfileOpt = None,
) -> None:
    """Evaluate few-shot segmentation on a benchmark: class-wise mIoU and FB-IoU per fold.

    Example: sansa eval --dataset coco20i --data-root data/COCO2014 --shots 1,5
    --adapters 'adapters/coco_fold{fold}.safetensors' --out runs/coco

    Interrupted runs continue from OUT/episodes.jsonl. Shard over processes with
    [bold]torchrun --nproc_per_node N -m sansa_cli eval ...[/bold]
    """
    from rich.console import Console

    from sansa_cli.errors import UserInputError
    from sansa_cli.evaluation import EvalJob, run_eval

    if not adapters:
        raise UserInputError("say which model to score: --adapters FILE, a pattern with {fold}, "
                             "or --adapters none for frozen SAM2")
    run_eval(EvalJob(
        dataset=dataset, data_root=data_root, out=out, shots=shots, folds=folds, split=split,
        episodes=episodes, episodes_per_fold=episodes_per_fold, seed=seed, canvas=canvas,
        adapters=adapters, sam2=sam2, sam2_checkpoint=sam2_checkpoint, device=device.value,
        precision=precision.value, batch_size=batch_size, cache_mb=cache_mb, prompt=prompt.value,
        dataset_options=list(dataset_option or []), compare_frozen=compare_frozen,
        save_predictions=save_predictions, visualize=visualize,
        allow_base_mismatch=allow_base_mismatch, input_profile=list(input_profile or []),
    ), Console())
