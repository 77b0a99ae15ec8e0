"""Options shared by several commands, defined once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from sansa_cli.core import choices


def choice_enum(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A string enum typer shows as choices; commands pass ``.value`` on to the library."""
    return Enum(name, {value: value for value in values}, type=str)


Device = choice_enum("Device", choices.DEVICES)
Precision = choice_enum("Precision", choices.PRECISION_CHOICES)
PromptType = choice_enum("PromptType", choices.PROMPT_TYPES)
Storage = choice_enum("Storage", choices.STORAGE_DTYPES)


Sam2 = Annotated[
    Optional[str],
    typer.Option(
        "--sam2",
        help="SAM2 model: a stock name (sam2.1_hiera_tiny|small|base_plus|large, or just "
        "tiny|small|base_plus|large; sam2_hiera_* for SAM 2.0) or a path to a SAM2 YAML. "
        "Default: the adapter file's base model, else sam2.1_hiera_large.",
        show_default=False,
    ),
]
Sam2Checkpoint = Annotated[
    Optional[Path],
    typer.Option(
        "--sam2-checkpoint",
        help="SAM2 checkpoint file. Default: checkpoints/<name>.pt, downloaded when missing.",
        show_default=False,
    ),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run.")]
PrecisionOpt = Annotated[
    Precision,
    typer.Option("--precision", help="Autocast precision. auto: bf16 on GPUs (fp16 where bf16 "
                 "is not native, and on Apple MPS), fp32 on CPUs unless the CPU has native bf16 "
                 "(AVX512-BF16 or AMX). On other CPUs bf16 is emulated and several times slower "
                 "than fp32."),
]


AdapterName = Annotated[
    Optional[str],
    typer.Option("--adapter", help="Adapter strategy (see `sansa info`): adaptformer, lora, ...",
                 show_default=False),
]
Bottleneck = Annotated[
    Optional[float],
    typer.Option("--bottleneck", help="Bottleneck ratio (adaptformer, mona).", show_default=False),
]
Stages = Annotated[
    Optional[str],
    typer.Option("--stages", help="0-based Hiera stages to adapt, e.g. 2,3.", show_default=False),
]
Rank = Annotated[Optional[int], typer.Option("--rank", help="LoRA rank.", show_default=False)]
Alpha = Annotated[Optional[float], typer.Option("--alpha", help="LoRA alpha.", show_default=False)]
AdapterOptions = Annotated[
    Optional[list[str]],
    typer.Option("--adapter-option", help="Any other strategy option as KEY=VALUE (repeatable).",
                 show_default=False),
]


def adapter_options(bottleneck=None, stages=None, rank=None, alpha=None, extra=None) -> dict:
    """Collect the strategy options given on the command line (unset ones are left out)."""
    from sansa_cli.core.parsing import key_values
    from sansa_cli.errors import UserInputError

    options = {"bottleneck": bottleneck, "rank": rank, "alpha": alpha}
    if stages is not None:
        try:
            options["stages"] = tuple(int(s) for s in stages.split(",") if s.strip())
        except ValueError:
            raise UserInputError(
                f"--stages {stages!r} is not a list of integers; use e.g. 2,3") from None
    options.update(key_values(extra, "--adapter-option", "rank=8"))
    return {k: v for k, v in options.items() if v is not None}


AdaptersOrDefault = Annotated[
    Optional[str],
    typer.Option(
        "--adapters",
        help="Adapter file (.safetensors), or 'none' for frozen SAM2 (the paper's baseline). "
        "Default: the authors' universal model, fetched and converted on first use.",
        show_default=False,
    ),
]
BatchSize = Annotated[
    Optional[int],
    typer.Option("--batch-size", min=1, help="Images per image-encoder batch (default: 1 on the "
                 "CPU, 4 on GPUs).", show_default=False),
]
AllowBaseMismatch = Annotated[
    bool,
    typer.Option("--allow-base-mismatch",
                 help="Use adapters even if they were trained on another base checkpoint."),
]
InputProfileOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--input-profile",
        help="How images and reference masks are fed (default: the adapter file's profile): a "
        "preset (video-predictor, release, sansa-training) or KEY=VALUE, e.g. mask_rule=any, "
        "memory_dtype=fp32, resize=antialias-bilinear, pre_resize=true (repeatable).",
        show_default=False,
    ),
]
