"""Device and precision choices, device-agnostic (CUDA, Apple MPS, CPU)."""

from __future__ import annotations

import contextlib

from sansa_cli.core.choices import PRECISIONS
from sansa_cli.errors import UserInputError

_AUTOCAST_DTYPES = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


def resolve_device(name: str = "auto"):
    """``auto`` picks CUDA, then MPS, then CPU; asking for an absent device is an error."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name.startswith("cuda:") and cuda and name[5:].isdigit():
        return torch.device(name)  # a process's own GPU under torchrun
    if name.startswith("cuda") and not cuda:
        raise UserInputError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if name == "mps" and not mps:
        raise UserInputError(
            "--device mps was asked for but Apple MPS is not available; use --device cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise UserInputError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return torch.device(name)


def check_precision(precision: str) -> str:
    """``precision`` itself if it is one of :data:`~sansa_cli.core.choices.PRECISIONS`."""
    if precision not in PRECISIONS:
        raise UserInputError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    return precision


def autocast(device, precision: str = "fp32"):
    """An autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    import torch

    dtype = _AUTOCAST_DTYPES[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))
