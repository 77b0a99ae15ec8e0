"""Overlay pictures of ``sansa predict --overlay`` and the thumbnails of the review page.

One picture per target, its longest side at most :data:`MAX_SIDE` px::

    +------------------------------------------+
    | title bar: the target's file name        |
    +------------------------------+-----------+
    | [target]                     | class A   |   references to the right of a portrait
    |   the target, each class's   | [ref 1]   |   target, in a strip below a landscape
    |   mask tinted and outlined   | class B   |   or square one, grouped per class
    |   in the class's colour      | [ref 1]   |
    +------------------------------+-----------+
    | legend: swatch, class, caption (scores), area %   |
    +------------------------------------------+

Colours, tints and outlines come from :mod:`sansa_cli.visualize.pictures`. Everything is drawn
at the output size (the target is scaled down first), so drawing and encoding a 3-megapixel
target takes a few tens of milliseconds. Inputs are plain data (PIL images, bool arrays,
strings); nothing here knows the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from sansa_cli.visualize import pictures as pic

#: the longest side of an overlay picture: a 1280 px picture is as sharp as a laptop screen
#: shows it, and a photo-like one is a few hundred KB as JPEG
MAX_SIDE = 1280
MIN_PANEL = 480  # smaller targets are enlarged to this longest side, so labels stay readable
MIN_WIDTH = 480
THUMBNAIL_SIDE = 320
REFERENCE_SIDE = 320  # references are drawn once at this size, then scaled into each picture


@dataclass(frozen=True)
class OverlayLayer:
    """One class in a target: ``mask`` (bool HxW at the target's size), its ``label`` (class
    name), ``colour_index`` (the class's index: same index, same colour) and ``caption`` (its
    scores, e.g. ``"predicted IoU 0.83"``); the legend adds the mask's area in %."""

    mask: np.ndarray
    label: str
    colour_index: int
    caption: str = ""


@dataclass(frozen=True)
class ReferenceGroup:
    """A class's references as the model saw them: ``references`` are (PIL image, bool mask or
    None, prompt or None) with the mask at the image's size (for a prompt, the mask SAM2 drew
    from it, as ``ReferenceMemory.masks`` keeps it)."""

    label: str
    colour_index: int
    references: Sequence[tuple]


@dataclass(frozen=True)
class PreparedReferences:
    """References drawn once (:func:`prepare_references`), reused by every overlay."""

    groups: tuple  # of (label, colour_index, tuple of drawn PIL images, total reference count)


@dataclass(frozen=True)
class OverlayPicture:
    """A drawn overlay: the whole ``picture`` and the bare ``target`` panel (masks drawn, no
    bars or labels; at ``origin`` in the picture), from which the review thumbnail is cut
    without drawing again."""

    picture: Image.Image
    target: Image.Image
    origin: tuple[int, int]

    def jpeg(self, quality: int = 85) -> bytes:
        return pic.jpeg_bytes(self.picture, quality)

    def thumbnail_jpeg(self, side: int = THUMBNAIL_SIDE, quality: int = 80) -> bytes:
        """The target panel, its longest side at most ``side``, as JPEG."""
        return pic.jpeg_bytes(_scaled(self.target, side), quality)


def prepare_references(groups: Sequence[ReferenceGroup],
                       max_per_class: int = 4) -> PreparedReferences:
    """Draw each class's first ``max_per_class`` references once (mask tinted and outlined in
    the class's colour, prompt on top), for every overlay of a run."""
    drawn = []
    for group in groups:
        shown = tuple(pic.marked_reference(image, mask, prompt, group.colour_index,
                                           side=REFERENCE_SIDE)
                      for image, mask, prompt in list(group.references)[:max_per_class])
        drawn.append((group.label, group.colour_index, shown, len(group.references)))
    return PreparedReferences(tuple(drawn))


def render_thumbnail(image: Image.Image, layers: Sequence[OverlayLayer],
                     side: int = THUMBNAIL_SIDE) -> Image.Image:
    """The target with its masks, drawn directly at longest side ``side`` (never enlarged):
    the review thumbnail when no overlay picture is made."""
    small = _scaled(image.convert("RGB"), side)
    pixels = np.array(small)
    pic.paint_masks(pixels, [pic.mask_at(layer.mask, small.size) for layer in layers],
                    [layer.colour_index for layer in layers])
    return Image.fromarray(pixels)


def render_overlay(image: Image.Image, layers: Sequence[OverlayLayer], title: str,
                   references: PreparedReferences | Sequence[ReferenceGroup] | None = None
                   ) -> OverlayPicture:
    """The overlay picture of one target (see the module docstring). ``references`` are best
    prepared once per run (:func:`prepare_references`); groups given here are drawn now."""
    if references is not None and not isinstance(references, PreparedReferences):
        references = prepare_references(references)
    groups = [g for g in references.groups if g[2]] if references is not None else []
    entries = [_legend_text(layer) for layer in layers] or ["no class to show"]
    layout = _Layout.plan(image.size, entries, groups)
    pixels = np.array(pic.resized(image.convert("RGB"), layout.panel))
    pic.paint_masks(pixels, [pic.mask_at(layer.mask, layout.panel) for layer in layers],
                    [layer.colour_index for layer in layers])
    target = Image.fromarray(pixels)
    canvas = Image.new("RGB", layout.canvas, pic.BAR)
    canvas.paste(target, (0, layout.bar))
    draw = ImageDraw.Draw(canvas)
    face = pic.font(layout.font_size)
    gap = layout.gap
    title_text = pic.fit_text(draw, title, face, layout.canvas[0] - 2 * gap)
    draw.text((gap, layout.bar // 2), title_text, font=face, fill=(240, 240, 240), anchor="lm")
    pic.tag(draw, (gap, layout.bar + gap), "target", face, fill=(0, 0, 0))
    _draw_legend(draw, layout, layers, entries, face)
    if groups:
        _draw_references(canvas, draw, layout, groups)
    return OverlayPicture(canvas, target, (0, layout.bar))


def _scaled(image: Image.Image, side: int) -> Image.Image:
    """``image`` with its longest side at most ``side`` (never enlarged)."""
    scale = min(1.0, side / max(image.size))
    return pic.resized(image, (max(1, round(image.width * scale)),
                            max(1, round(image.height * scale))))


def _legend_text(layer: OverlayLayer) -> str:
    area = 100.0 * np.count_nonzero(layer.mask) / max(layer.mask.size, 1)
    return "   ".join(part for part in (layer.label, layer.caption, f"area {area:.1f}%") if part)


@dataclass
class _Layout:
    panel: tuple[int, int]  # the target panel's (width, height), at (0, bar)
    canvas: tuple[int, int]
    bar: int  # title bar height
    font_size: int
    gap: int
    legend: tuple[int, float]  # legend columns, column width
    legend_y: int
    row: int  # legend row height
    refs: tuple[int, int, int, int] | None  # x, y, width, height of the references' area
    right: bool  # references to the right (else below)

    @classmethod
    def plan(cls, size: tuple[int, int], entries: list[str], groups: list) -> _Layout:
        width, height = size
        longest = max(width, height)
        side = min(MAX_SIDE, max(longest, MIN_PANEL))
        font_size = int(min(26, max(14, round(side / 48))))
        bar, gap, row = round(font_size * 1.7), max(4, font_size // 3), round(font_size * 1.6)
        right = bool(groups) and height > width
        column = round(0.3 * side) if right else 0
        strip = round(0.22 * side) if groups and not right else 0
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        face = pic.font(font_size)
        widths = [font_size + probe.textlength(e, font=face) + 3 * gap for e in entries]

        def measure(scale: float):
            panel = (max(1, round(width * scale)), max(1, round(height * scale)))
            canvas_width = max(panel[0] + column, MIN_WIDTH)
            legend = _grid(widths, canvas_width - gap, row)
            return panel, canvas_width, legend, ceil(len(widths) / legend[0]) * row + gap

        scale = side / longest
        for _ in range(5):  # the legend's height depends on the width, which depends on it
            panel, canvas_width, legend, legend_height = measure(scale)
            fit = min(side / longest, (MAX_SIDE - bar - legend_height - strip) / height,
                      (MAX_SIDE - column) / width)
            if fit >= scale - 1e-9:
                break
            scale = fit
        else:
            panel, canvas_width, legend, legend_height = measure(scale)
        body = panel[1] + strip
        refs = None
        if right:
            refs = (panel[0], bar, canvas_width - panel[0], panel[1])
        elif groups:
            refs = (0, bar + panel[1], canvas_width, strip)
        return cls(panel, (canvas_width, bar + body + legend_height), bar, font_size, gap, legend,
                   bar + body, row, refs, right)


def _grid(widths: list[float], width: float, row: int) -> tuple[int, float]:
    """(columns, column width) of the legend: as many columns as the widest entry allows,
    more (entries shortened) when the rows would take over a quarter of :data:`MAX_SIDE`."""
    column = min(max(widths), width)
    columns = max(1, int(width // column))
    most_rows = max(1, int(MAX_SIDE / 4 // row))
    if ceil(len(widths) / columns) > most_rows:
        columns = ceil(len(widths) / most_rows)
    columns = min(columns, len(widths))
    return columns, width / columns if columns > 1 else column


def _draw_legend(draw, layout: _Layout, layers, entries: list[str], face) -> None:
    gap, size = layout.gap, layout.font_size
    columns, width = layout.legend
    for i, entry in enumerate(entries):
        x = gap + (i % columns) * width
        y = layout.legend_y + gap // 2 + (i // columns) * layout.row + (layout.row - size) // 2
        if layers:
            index = layers[i].colour_index
            draw.rectangle((x, y, x + size, y + size), fill=pic.class_colour(index),
                           outline=pic.line_colour(index), width=max(2, size // 8))
            draw.rectangle((x - 1, y - 1, x + size + 1, y + size + 1), outline=pic.HALO)
        text = pic.fit_text(draw, entry, face, width - size - 3 * gap)
        draw.text((x + size + gap, y + size // 2), text, font=face, fill=(235, 235, 235),
                  anchor="lm")


def _draw_references(canvas: Image.Image, draw, layout: _Layout, groups: list) -> None:
    """Each class's header (its name in its colour) above its drawn references, each with its
    "reference k" tag; stacked in a column, or side by side in a strip."""
    x0, y0, width, height = layout.refs
    gap = layout.gap
    header = pic.font(max(11, round(layout.font_size * 0.8)))
    small = pic.font(max(10, round(layout.font_size * 0.65)))
    head = round(layout.font_size * 0.8 * 1.5) + gap
    counts = [len(g[2]) for g in groups]
    cells, per_row = _cell_size(counts, width, height, head, gap, layout.right)
    x, y = x0 + gap, y0 + gap
    for (label, index, drawn, total), count in zip(groups, counts):
        columns = per_row if layout.right else ceil(count / per_row)
        span = width - 2 * gap if layout.right else columns * (cells + gap) - gap
        name = label if total == count else f"{label} ({count} of {total})"
        pic.tag(draw, (x, y), pic.fit_text(draw, name, header, span - 8), header,
                fill=pic.class_colour(index))
        for k, thumb in enumerate(drawn):
            cx = x + (k % columns) * (cells + gap)
            cy = y + head + (k // columns) * (cells + gap)
            fitted = thumb.copy()
            fitted.thumbnail((cells, cells), Image.BILINEAR)
            corner = (cx + (cells - fitted.width) // 2, cy)
            canvas.paste(fitted, corner)
            text = f"reference {k + 1}"
            if draw.textlength(text, font=small) + 8 > fitted.width:
                text = str(k + 1)
            pic.tag(draw, corner, text, small, fill=pic.class_colour(index))
        if layout.right:
            y += head + ceil(count / columns) * (cells + gap) + gap
        else:
            x += span + 2 * gap


def _cell_size(counts: list[int], width: int, height: int, head: int, gap: int,
               stacked: bool) -> tuple[int, int]:
    """(cell side, references per row when stacked / rows when side by side) that makes the
    largest cells fitting ``width`` x ``height``."""
    best = (1, 1)
    for n in (1, 2, 3):
        if stacked:  # groups one below the other, n references per row
            rows = sum(ceil(c / n) for c in counts)
            side = min((width - (n + 1) * gap) / n,
                       (height - len(counts) * (head + 2 * gap) - rows * gap) / rows)
        else:  # groups side by side, each in n rows
            columns = sum(ceil(c / n) for c in counts)
            side = min((height - head - (n + 1) * gap) / n,
                       (width - (columns + len(counts) + 1) * gap) / columns)
        best = max(best, (int(side), n))
    return best
