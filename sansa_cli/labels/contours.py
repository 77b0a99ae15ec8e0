"""Polygons from masks, exact at either pixel convention (OpenCV, imported here only).

Two conventions, because the tools rasterize polygons differently:

- **pixel corners** (:func:`corner_rings`; COCO, Label Studio, CVAT): pixel ``(row, col)``
  covers ``[col, col + 1] x [row, row + 1]`` and the rings run along pixel edges, so
  pycocotools (``frPyObjects`` + ``merge``) rasterizes them back to exactly the mask's pixels.
  Traced on a doubled grid: pixel ``(i, j)`` becomes the 3x3 block centred on
  ``(2i + 1, 2j + 1)``, whose outline lies on even grid lines; OpenCV's 8-connected trace cuts
  each concave corner by one diagonal step, and the corner it skips is put back, so after
  dropping collinear points every vertex is a pixel corner. Parts that touch only diagonally
  form one ring through the shared corner.
- **pixel centres** (:func:`centre_rings`; Ultralytics YOLO): OpenCV's own outer contours,
  through the centres of the boundary pixels, which ``cv2.fillPoly`` on integer coordinates
  (Ultralytics' ``polygon2mask``) fills back to the mask with its holes filled.
"""

from __future__ import annotations

import numpy as np

from sansa_cli.errors import UserInputError


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserInputError('polygon labels need OpenCV; pip install "sansa-cli[labels]"') \
            from None
    return cv2


def corner_rings(mask: np.ndarray) -> tuple[list[np.ndarray], bool]:
    """The outer rings of ``mask`` (bool HxW) at the pixel-corner convention, and whether it
    has holes.

    Each ring is an (N, 2) int array of ``(x, y)`` pixel corners, N >= 4, one per 8-connected
    part. The rings hold no holes: together they cover ``mask`` with its holes filled, which is
    ``mask`` itself exactly when the second value is False.
    """
    cv2 = _cv2()
    crop, (left, top) = _crop(mask)
    height, width = crop.shape
    grid = np.zeros((2 * height + 1, 2 * width + 1), np.uint8)
    grid[1::2, 1::2] = crop
    grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
    contours, hierarchy = cv2.findContours(grid, cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE,
                                           offset=(2 * left, 2 * top))
    if not contours:
        return [], False
    parents = hierarchy[0][:, 3]
    rings = [_with_corners(c.reshape(-1, 2)) // 2 for c, p in zip(contours, parents) if p < 0]
    return rings, bool((parents >= 0).any())


def _crop(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``mask`` cut to the box around its pixels (the trace is then as fast for a small object
    in a large image as in a small one), and the box's ``(left, top)``."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return mask[:0, :0], (0, 0)
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], (int(cols[0]), int(rows[0]))


def _with_corners(points: np.ndarray) -> np.ndarray:
    """A closed grid trace with each diagonal step's skipped corner put back, collinear points
    dropped. The skipped corner takes the even coordinate of each end of the step."""
    following = np.roll(points, -1, axis=0)
    diagonal = np.abs(following - points).sum(axis=1) == 2
    corners = np.where(points % 2 == 0, points, following)[diagonal]
    # insert each corner right after the start of its diagonal step
    position = np.arange(len(points)) + np.concatenate([[0], np.cumsum(diagonal)[:-1]])
    ring = np.empty((len(points) + len(corners), 2), points.dtype)
    ring[position] = points
    ring[position[diagonal] + 1] = corners
    return _drop_collinear(ring)


def _drop_collinear(ring: np.ndarray) -> np.ndarray:
    previous, following = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
    incoming, outgoing = ring - previous, following - ring
    turn = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    return ring[turn != 0]


def centre_rings(mask: np.ndarray) -> list[np.ndarray]:
    """The outer contours of ``mask`` (bool HxW) through boundary-pixel centres: one (N, 2)
    int array of ``(col, row)`` pixel indices per 8-connected part, holes dropped.

    A part with fewer than 3 contour points (one or two pixels, a straight one-pixel line)
    repeats its points to 3, the minimum the formats accept; ``fillPoly`` still draws exactly
    its pixels.
    """
    cv2 = _cv2()
    crop, offset = _crop(mask)
    contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    rings = [c.reshape(-1, 2) for c in contours]
    return [np.resize(r, (3, 2)) if len(r) < 3 else r for r in rings]
