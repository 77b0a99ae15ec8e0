"""Mask files sansa writes: single-channel PNGs, 255 on the object and 0 elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from sansa_cli.artifacts.files import write_bytes_atomic

#: zlib level 1: a 3-megapixel mask encodes in ~33 ms instead of ~49 ms at the default level 6,
#: and is ~22 KB instead of ~9 KB (measured); the pixels are the same
COMPRESS_LEVEL = 1


def write_mask(path: Path, mask: np.ndarray) -> None:
    """``mask`` (bool, HxW) as a 0/255 PNG at its own size, written atomically."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(
        buffer, format="PNG", compress_level=COMPRESS_LEVEL)
    write_bytes_atomic(path, buffer.getvalue())
