"""Weights from files: one safe ``torch.load`` and the check that every weight is a number.

Every ``torch.save`` file sansa reads (SAM2 checkpoints, training checkpoints, the authors'
``.pth`` releases) goes through :func:`load_torch_file`: ``torch.load(weights_only=True)`` onto
the CPU, so unpickling builds only tensors, containers and scalars, plus the globals a caller
names (the release files need ``argparse.Namespace``); anything else is refused before it runs.
:func:`check_finite` refuses NaN or infinite weights, whatever file they come from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sansa_cli.errors import SansaError


def unpickle_reason(exc: Exception) -> str:
    """A short reason for a failed ``torch.load(weights_only=True)`` (torch's text is long)."""
    text = str(exc)
    match = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if match:
        return f"it holds {match[1]}, which safe loading does not allow"
    if "Weights only load failed" in text:
        return "it holds objects safe loading does not allow"
    first = (text.strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


def load_torch_file(path: str | Path, what: str, error: type[SansaError],
                    fix: str | Callable[[str], str], allowed: Iterable[Any] = ()) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, with ``allowed`` globals.

    ``what`` names the file in the error (``"SAM2 checkpoint"``); ``fix`` says what to do (or
    gives it from the reason). A file that cannot be unpickled safely (corrupt, truncated, or
    naming a global outside torch's safe set and ``allowed``) is an ``error`` with
    :func:`unpickle_reason`; nothing in such a file is run.
    """
    import torch

    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = unpickle_reason(exc)
        advice = fix(reason) if callable(fix) else fix
        raise error(f"{what} {path} cannot be read safely ({reason}); {advice}") from exc


def first_non_finite(tensors: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, else None.

    Values that are not tensors, integer tensors and shape-only (meta) tensors are skipped.
    """
    import torch

    for name, value in tensors.items():
        if (isinstance(value, torch.Tensor) and value.device.type != "meta"
                and (value.is_floating_point() or value.is_complex())
                and not bool(torch.isfinite(value).all())):
            return str(name)
    return None


def check_finite(tensors: Mapping[str, Any], path: str | Path, what: str,
                 error: type[SansaError], fix: str) -> None:
    """Refuse ``tensors`` (read from ``path``) if one holds NaN or infinite values.

    The ``error`` names ``what`` and ``path``, the first bad tensor, and ``fix``.
    """
    bad = first_non_finite(tensors)
    if bad is not None:
        raise error(f"{what} {path} holds NaN or infinite values (first in tensor {bad}); {fix}")
