"""DeepGlobe 2018 land cover as a cross-domain few-shot set (PATNet's tiles; evaluation only).

``--data-root`` is the ``Deepglobe`` folder of PATNet's preprocessed download, in either of the
two layouts the lineage uses (detected; option ``layout`` picks one when a folder holds both)::

    layout=patnet (PATNet, DR-Adapter, ABCDFSS, GF-SAM)
        <k>/test/origin/<tile>.jpg  <k>/test/groundtruth/<tile stem>.png      k = 1..6
    layout=sansa (the SANSA release)
        image/<id>_sat_<ij>.jpg     filter_mask/<k>/<id>_mask_<ij>.png        k = 1..6

The tiles are 408 px cuts of the 2448 px DeepGlobe training images; a class folder holds a
white-on-black mask for each tile showing that class (PATNet's ``data/preprocess.py`` recipe).
Classes, with the recipe's colour list read in OpenCV's BGR order: 1 agriculture, 2 urban,
3 rangeland, 4 forest, 5 water, 6 barren ("unknown" is never a class). Image ids are the tile
file names (``<id>_sat_<ij>.jpg``) in both layouts, so an episode list replays on either.
Test protocol: see :mod:`sansa_cli.datasets.cross_domain` (600 episodes, 100 per class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sansa_cli.datasets.cross_domain import CrossDomainDataset, folder_hint
from sansa_cli.errors import DatasetError, MissingFileError, UserInputError

CLASS_NAMES = {1: "agriculture", 2: "urban", 3: "rangeland", 4: "forest", 5: "water",
               6: "barren"}
LAYOUTS = {
    "patnet": "PATNet's <k>/test/origin + <k>/test/groundtruth",
    "sansa": "SANSA's image/ + filter_mask/<k>/",
}
SOURCE = ("PATNet's preprocessed DeepGlobe download (see PATNet's README), or PATNet's "
          "data/preprocess.py recipe run on the DeepGlobe 2018 land-cover training images")


class DeepGlobe(CrossDomainDataset):
    """DeepGlobe tiles, 6 land-cover classes, in PATNet's or SANSA's layout."""

    name = "deepglobe"
    class_names = CLASS_NAMES

    def __init__(self, root: str | Path, fold: int = 0, split: str | None = None, *,
                 layout: str | None = None):
        super().__init__(root, fold, split)
        self.layout = self._layout(layout)
        self._absent = [k for k in CLASS_NAMES if not self._class_folder(k).is_dir()]
        rows = self._patnet_rows() if self.layout == "patnet" else self._sansa_rows()
        self.index(rows)
        if not any(self._images.values()):
            raise DatasetError(f"deepglobe at {self.root} ({LAYOUTS[self.layout]}) holds no tile; "
                               f"fill it from {SOURCE}")

    def options(self) -> dict[str, Any]:
        """The layout found (or chosen)."""
        return {"layout": self.layout}

    def notes(self) -> list[str]:
        """Which layout was read, and class folders it lacks."""
        notes = [f"deepglobe: read {LAYOUTS[self.layout]} (layout={self.layout}) at {self.root}"]
        if self._absent:
            notes.append(f"deepglobe: no folder for class {', '.join(map(str, self._absent))} "
                         f"({self._class_folder(self._absent[0])} is missing); those classes "
                         "score 0")
        return notes

    def _layout(self, chosen: str | None) -> str:
        """The layout to read: ``chosen``, else the one present (one line when none or both)."""
        present = [name for name in LAYOUTS if self._has(name)]
        if chosen is not None:
            if chosen not in LAYOUTS:
                raise UserInputError(f"deepglobe option layout={chosen!r} is unknown; use "
                                     f"{' or '.join(LAYOUTS)}, or leave it out to detect")
            if chosen == "sansa":
                self._require(self.root / "image", self.root / "filter_mask")
            elif chosen not in present:
                raise MissingFileError(f"deepglobe at {self.root} has no {self.root}/<k>/test/"
                                       f"origin folder (layout=patnet); it comes from {SOURCE}")
            return chosen
        if len(present) == 2:
            raise DatasetError(f"deepglobe at {self.root} holds both layouts ({LAYOUTS['patnet']}"
                               f" and {LAYOUTS['sansa']}); choose one with --dataset-option "
                               "layout=patnet or layout=sansa")
        if not present:
            raise MissingFileError(
                f"deepglobe at {self.root} holds neither layout: no {self.root}/1/test/origin "
                f"(PATNet's) nor {self.root}/image with filter_mask/ (SANSA's); they come from "
                f"{SOURCE}{folder_hint(self.root, ['Deepglobe', 'DeepGlobe'])}")
        if present == ["sansa"]:
            self._require(self.root / "image", self.root / "filter_mask")
        return present[0]

    def _has(self, layout: str) -> bool:
        if layout == "patnet":
            return any((self.root / str(k) / "test" / "origin").is_dir() for k in CLASS_NAMES)
        return (self.root / "image").is_dir() or (self.root / "filter_mask").is_dir()

    def _require(self, *folders: Path) -> None:
        for folder in folders:
            if not folder.is_dir():
                raise MissingFileError(f"deepglobe folder {folder} is missing (layout=sansa: "
                                       f"image/ and filter_mask/<k>/); it comes from {SOURCE}")

    def _class_folder(self, cid: int) -> Path:
        if self.layout == "patnet":
            return self.root / str(cid) / "test" / "origin"
        return self.root / "filter_mask" / str(cid)

    def _patnet_rows(self):
        """Every ``.jpg`` of ``<k>/test/origin`` with the same stem's ``.png`` in
        ``groundtruth``; a tile listed under several classes is one image."""
        for k in CLASS_NAMES:
            folder = self._class_folder(k)
            if not folder.is_dir():
                continue
            truth = folder.parent / "groundtruth"
            for name in sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".jpg"):
                yield k, name, folder / name, truth / (Path(name).stem + ".png")

    def _sansa_rows(self):
        """Every ``filter_mask/<k>/<id>_mask_<ij>.png``, with its tile
        ``image/<id>_sat_<ij>.jpg`` (the mask name rewritten)."""
        for k in CLASS_NAMES:
            folder = self._class_folder(k)
            if not folder.is_dir():
                continue
            for name in sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png"):
                head, sep, tail = Path(name).stem.rpartition("_mask_")
                if not sep:
                    raise DatasetError(f"deepglobe mask {folder / name} is not named "
                                       "<id>_mask_<ij>.png, so its tile cannot be found; rename "
                                       "or remove it")
                tile = f"{head}_sat_{tail}.jpg"
                yield k, tile, self.root / "image" / tile, folder / name
