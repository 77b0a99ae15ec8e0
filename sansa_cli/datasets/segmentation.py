"""COCO-style segmentations (polygons, RLE, uncompressed RLE) to binary masks, with pycocotools."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from sansa_cli.errors import DatasetError


def segmentation_rle(segmentation: Any, height: int, width: int) -> dict:
    """One compressed RLE for a COCO/LVIS ``segmentation`` field (all polygons merged)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons: a list of flat [x0, y0, x1, y1, ...] lists
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if isinstance(segmentation, dict) and "counts" in segmentation:
        if isinstance(segmentation["counts"], list):  # uncompressed RLE
            return mask_utils.frPyObjects(segmentation, *segmentation["size"])
        return segmentation
    raise DatasetError(f"unknown segmentation type {type(segmentation).__name__}; expected "
                       "COCO polygons or RLE")


def segmentation_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """HxW uint8 0/1 mask of one segmentation field."""
    import warnings

    from pycocotools import mask as mask_utils

    rle = segmentation_rle(segmentation, height, width)
    with warnings.catch_warnings():  # pycocotools 2.0.x trips numpy 2's copy-keyword warning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(np.uint8)


def merged_mask(segmentations: Iterable[Any], height: int, width: int) -> np.ndarray:
    """HxW uint8 0/1 union of all ``segmentations`` (all instances of one class in one image)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for segmentation in segmentations:
        part = segmentation_mask(segmentation, height, width)
        if part.shape != mask.shape:
            raise DatasetError(f"a segmentation is {part.shape[1]}x{part.shape[0]} but its image "
                               f"is {width}x{height}; the annotation file does not match the "
                               "images")
        mask |= part
    return mask
