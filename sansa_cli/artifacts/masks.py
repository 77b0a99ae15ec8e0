"""Mask files sansa writes: single-channel PNGs, 255 on the object and 0 elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sansa_cli.artifacts.files import write_bytes_atomic
from sansa_cli.visualize.pictures import png_bytes


def write_mask(path: Path, mask: np.ndarray) -> None:
    """``mask`` (bool, HxW) as a 0/255 PNG at its own size, written atomically."""
    write_bytes_atomic(path, png_bytes(Image.fromarray(mask.astype(np.uint8) * 255, mode="L")))
