"""What `sansa predict` writes besides masks: overlay pictures, a JSON summary, the output plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sansa_cli.artifacts.files import finite_json, plan_outputs, write_bytes_atomic
from sansa_cli.visualize.pictures import png_bytes, sheet


def write_overlay(path: Path, image: Image.Image, mask: np.ndarray, caption: str = "",
                  memory=None) -> None:
    """``<stem>_overlay.png``: the target's mask beside the marked references."""
    write_bytes_atomic(path, png_bytes(sheet(image, mask, caption, memory)))


def write_json(path: Path, payload) -> None:
    """``payload`` as standard JSON (NaN and infinities as null)."""
    write_bytes_atomic(path, (finite_json(payload) + "\n").encode())


def output_paths(out_dir: Path, targets: list[Path], inputs: list[Path],
                 overlays: bool) -> dict[Path, tuple[Path, Path | None]]:
    """target -> (mask path, overlay path or None); refuses name clashes and overwriting any
    input (see :func:`~sansa_cli.artifacts.files.plan_outputs`)."""
    suffixes = ("", "_overlay") if overlays else ("",)
    plan = plan_outputs(out_dir, targets, suffixes, inputs)
    return {target: (paths[0], paths[1] if overlays else None) for target, paths in plan.items()}
