"""Prompts drawn from support masks: deterministic for a seed, always on the object."""

from __future__ import annotations

import numpy as np
import pytest

from sansa_cli.errors import UserInputError
from sansa_cli.core.components import connected_components, largest_component
from sansa_cli.core.prompt_sampling import MAX_POINTS, prompt_name, sample_prompt
from sansa_cli.core.prompts import Box, Points, Scribble


def two_blobs() -> np.ndarray:
    """A 30x40 mask: a big ring-like blob (with a hole) on the left, a small square on the right."""
    mask = np.zeros((30, 40), bool)
    mask[3:25, 2:20] = True
    mask[10:15, 8:12] = False
    mask[5:9, 30:36] = True
    return mask


def test_largest_component_uses_8_connectivity():
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # a diagonal line: one component of 3
    mask[4:6, 4:6] = True  # a 2x2 square: 4 pixels
    assert largest_component(mask).sum() == 4 and largest_component(mask)[5, 5]
    mask[3, 3] = True  # now the diagonal reaches the square: one component of 8
    assert largest_component(mask).sum() == 8
    assert not largest_component(np.zeros((3, 3), bool)).any()


@pytest.mark.parametrize("kind", ["point", "box", "scribble", "mixed", "mask"])
def test_same_seed_same_prompt(kind):
    mask = two_blobs()
    first = sample_prompt(kind, mask, seed=3, episode_index=7, support_index=1)
    again = sample_prompt(kind, mask, seed=3, episode_index=7, support_index=1)
    if isinstance(first, Scribble):
        np.testing.assert_array_equal(first.strokes, again.strokes)
    elif isinstance(first, np.ndarray):
        np.testing.assert_array_equal(first, again)
    else:
        assert first == again


def test_seed_episode_and_support_each_change_the_draw():
    mask = two_blobs()
    draws = {sample_prompt("point", mask, s, e, j).positive
             for s, e, j in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]}
    assert len(draws) == 4


def test_points_are_on_the_object_and_at_most_twenty():
    mask = two_blobs()
    counts = set()
    for episode in range(30):
        points = sample_prompt("point", mask, 0, episode, 0)
        assert isinstance(points, Points) and not points.negative
        assert 1 <= len(points.positive) <= MAX_POINTS
        assert len(set(points.positive)) == len(points.positive)
        assert all(mask[int(y), int(x)] for x, y in points.positive)
        counts.add(len(points.positive))
    assert len(counts) > 3  # the number of clicks varies


def test_box_encloses_the_largest_component_only():
    box = sample_prompt("box", two_blobs(), 0, 0, 0)
    assert box == Box(2.0, 3.0, 20.0, 25.0)  # the left blob, pixel edges; the square is ignored


def test_scribbles_stay_inside_the_mask():
    mask = two_blobs()
    for episode in range(20):
        scribble = sample_prompt("scribble", mask, 0, episode, 0)
        assert isinstance(scribble, Scribble)
        assert scribble.strokes.any() and not (scribble.strokes & ~mask).any()


def test_mixed_draws_every_kind_and_empty_masks_stay_masks():
    kinds = {prompt_name(sample_prompt("mixed", two_blobs(), 0, e, 0)) for e in range(40)}
    assert kinds == {"mask", "point", "box", "scribble"}
    empty = np.zeros((5, 5), bool)
    assert prompt_name(sample_prompt("box", empty, 0, 0, 0)) == "mask"
    with pytest.raises(UserInputError, match="unknown prompt type"):
        sample_prompt("lasso", two_blobs(), 0, 0, 0)


def test_connected_components_are_8_connected_and_numbered_in_raster_order():
    mask = np.zeros((6, 8), bool)
    mask[0, 5:8] = True  # first in raster order
    mask[1, 0] = mask[2, 1] = True  # diagonal neighbours: one component
    mask[4:6, 3:6] = True
    mask[4, 4] = False  # a notch, still one component
    labels, count = connected_components(mask)
    assert count == 3
    assert labels[0, 5] == 1 and labels[1, 0] == labels[2, 1] == 2 and labels[5, 3] == 3
    assert ((labels > 0) == mask).all()
    assert connected_components(np.zeros((3, 3), bool))[1] == 0


def _flood_fill_labels(mask: np.ndarray) -> int:
    """Component count by a plain 8-neighbour flood fill (the reference)."""
    seen, count = np.zeros(mask.shape, bool), 0
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        count, stack = count + 1, [(y, x)]
        seen[y, x] = True
        while stack:
            a, b = stack.pop()
            for yy in range(max(a - 1, 0), min(a + 2, mask.shape[0])):
                for xx in range(max(b - 1, 0), min(b + 2, mask.shape[1])):
                    if mask[yy, xx] and not seen[yy, xx]:
                        seen[yy, xx] = True
                        stack.append((yy, xx))
    return count


@pytest.mark.parametrize("seed", range(8))
def test_connected_components_match_a_flood_fill(seed):
    mask = np.random.default_rng(seed).random((30, 40)) > 0.6
    labels, count = connected_components(mask)
    assert count == _flood_fill_labels(mask)
    assert ((labels > 0) == mask).all()
    for i in range(1, count + 1):  # every label is one component
        assert connected_components(labels == i)[1] == 1


@pytest.mark.parametrize("seed", range(8))
def test_opencv_and_numpy_components_are_the_same_labels(seed):
    from sansa_cli.core.components import _union_find_components

    pytest.importorskip("cv2")  # the labels extra (in the test extra too)
    mask = np.random.default_rng(seed).random((40, 50)) > 0.55
    labels, count = connected_components(mask)
    reference, reference_count = _union_find_components(mask)
    assert count == reference_count and np.array_equal(labels, reference)
