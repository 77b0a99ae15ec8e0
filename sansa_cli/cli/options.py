"""Options shared by several commands, defined once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


Sam2 = Annotated[
    Optional[str],
    typer.Option(
        "--sam2",
        help="SAM2 model: a stock name (sam2.1_hiera_tiny|small|base_plus|large, "
        "sam2_hiera_* for SAM 2.0) or a path to a SAM2 YAML. Default: the adapter file's base "
        "model, else sam2.1_hiera_large.",
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
Adapters = Annotated[
    str,
    typer.Option(
        "--adapters",
        help="Adapter file (.safetensors) to layer onto SAM2, or 'none' for frozen SAM2 "
        "(the paper's baseline).",
    ),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run.")]
PrecisionOpt = Annotated[
    Precision, typer.Option("--precision", help="Autocast precision (bf16 is ~2x faster on CPU).")
]
