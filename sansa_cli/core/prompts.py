"""Ways to mark the object in a reference: a mask, clicks, a box or a scribble.

A non-mask prompt is turned into the reference's mask by SAM2's own decoder on that frame
(single-mask output, no memory), then the reference is written to memory like a mask reference.
Coordinates are pixels of the reference image as the user sees it (after EXIF orientation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from sansa_cli.errors import UserInputError

MAX_SCRIBBLE_POINTS = 256  # stroke pixels sent to the decoder, evenly spread along the strokes


@dataclass(frozen=True)
class Points:
    """Clicks on the object (``positive``) and, optionally, on the background (``negative``)."""

    positive: tuple[tuple[float, float], ...]
    negative: tuple[tuple[float, float], ...] = field(default=())


@dataclass(frozen=True)
class Box:
    """A box around the object: top-left and bottom-right corners, in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Scribble:
    """Strokes drawn on the object: an image (path or array) whose non-zero pixels are strokes."""

    strokes: object


Prompt = Union[Points, Box, Scribble]


def is_prompt(value) -> bool:
    return isinstance(value, (Points, Box, Scribble))


def parse_points(text: str) -> tuple[tuple[float, float], ...]:
    """``"x,y;x,y"`` -> ((x, y), (x, y))."""
    try:
        points = tuple((float(x), float(y)) for x, y in
                       (item.split(",") for item in text.split(";") if item.strip()))
    except ValueError:
        raise UserInputError(f"points {text!r} are not 'x,y;x,y'; for example "
                             "--points 120,80;140,95") from None
    if not points:
        raise UserInputError(f"points {text!r} hold no point; for example --points 120,80")
    return points


def parse_box(text: str) -> Box:
    """``"x0,y0,x1,y1"`` -> Box."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise UserInputError(f"box {text!r} is not 'x0,y0,x1,y1'; for example "
                             "--box 10,20,200,180") from None
    return Box(x0, y0, x1, y1)


def parse_marking(text: str):
    """A reference marking on the command line: a mask path, ``box:x0,y0,x1,y1``,
    ``points:x,y;x,y`` (optionally ``|neg:x,y;...``) or ``scribble:FILE``."""
    kind, sep, rest = text.partition(":")
    if sep and kind == "box":
        return parse_box(rest)
    if sep and kind == "points":
        pos, _, neg = rest.partition("|neg:")
        return Points(parse_points(pos), parse_points(neg) if neg else ())
    if sep and kind == "scribble":
        return Scribble(Path(rest))
    return Path(text)


def point_inputs(prompt: Prompt, width: int, height: int, image_size: int):
    """SAM2's ``point_inputs`` for one reference: coordinates in the model's square input
    space, labels 1 (object), 0 (background), 2/3 (box corners). Checks the prompt first."""
    import torch

    coords, labels = coords_and_labels(prompt, width, height)
    scale = np.array([image_size / width, image_size / height], dtype=np.float32)
    return {
        "point_coords": torch.from_numpy(np.asarray(coords, np.float32) * scale)[None],
        "point_labels": torch.tensor([labels], dtype=torch.int32),
    }


def _inside(x, y, width, height, what) -> None:
    if not (0 <= x <= width and 0 <= y <= height):
        raise UserInputError(f"{what} ({x:g}, {y:g}) is outside the {width}x{height} reference "
                             "image; give pixel coordinates inside it")


def coords_and_labels(prompt: Prompt, width: int, height: int):
    """SAM2's point coordinates (pixels of the reference) and labels for ``prompt`` (1 object,
    0 background, 2/3 a box's corners); a point outside the image is refused."""
    if isinstance(prompt, Box):
        _inside(prompt.x0, prompt.y0, width, height, "box corner")
        _inside(prompt.x1, prompt.y1, width, height, "box corner")
        if prompt.x1 <= prompt.x0 or prompt.y1 <= prompt.y0:
            raise UserInputError(f"box {prompt.x0:g},{prompt.y0:g},{prompt.x1:g},{prompt.y1:g} has "
                                 "zero area; give x0,y0,x1,y1 with x1 > x0 and y1 > y0")
        return [(prompt.x0, prompt.y0), (prompt.x1, prompt.y1)], [2, 3]
    if isinstance(prompt, Points):
        if not prompt.positive:
            raise UserInputError("points need at least one click on the object")
        for x, y in (*prompt.positive, *prompt.negative):
            _inside(x, y, width, height, "point")
        return ([*prompt.positive, *prompt.negative],
                [1] * len(prompt.positive) + [0] * len(prompt.negative))
    if isinstance(prompt, Scribble):
        from sansa_cli.core.images import load_mask

        strokes = load_mask(prompt.strokes, "scribble")
        if strokes.shape != (height, width):
            raise UserInputError(f"scribble is {strokes.shape[1]}x{strokes.shape[0]} but the "
                                 f"reference image is {width}x{height}; draw it at the same size")
        ys, xs = np.nonzero(strokes)
        if len(xs) == 0:
            raise UserInputError("scribble is empty (no stroke pixels); draw on the object")
        keep = np.linspace(0, len(xs) - 1, min(len(xs), MAX_SCRIBBLE_POINTS)).round().astype(int)
        return list(zip(xs[keep] + 0.5, ys[keep] + 0.5)), [1] * len(keep)
    raise UserInputError(f"unknown prompt {prompt!r}")
