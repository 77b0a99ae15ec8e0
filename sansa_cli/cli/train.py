"""``sansa train``: train adapters with the paper's pseudo-reference self-training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.cli import options as opt

_FLAG = dict(show_default=False)


def train(
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Run directory (config, log, checkpoints, adapter.safetensors).",
        **_FLAG)] = None,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue the run in this directory exactly where it stopped.",
        **_FLAG)] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML file of settings (the paper's recipes: configs/*.yaml); flags "
        "given on the command line win.",
        **_FLAG)] = None,
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", help="Dataset plugin, e.g. coco20i (see `sansa info`), or mix with --mix.",
        **_FLAG)] = None,
    mix: Annotated[Optional[str], typer.Option(
        "--mix", help="Train on several datasets, NAME:WEIGHT,... e.g. coco20i:0.45,lvis92i:0.4; "
        "each episode picks its dataset by weight (weights are normalised: they need not sum "
        "to 1).", **_FLAG)] = None,
    data_root: Annotated[Optional[list[str]], typer.Option(
        "--data-root", help="Dataset folder; with --mix one per dataset, NAME=DIR,... (or the "
        "flag repeated).", **_FLAG)] = None,
    fold: Annotated[Optional[str], typer.Option(
        "--fold", help="Fold whose other classes train (default 0), or all: every class of "
        "every dataset, none held out.", **_FLAG)] = None,
    dataset_option: Annotated[Optional[list[str]], typer.Option(
        "--dataset-option", help="Dataset option KEY=VALUE (repeatable); with --mix "
        "NAME.KEY=VALUE, e.g. lvis92i.membership=fixed.", **_FLAG)] = None,
    adapter: opt.AdapterName = None,
    bottleneck: opt.Bottleneck = None,
    stages: opt.Stages = None,
    rank: opt.Rank = None,
    alpha: opt.Alpha = None,
    adapter_option: opt.AdapterOptions = None,
    sam2: Annotated[Optional[str], typer.Option("--sam2", help="Base SAM2 (default "
                                                "sam2_hiera_large, the paper's).", **_FLAG)] = None,
    sam2_checkpoint: opt.Sam2Checkpoint = None,
    seq_len: Annotated[Optional[int], typer.Option(
        "--seq-len", help="Targets per episode J (default 3; 1 = the release's recipe).",
        **_FLAG)] = None,
    loss: Annotated[Optional[str], typer.Option("--loss", help="bce-dice (paper, default) or "
                                                "focal-dice (release).", **_FLAG)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate (default 1e-4).",
                                                **_FLAG)] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", **_FLAG)] = None,
    warmup_steps: Annotated[Optional[int], typer.Option("--warmup-steps", **_FLAG)] = None,
    grad_clip: Annotated[Optional[float], typer.Option("--grad-clip", help="Gradient-norm clip "
                                                       "(default 0.1; 0 = off).", **_FLAG)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Default 5.", **_FLAG)] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="A step budget instead of "
                                                 "epochs.", **_FLAG)] = None,
    episodes_per_epoch: Annotated[Optional[int], typer.Option(
        "--episodes-per-epoch", help="Default: one per training image (of every dataset of "
        "a mix).", **_FLAG)] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", help="Global batch of episodes, split across processes (default 8).",
        **_FLAG)] = None,
    augment: Annotated[Optional[bool], typer.Option(
        "--augment/--no-augment", help="Random horizontal flips (off by default).",
        **_FLAG)] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", **_FLAG)] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto|cpu|cuda|mps.",
                                                  **_FLAG)] = None,
    precision: Annotated[Optional[str], typer.Option(
        "--precision", help="auto (bf16 on GPUs, fp16 where bf16 is not native; on CPUs bf16 "
        "only with native bf16, else fp32)|fp32|bf16|fp16.", **_FLAG)] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Data-loading processes.",
                                                   **_FLAG)] = None,
    log_every: Annotated[Optional[int], typer.Option(
        "--log-every", help="Without a terminal (output piped or in a file): a progress line "
        "every N steps (default 10; log.jsonl has every step).", **_FLAG)] = None,
    progress_seconds: Annotated[Optional[float], typer.Option(
        "--progress-seconds", help="Without a terminal: a progress line at least every S "
        "seconds, and after the first step (default 30; 0 = every step).", **_FLAG)] = None,
    save_every: Annotated[Optional[int], typer.Option(
        "--save-every", help="Steps between checkpoints (default: each epoch).",
        **_FLAG)] = None,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", help="How references are marked: mask (default), point, box, scribble, or "
        "mixed (a random one per reference, as the authors' universal model).", **_FLAG)] = None,
    val_episodes: Annotated[Optional[int], typer.Option(
        "--val-episodes", help="Validate on this many episodes of the fold every epoch "
        "(0 = off); the best checkpoint is chosen by it.", **_FLAG)] = None,
    val_shot: Annotated[Optional[int], typer.Option("--val-shot", help="Shots of the validation "
                                                    "episodes (default 1).", **_FLAG)] = None,
    object_score_head: Annotated[Optional[bool], typer.Option(
        "--object-score-head/--no-object-score-head", help="Keep SAM2's object-presence head "
        "(off by default, as in the paper's models).", **_FLAG)] = None,
) -> None:
    """Train adapters on a frozen SAM2 with the paper's pseudo-reference self-training.

    Example: sansa train --adapter adaptformer --bottleneck 0.3 --dataset coco20i --fold 0
    --data-root data/coco --out runs/coco_f0 ; several processes: torchrun --nproc_per_node 4
    -m sansa_cli train ...
    """
    given = {k: v for k, v in locals().items() if v is not None and k not in ("out", "resume")}
    from sansa_cli.errors import UserInputError
    from sansa_cli.train.job import RESUME_FLAGS, run_train

    if (out is None) == (resume is None):
        raise UserInputError("give --out RUN_DIR for a new run or --resume RUN_DIR to continue one")
    fixed = sorted(set(given) - set(RESUME_FLAGS))
    if resume is not None and fixed:
        raise UserInputError(f"--resume continues a run with its saved config.yaml; drop "
                             f"{', '.join('--' + k.replace('_', '-') for k in fixed)}")
    adapter_options = opt.adapter_options(bottleneck, stages, rank, alpha, adapter_option)
    run_train(out=out, resume=resume, config_file=config, flags=given,
              adapter_options=adapter_options)
