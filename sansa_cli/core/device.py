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
        raise UserInputError(f"unknown precision {precision!r}; use auto, {', '.join(PRECISIONS)}")
    return precision


#: measured on an AMD EPYC with AVX2 and no AVX-512 (the Hiera-T encoder, one 1024 px image)
EMULATED_BF16_COST = "33.7 s in bf16 against 4.8 s in fp32 (7x slower)"


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively (x86 AVX512-BF16 or AMX; Arm's BF16
    extension), read from Linux's ``/proc/cpuinfo``; False where that cannot be read."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read(1 << 20)
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def resolve_precision(precision: str, device, warn=None) -> str:
    """``auto`` -> what pays off on ``device``: bf16 on CUDA GPUs that support it (else fp16),
    fp16 on Apple MPS, on CPUs bf16 only with native support, else fp32. An explicit bf16 or
    fp16 on a CPU without native bf16 is kept, with a warning through ``warn`` naming its
    measured cost."""
    import torch

    if precision != "auto":
        check_precision(precision)
        if (precision != "fp32" and device.type == "cpu" and warn is not None
                and not cpu_has_native_bf16()):
            warn(f"--precision {precision} on a CPU without native bf16 (no AVX512-BF16 or "
                 f"AMX) is emulated and slow: the Hiera-T encoder took {EMULATED_BF16_COST} "
                 "on such a CPU; use --precision auto (or fp32)")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device, precision: str = "fp32"):
    """An autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    import torch

    dtype = _AUTOCAST_DTYPES[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))
