"""Tiny cross-domain and ADE20K datasets in their real on-disk formats, written by the tests.

Every builder takes an empty folder and returns ``(root, options)`` for ``Cls.create``; the root
is the dataset's own top folder (``Deepglobe``, ``ISIC``, ``LungSegmentation``,
``ADEChallengeData2016``), as ``--data-root`` expects. Masks are white-on-black with a 127 pixel
(background) and a 128 pixel (object) to pin the binarisation threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.datasets_fixtures import picture

#: DeepGlobe tiles of the fixture and the classes each shows (every class in 4 tiles)
TILES = {f"{100 + t}_sat_{t % 3}{t % 2}": sorted({t % 6 + 1, (t + 2) % 6 + 1, (t + 4) % 6 + 1})
         for t in range(8)}
#: ISIC fixture: image id -> class label in class_id.csv
ISIC_LABELS = {f"ISIC_{i:07d}": label for i, label in enumerate(
    ["nevus", "melanoma", "seborrheic_keratosis", "nevus", "melanoma", "seborrheic_keratosis",
     "nevus", "nevus"])}
ISIC_FOLDERS = {"nevus": 1, "melanoma": 2, "seborrheic_keratosis": 3}  # SANSA's mapping
#: Lung fixture: Shenzhen images with masks, Montgomery images with masks, images without mask
SHENZHEN = ["CHNCXR_0001_0", "CHNCXR_0002_0", "CHNCXR_0003_1"]
MONTGOMERY = ["MCUCXR_0001_0", "MCUCXR_0002_1"]
UNMASKED = ["CHNCXR_0004_1", "MCUCXR_0003_0"]


def binary_mask_file(path: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> Path:
    """A white-on-black gray PNG: ``box`` (x0, y0, x1, y1) is 255, pixel (0, 0) is 127
    (background) and the box's first pixel 128 (object)."""
    w, h = size
    m = np.zeros((h, w), dtype=np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    m[y0, x0] = 128
    m[0, 0] = 127
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return path


def _class_box(cid: int, size=(24, 24)) -> tuple[int, int, int, int]:
    x = 2 + 3 * (cid - 1)
    return x, 3, x + 4, size[1] - 3


# -- DeepGlobe ------------------------------------------------------------------------------------
def deepglobe_patnet(base: Path) -> Path:
    """PATNet's layout: ``<k>/test/origin/<tile>.jpg`` + ``<k>/test/groundtruth/<tile>.png``."""
    root = base / "Deepglobe"
    for t, (tile, classes) in enumerate(TILES.items()):
        for k in classes:
            picture(root / str(k) / "test" / "origin" / f"{tile}.jpg", (24, 24), seed=t)
            binary_mask_file(root / str(k) / "test" / "groundtruth" / f"{tile}.png", (24, 24),
                             _class_box(k))
    return root


def deepglobe_sansa(base: Path) -> Path:
    """SANSA's layout: ``image/<id>_sat_<ij>.jpg`` + ``filter_mask/<k>/<id>_mask_<ij>.png``."""
    root = base / "Deepglobe"
    for t, (tile, classes) in enumerate(TILES.items()):
        picture(root / "image" / f"{tile}.jpg", (24, 24), seed=t)
        for k in classes:
            mask = f"{tile.replace('_sat_', '_mask_')}.png"
            binary_mask_file(root / "filter_mask" / str(k) / mask, (24, 24), _class_box(k))
    return root


def make_deepglobe(base: Path):
    return deepglobe_sansa(base), {}


# -- ISIC 2018 ------------------------------------------------------------------------------------
def isic_official(base: Path, crlf: bool = True) -> Path:
    """The official layout (``Training_Input/ISIC_<id>.jpg``) with PATNet's class_id.csv."""
    root = base / "ISIC"
    for i, stem in enumerate(ISIC_LABELS):
        _isic_pair(root, root / "ISIC2018_Task1-2_Training_Input" / f"{stem}.jpg", stem, i)
    newline = "\r\n" if crlf else "\n"
    rows = ["ID,Class", *(f"{stem},{label}" for stem, label in ISIC_LABELS.items())]
    (root / "class_id.csv").write_bytes((newline.join(rows) + newline).encode())
    return root


def isic_folders(base: Path, image_size: tuple[int, int] | None = None,
                 folders: dict[str, int] = ISIC_FOLDERS) -> Path:
    """The lineage layout: images moved into ``Training_Input/{1,2,3}/`` (``folders``: label ->
    folder, default SANSA's mapping); ``image_size`` resizes the images only, as DR-Adapter's
    split script does."""
    root = base / "ISIC"
    for i, (stem, label) in enumerate(ISIC_LABELS.items()):
        folder = root / "ISIC2018_Task1-2_Training_Input" / str(folders[label])
        _isic_pair(root, folder / f"{stem}.jpg", stem, i, image_size)
    return root


def _isic_pair(root: Path, image: Path, stem: str, seed: int,
               image_size: tuple[int, int] | None = None) -> None:
    size = (26 + seed % 3, 20)
    picture(image, image_size or size, seed=seed)
    binary_mask_file(root / "ISIC2018_Task1_Training_GroundTruth" / f"{stem}_segmentation.png",
                     size, (5, 4, 18, 15))


def make_isic(base: Path):
    return isic_official(base), {}


# -- Chest X-ray (Lung) ---------------------------------------------------------------------------
def make_lung(base: Path):
    """``CXR_png/`` gray X-rays, ``masks/`` in both naming forms; some images have no mask."""
    root = base / "LungSegmentation"
    for i, stem in enumerate(SHENZHEN + MONTGOMERY + UNMASKED):
        size = (22 + i % 2, 24)
        rng = np.random.default_rng(i)
        (root / "CXR_png").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size[::-1], dtype=np.uint8)).save(
            root / "CXR_png" / f"{stem}.png")
        if stem in SHENZHEN:
            binary_mask_file(root / "masks" / f"{stem}_mask.png", size, (3, 4, 10, 20))
        elif stem in MONTGOMERY:
            binary_mask_file(root / "masks" / f"{stem}.png", size, (12, 4, 19, 20))
    return root, {}


# -- ADE20K ---------------------------------------------------------------------------------------
#: ADE20K fixture: annotation content per image (classes painted in bands; 0 = other)
ADE_CLASSES = [[1, 2], [1, 3], [2, 3, 150], [1, 150], [], [2, 7], [3]]


def make_ade20k(base: Path, names: bool = True):
    """``images/training/*.jpg`` + ``annotations/training/*.png`` (value = class, 0 = other),
    and SegIC's ``utils/ade20k_classes.json`` when ``names``."""
    root = base / "ADEChallengeData2016"
    (root / "annotations" / "training").mkdir(parents=True)
    for i, classes in enumerate(ADE_CLASSES):
        stem = f"ADE_train_{i + 1:08d}"
        picture(root / "images" / "training" / f"{stem}.jpg", (20 + i % 2, 16), seed=i)
        label = np.zeros((16, 20 + i % 2), dtype=np.uint8)
        for band, cid in enumerate(classes):
            label[2 + 4 * band:5 + 4 * band, 2:18] = cid
        Image.fromarray(label).save(root / "annotations" / "training" / f"{stem}.png")
    if names:
        (root / "utils").mkdir()
        (root / "utils" / "ade20k_classes.json").write_text(
            json.dumps(["wall", "building", "sky"] + [f"thing{k}" for k in range(4, 151)]))
    return root, {}


BUILDERS = {
    "deepglobe": make_deepglobe,
    "isic": make_isic,
    "lung": make_lung,
    "ade20k": make_ade20k,
}
