"""Writing results: 0/255 mask PNGs, overlay pictures and a JSON summary, all atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from sansa_cli.errors import UserInputError
from sansa_cli.artifacts.files import write_bytes_atomic

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


REFERENCE_COLOUR = (40, 200, 90)


def marked_reference(image: Image.Image, mask: np.ndarray | None, prompt=None) -> Image.Image:
    """A reference as the model saw it: its object mask tinted green, its prompt drawn on top
    (clicks as dots, green on the object and red on the background; a box; scribble strokes)."""
    from sansa_cli.core.prompts import Box, Points, Scribble

    picture = image.convert("RGB")
    if mask is not None:
        tint = Image.new("RGB", picture.size, REFERENCE_COLOUR)
        picture = Image.composite(tint, picture, Image.fromarray((mask * 110).astype(np.uint8)))
    draw = ImageDraw.Draw(picture)
    r = max(3, min(picture.size) // 60)
    if isinstance(prompt, Box):
        draw.rectangle((prompt.x0, prompt.y0, prompt.x1, prompt.y1), outline=(255, 230, 0),
                       width=max(2, r // 2))
    elif isinstance(prompt, Points):
        for colour, points in (((0, 255, 0), prompt.positive), ((255, 40, 40), prompt.negative)):
            for x, y in points:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(0, 0, 0))
    elif isinstance(prompt, Scribble):
        from sansa_cli.core.images import load_mask

        strokes = Image.fromarray(load_mask(prompt.strokes, "scribble").astype(np.uint8) * 255)
        picture.paste((255, 230, 0), mask=strokes.filter(ImageFilter.MaxFilter(3)))
    return picture


def _fit(img: Image.Image, height: int) -> Image.Image:
    width = max(1, round(img.width * height / img.height))
    return img.resize((width, height))


def sheet(target: Image.Image, mask: np.ndarray, caption: str, memory=None,
          height: int = 384, max_references: int = 4) -> Image.Image:
    """The target with its mask (left) beside a column of the marked references (right)."""
    main = _fit(overlay(target, mask), height)
    refs = []
    if memory is not None:
        shown = list(zip(memory.references, memory.masks))[:max_references]
        slot = (height - 4 * (len(shown) - 1)) // max(len(shown), 1)
        refs = [_fit(marked_reference(ref.image, m, ref.prompt), slot) for ref, m in shown]
    column = max((r.width for r in refs), default=0)
    canvas = Image.new("RGB", (main.width + (column + 6 if refs else 0), height + 18),
                       (20, 20, 20))
    canvas.paste(main, (0, 0))
    y = 0
    for ref in refs:
        canvas.paste(ref, (main.width + 6, y))
        y += ref.height + 4
    label = caption + (f"   references: {len(memory.references)}" if memory is not None else "")
    ImageDraw.Draw(canvas).text((4, height + 3), label, fill=(235, 235, 235))
    return canvas


def write_overlay(path: Path, image: Image.Image, mask: np.ndarray, caption: str = "",
                  memory=None) -> None:
    """``<stem>_overlay.png``: the target's mask beside the marked references."""
    write_bytes_atomic(path, _png_bytes(sheet(image, mask, caption, memory)))


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
