"""Pictures people look at: class colours, masks tinted and outlined, references as the model saw
them, evaluation sheets.

Every mask is tinted in its class's colour and outlined with a two-tone line (a dark halo around
a bright line in the class's colour), so its edge stays visible on any background: a red object
under the red class colour, a green object on green grass, a black or a white one.

Shared by ``sansa predict --overlay`` (:mod:`sansa_cli.visualize.overlays`), ``sansa eval
--visualize`` and the feature pictures.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: class k's colour is ``PALETTE[k]`` (then generated hues past 20). Chosen greedily from a grid
#: of saturated hues (relative luminance 0.12-0.75, so neither near-black nor near-white):
#: each colour is the candidate farthest (CIELAB distance) from those before it, so every prefix
#: is well spread; the 20 are at least 31 units apart (the first 8 at least 58).
PALETTE = ((255, 0, 0), (140, 0, 255), (0, 255, 0), (255, 204, 0), (255, 64, 169),
           (0, 140, 255), (0, 191, 124), (191, 110, 96), (0, 163, 191), (134, 191, 0),
           (191, 177, 96), (210, 128, 255), (255, 0, 242), (230, 115, 0), (0, 89, 255),
           (255, 0, 89), (0, 255, 128), (115, 230, 212), (191, 96, 148), (128, 185, 255))
HALO = (12, 12, 12)  # the dark part of every outline
BAR = (24, 24, 24)  # title, caption and legend bars
TINT_ALPHA = 0.45  # how strongly a mask's colour covers the image inside it


def class_colour(index: int) -> tuple[int, int, int]:
    """The colour of class ``index`` (0-based): the same index always gets the same colour."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.618034) % 1.0  # golden-ratio steps keep later hues apart
    value = 1.0 if index % 2 else 0.8
    return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, value))


def luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour, 0 (black) to 1 (white)."""
    channels = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(channels > 0.04045, ((channels + 0.055) / 1.055) ** 2.4, channels / 12.92)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def text_colour(background) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``background`` (WCAG contrast ratio)."""
    lum = luminance(background)
    return (0, 0, 0) if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else (255, 255, 255)


def line_colour(index: int) -> tuple[int, int, int]:
    """The bright line of class ``index``'s outline: its colour, lightened towards white until
    its luminance is at least 0.3, so it stands out from the dark halo and dark backgrounds."""
    colour = np.asarray(class_colour(index), np.float64)
    for step in range(11):
        mixed = colour + (255 - colour) * step / 10
        if luminance(mixed) >= 0.3:
            break
    return tuple(int(round(c)) for c in mixed)


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (its fixed bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def png_bytes(img: Image.Image) -> bytes:
    """``img`` encoded as PNG."""
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(img: Image.Image, quality: int = 85) -> bytes:
    """``img`` encoded as a baseline JPEG (4:2:0)."""
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (a square), by shifted ORs along each axis."""
    out = mask.copy()
    for axis in (0, 1):
        src = out.copy()
        n = src.shape[axis]
        for k in range(1, min(radius, n - 1) + 1):
            lead = [slice(None)] * 2
            tail = [slice(None)] * 2
            lead[axis], tail[axis] = slice(k, None), slice(None, n - k)
            out[tuple(lead)] |= src[tuple(tail)]
            out[tuple(tail)] |= src[tuple(lead)]
    return out


def outline_widths(side: int) -> tuple[int, int]:
    """(line half-width, halo width) in pixels for a picture whose longest side is ``side``:
    a 5 px line in a 9 px band at 1280 px, a 3 px line in a 5 px band at 320 px."""
    return max(1, round(side / 640)), max(1, round(side / 640))


def paint_masks(pixels: np.ndarray, masks, indices, widths: tuple[int, int] | None = None,
                alpha: float = TINT_ALPHA) -> None:
    """Tint each bool mask (the size of ``pixels``, HxWx3 uint8, changed in place) in its
    class colour, then outline them all: every halo first, then every line, so where two
    classes touch both edges stay visible. Each mask is worked on within its bounding box."""
    if widths is None:
        widths = outline_widths(max(pixels.shape[:2]))
    weight = int(round(alpha * 256))
    bands = []
    for mask, index in zip(masks, indices):
        box = _box(mask, sum(widths) + 2)
        if box is None:
            continue
        inside, view = mask[box], pixels[box]
        colour = np.asarray(class_colour(index), np.uint16)
        tinted = ((view.astype(np.uint16) * (256 - weight) + colour * weight) >> 8)
        np.copyto(view, tinted.astype(np.uint8), where=inside[..., None])
        edge = dilate(inside, 1) & ~inside  # the ring just outside the mask
        line = dilate(edge, widths[0])
        bands.append((box, line, dilate(line, widths[1]), index))
    for box, _, halo, _ in bands:
        pixels[box][halo] = HALO
    for box, line, _, index in bands:
        pixels[box][line] = line_colour(index)


def _box(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    """The slices of ``mask``'s bounding box grown by ``pad`` (None for an empty mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (slice(max(0, rows[0] - pad), rows[-1] + pad + 1),
            slice(max(0, cols[0] - pad), cols[-1] + pad + 1))


def tag(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, face,
        fill=(0, 0, 0)) -> tuple[int, int, int, int]:
    """``text`` on a filled box whose top-left corner is ``xy``, in black or white for contrast;
    returns the box (as tall for any text in ``face``)."""
    left, _, right, _ = draw.textbbox((0, 0), text, font=face)
    _, top, _, bottom = draw.textbbox((0, 0), "Hg", font=face)
    pad = max(2, (bottom - top) // 4)
    box = (xy[0], xy[1], xy[0] + right - left + 2 * pad, xy[1] + bottom - top + 2 * pad)
    draw.rectangle(box, fill=fill, outline=HALO)
    draw.text((xy[0] + pad - left, xy[1] + pad - top), text, font=face, fill=text_colour(fill))
    return box


def fit_text(draw: ImageDraw.ImageDraw, text: str, face, width: float) -> str:
    """``text``, or its middle replaced by an ellipsis, within ``width`` px."""
    if draw.textlength(text, font=face) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest kept length that fits
        mid = (low + high + 1) // 2
        short = text[: (mid + 1) // 2] + "…" + text[len(text) - mid // 2:]
        low, high = (mid, high) if draw.textlength(short, font=face) <= width else (low, mid - 1)
    return text[: (low + 1) // 2] + "…" + text[len(text) - low // 2:] if low else "…"


def resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` at ``size``: area-averaged when shrinking (whole-factor reduction first, so a
    12-megapixel photo takes half the time; a third faster than bilinear at 3 megapixels),
    bilinear when enlarging."""
    if image.size == size:
        return image
    if size[0] < image.width and size[1] < image.height:
        return image.resize(size, Image.BOX, reducing_gap=1.5)
    return image.resize(size, Image.BILINEAR)


def mask_at(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask resampled (nearest) to ``size`` = (width, height)."""
    if mask.shape[::-1] == tuple(size):
        return mask.astype(bool, copy=False)
    small = Image.fromarray(np.asarray(mask, bool).view(np.uint8)).resize(size, Image.NEAREST)
    return np.asarray(small).astype(bool)


def overlay(image: Image.Image, mask: np.ndarray, caption: str = "",
            colour_index: int = 0) -> Image.Image:
    """The image with the mask tinted and outlined, and an optional caption bar below."""
    pixels = np.array(image.convert("RGB"))
    paint_masks(pixels, [mask_at(mask, image.size)], [colour_index])
    picture = Image.fromarray(pixels)
    if caption:
        bar = 18
        framed = Image.new("RGB", (picture.width, picture.height + bar), BAR)
        framed.paste(picture, (0, 0))
        ImageDraw.Draw(framed).text((4, picture.height + 3), caption, fill=(235, 235, 235))
        picture = framed
    return picture


def marked_reference(image: Image.Image, mask: np.ndarray | None, prompt=None,
                     colour_index: int = 0, side: int | None = None) -> Image.Image:
    """A reference as the model saw it: its object mask tinted and outlined in class
    ``colour_index``'s colour, its prompt drawn on top (clicks as dots, green on the object and
    red on the background; a yellow box; yellow scribble strokes). With ``side``, it is drawn
    at that longest side (never enlarged), the prompt scaled with it."""
    scale = 1.0 if side is None else min(1.0, side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    picture = resized(image.convert("RGB"), size)
    if mask is not None:
        pixels = np.array(picture)
        paint_masks(pixels, [mask_at(mask, size)], [colour_index])
        picture = Image.fromarray(pixels)
    _draw_prompt(picture, prompt, scale)
    return picture


def _draw_prompt(picture: Image.Image, prompt, scale: float) -> None:
    from sansa_cli.core.prompts import Box, Points, Scribble

    draw = ImageDraw.Draw(picture)
    r = max(3, min(picture.size) // 60)
    if isinstance(prompt, Box):
        corners = [round(v * scale) for v in (prompt.x0, prompt.y0, prompt.x1, prompt.y1)]
        draw.rectangle(corners, outline=HALO, width=max(2, r // 2) + 2)
        draw.rectangle(corners, outline=(255, 230, 0), width=max(2, r // 2))
    elif isinstance(prompt, Points):
        for colour, points in (((0, 255, 0), prompt.positive), ((255, 40, 40), prompt.negative)):
            for x, y in points:
                x, y = x * scale, y * scale
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=HALO, width=2)
    elif isinstance(prompt, Scribble):
        from sansa_cli.core.images import load_mask

        strokes = load_mask(prompt.strokes, "scribble")
        strokes = mask_at(dilate(strokes, max(1, round(1 / scale))), picture.size)
        pixels = np.array(picture)
        pixels[dilate(strokes, 1)] = HALO
        pixels[strokes] = (255, 230, 0)
        picture.paste(Image.fromarray(pixels))


def episode_sheet(references: list[tuple[Image.Image, np.ndarray, object]], query: Image.Image,
                  prediction: np.ndarray, truth: np.ndarray, title: str,
                  height: int = 256) -> Image.Image:
    """An evaluation episode: each reference (image, mask, prompt or None) as the model saw it,
    then the query with the prediction and with the ground truth (both at the evaluation
    canvas, the shape of ``prediction``), ``title`` above."""
    def fit(img):
        return img.resize((max(1, round(img.width * height / img.height)), height))

    def tinted(img, mask):  # scale first, so the outline is as wide at any image size
        size = fit(img).size
        return overlay(img.resize(size), mask_at(mask, size))

    panels = [(fit(marked_reference(image, mask, prompt,
                                    side=round(height * max(image.size) / image.height))),
               f"reference {j + 1}") for j, (image, mask, prompt) in enumerate(references)]
    canvas_query = query.resize(prediction.shape[::-1])
    panels.append((tinted(canvas_query, prediction), "prediction"))
    panels.append((tinted(canvas_query, truth == 1), "ground truth"))
    width = sum(p.width for p, _ in panels) + 6 * (len(panels) - 1)
    picture = Image.new("RGB", (width, height + 44), BAR)
    draw = ImageDraw.Draw(picture)
    x = 0
    for panel, label in panels:
        picture.paste(panel, (x, 22))
        draw.text((x + 4, height + 26), label, fill=(200, 200, 200))
        x += panel.width + 6
    draw.text((4, 4), title, fill=(235, 235, 235))
    return picture
