"""Chest X-ray lungs ("Lung") as a cross-domain few-shot set (one class; evaluation only).

``--data-root`` is the ``LungSegmentation`` folder: Kaggle's "Chest X-ray Masks and Labels"
(the NLM tuberculosis sets from Shenzhen and Montgomery) with its folder ``Lung Segmentation``
renamed::

    CXR_png/<image>.png    (800 images)
    masks/<mask>.png       (704 masks; both lungs are one white-on-black foreground)

A Shenzhen mask ``CHNCXR_<n>_<l>_mask.png`` belongs to the image ``CHNCXR_<n>_<l>.png``; a
Montgomery mask carries its image's own name (``MCUCXR_<n>_<l>.png``). The episodes draw from the
images that have a mask. Option ``montgomery`` (default true: SANSA's and DR-Adapter's 704) keeps
the Montgomery masks; ``montgomery=false`` leaves them out, PATNet's and ABCDFSS's 566-mask pool
(their loaders strip ``_mask`` from every name and fail on Montgomery's). Image ids are the image
file names. Test protocol: see :mod:`sansa_cli.datasets.cross_domain` (600 episodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sansa_cli.datasets.cross_domain import CrossDomainDataset, flag, folder_hint
from sansa_cli.errors import DatasetError, MissingFileError

IMAGES = "CXR_png"
MASKS = "masks"
SHENZHEN_SUFFIX = "_mask.png"
SOURCE = ("Kaggle's \"Chest X-ray Masks and Labels\" (rename its folder 'Lung Segmentation' to "
          "LungSegmentation)")


class Lung(CrossDomainDataset):
    """Shenzhen and Montgomery chest X-rays with lung masks, one class."""

    name = "lung"
    class_names = {1: "lung"}

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None, *,
                 montgomery: bool | str = True):
        super().__init__(root, fold, split)
        self.montgomery = flag(montgomery, "lung", "montgomery")
        for sub in (IMAGES, MASKS):
            if not (self.root / sub).is_dir():
                hint = folder_hint(self.root, ["LungSegmentation", "Lung Segmentation"])
                raise MissingFileError(f"lung folder {self.root / sub} is missing; it comes from "
                                       f"{SOURCE}{hint}")
        masks = sorted(p.name for p in (self.root / MASKS).iterdir()
                       if p.suffix.lower() == ".png")
        shenzhen = [m for m in masks if m.endswith(SHENZHEN_SUFFIX)]
        self.left_out = 0 if self.montgomery else len(masks) - len(shenzhen)
        self.index((1, _image_name(m), self.root / IMAGES / _image_name(m), self.root / MASKS / m)
                   for m in (masks if self.montgomery else shenzhen))
        if not self._images[1]:
            raise DatasetError(f"lung folder {self.root / MASKS} holds no mask"
                               f"{' of Shenzhen' if not self.montgomery else ''}; it comes from "
                               f"{SOURCE}")

    def options(self) -> dict[str, Any]:
        """Whether the Montgomery masks are in the pool."""
        return {"montgomery": self.montgomery}

    def notes(self) -> list[str]:
        if self.montgomery:
            return []
        return [f"lung: montgomery=false leaves out the {self.left_out} Montgomery (MCUCXR) "
                f"masks: PATNet's pool of {len(self._images[1])} (566 on the full set); the "
                "default keeps them (704)"]


def _image_name(mask: str) -> str:
    """The image a mask belongs to: Shenzhen's drop ``_mask``, Montgomery's share the name."""
    return mask[: -len(SHENZHEN_SUFFIX)] + ".png" if mask.endswith(SHENZHEN_SUFFIX) else mask
