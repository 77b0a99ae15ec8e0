"""Pictures people look at: masks tinted on images, references as the model saw them, sheets.

Shared by ``sansa predict --overlay``, ``sansa eval --visualize`` and the feature pictures.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OVERLAY_COLOUR = (255, 64, 32)
REFERENCE_COLOUR = (40, 200, 90)


def png_bytes(img: Image.Image) -> bytes:
    """``img`` encoded as PNG."""
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


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




def episode_sheet(references: list[tuple[Image.Image, np.ndarray, object]], query: Image.Image,
                  prediction: np.ndarray, truth: np.ndarray, title: str,
                  height: int = 256) -> Image.Image:
    """An evaluation episode: each reference (image, mask, prompt or None) as the model saw it,
    then the query with the prediction and with the ground truth (both at the evaluation
    canvas, the shape of ``prediction``), ``title`` above."""
    def fit(img):
        return img.resize((max(1, round(img.width * height / img.height)), height))

    def tinted(img, mask):  # scale first, so small images still get a thin outline
        size = fit(img).size
        scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)
        return overlay(img.resize(size), np.asarray(scaled) > 0)

    panels = [(fit(marked_reference(image, mask, prompt)), f"reference {j + 1}")
              for j, (image, mask, prompt) in enumerate(references)]
    canvas_query = query.resize(prediction.shape[::-1])
    panels.append((tinted(canvas_query, prediction), "prediction"))
    panels.append((tinted(canvas_query, truth == 1), "ground truth"))
    width = sum(p.width for p, _ in panels) + 6 * (len(panels) - 1)
    picture = Image.new("RGB", (width, height + 44), (20, 20, 20))
    draw = ImageDraw.Draw(picture)
    x = 0
    for panel, label in panels:
        picture.paste(panel, (x, 22))
        draw.text((x + 4, height + 26), label, fill=(200, 200, 200))
        x += panel.width + 6
    draw.text((4, 4), title, fill=(235, 235, 235))
    return picture
