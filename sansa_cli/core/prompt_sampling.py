"""Reference prompts derived from support masks, for promptable few-shot evaluation.

Follows the SANSA authors' protocol (see the promptable rows of the paper): ``point`` = up to 20
random clicks on the object, ``box`` = the box of the mask's largest connected component,
``scribble`` = a few random strokes inside the mask, ``mask`` = the mask itself, ``mixed`` = one of
the four at random per reference. Every draw comes from a generator seeded by (seed, episode
index, support index), so the prompts of an episode do not depend on the order episodes run in,
on sharding, or on resuming.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from sansa_cli.core.choices import PROMPT_TYPES
from sansa_cli.core.components import largest_component
from sansa_cli.core.prompts import Box, Points, Scribble
from sansa_cli.errors import UserInputError

MAX_POINTS = 20
STROKE_WIDTH = 3


def reference_rng(seed: int, episode_index: int, support_index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(episode_index), int(support_index)])


def sample_points(mask: np.ndarray, rng: np.random.Generator) -> Points:
    """1..20 distinct clicks (pixel centres) drawn uniformly from the object's pixels."""
    ys, xs = np.nonzero(mask)
    count = int(rng.integers(1, min(MAX_POINTS, len(xs)) + 1))
    pick = rng.choice(len(xs), size=count, replace=False)
    return Points(tuple((float(xs[i]) + 0.5, float(ys[i]) + 0.5) for i in sorted(pick)))


def sample_box(mask: np.ndarray) -> Box:
    """The pixel-edge box around the largest connected component."""
    ys, xs = np.nonzero(largest_component(mask))
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def sample_scribble(mask: np.ndarray, rng: np.random.Generator) -> Scribble:
    """1..3 strokes, each a polyline through 2..4 random object pixels, 3 px wide, clipped to
    the mask (a stroke between two parts of the object may leave it; those pixels are dropped)."""
    ys, xs = np.nonzero(mask)
    canvas = Image.new("L", (mask.shape[1], mask.shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        pick = rng.choice(len(xs), size=int(rng.integers(2, 5)))
        line = [(int(xs[i]), int(ys[i])) for i in pick]
        draw.line(line, fill=255, width=STROKE_WIDTH)
        for x, y in line:  # the vertices always count, even for a one-pixel-thin object
            canvas.putpixel((x, y), 255)
    strokes = (np.asarray(canvas) > 0) & mask
    return Scribble(strokes)


def sample_prompt(kind: str, mask: np.ndarray, seed: int, episode_index: int,
                  support_index: int):
    """The marking of one reference: the mask itself (``kind='mask'``) or a prompt drawn from it.

    Returns a boolean mask or a :class:`Points` / :class:`Box` / :class:`Scribble`.
    """
    if kind not in PROMPT_TYPES:
        raise UserInputError(f"unknown prompt type {kind!r}; use one of {', '.join(PROMPT_TYPES)}")
    mask = np.asarray(mask, bool)
    rng = reference_rng(seed, episode_index, support_index)
    if kind == "mixed":
        kind = ("mask", "point", "box", "scribble")[int(rng.integers(0, 4))]
    if kind == "mask" or not mask.any():
        return mask  # an empty support mask has nothing to click on; the mask path handles it
    if kind == "point":
        return sample_points(mask, rng)
    if kind == "box":
        return sample_box(mask)
    return sample_scribble(mask, rng)


def prompt_name(marking) -> str:
    """'mask', 'point', 'box' or 'scribble' for what :func:`sample_prompt` returned."""
    if isinstance(marking, Points):
        return "point"
    if isinstance(marking, Box):
        return "box"
    if isinstance(marking, Scribble):
        return "scribble"
    return "mask"
