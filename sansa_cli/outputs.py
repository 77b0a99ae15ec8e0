"""Writing results: 0/255 mask PNGs, overlay pictures and a JSON summary, all atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from sansa_cli.errors import UserInputError
from sansa_cli.files import write_bytes_atomic

OVERLAY_COLOUR = (255, 64, 32)


def _png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def write_mask(path: Path, mask: np.ndarray) -> None:
    """A single-channel PNG, 255 on the object and 0 elsewhere, at the mask's size."""
    write_bytes_atomic(path, _png_bytes(Image.fromarray(mask.astype(np.uint8) * 255, mode="L")))


def overlay(image: Image.Image, mask: np.ndarray, caption: str = "") -> Image.Image:
    """The image with the mask tinted and outlined, and an optional caption bar below."""
    base = image.convert("RGB")
    tint = Image.new("RGB", base.size, OVERLAY_COLOUR)
    alpha = Image.fromarray((mask * 110).astype(np.uint8), mode="L")
    picture = Image.composite(tint, base, alpha)
    edge = Image.fromarray(mask.astype(np.uint8) * 255, mode="L").filter(ImageFilter.FIND_EDGES)
    picture.paste(OVERLAY_COLOUR, mask=edge)
    if caption:
        bar = 18
        framed = Image.new("RGB", (picture.width, picture.height + bar), (20, 20, 20))
        framed.paste(picture, (0, 0))
        ImageDraw.Draw(framed).text((4, picture.height + 3), caption, fill=(235, 235, 235))
        picture = framed
    return picture


def write_overlay(path: Path, image: Image.Image, mask: np.ndarray, caption: str = "") -> None:
    write_bytes_atomic(path, _png_bytes(overlay(image, mask, caption)))


def write_json(path: Path, payload) -> None:
    write_bytes_atomic(path, (json.dumps(payload, indent=2) + "\n").encode())


def output_paths(out_dir: Path, targets: list[Path], inputs: list[Path],
                 overlays: bool) -> dict[Path, tuple[Path, Path | None]]:
    """target -> (mask path, overlay path); refuses name clashes and overwriting any input."""
    protected = {p.resolve() for p in inputs}
    plan: dict[Path, tuple[Path, Path | None]] = {}
    seen: dict[str, Path] = {}
    for target in targets:
        if target.stem in seen:
            raise UserInputError(
                f"targets {seen[target.stem]} and {target} would both be written as "
                f"{target.stem}.png; rename one or run them separately"
            )
        seen[target.stem] = target
        mask_path = out_dir / f"{target.stem}.png"
        overlay_path = out_dir / f"{target.stem}_overlay.png" if overlays else None
        for path in (mask_path, overlay_path):
            if path is not None and path.resolve() in protected:
                raise UserInputError(
                    f"writing {path} would overwrite an input file; choose another --out folder"
                )
        plan[target] = (mask_path, overlay_path)
    return plan
