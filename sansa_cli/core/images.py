"""Reading images and masks the way users hand them over, and SAM2's preprocessing.

Images and masks may be paths, PIL images or numpy arrays. EXIF orientation is applied to both
alike; grayscale, RGBA, palette and 16-bit files are handled. A mask's object is its non-zero
pixels; a mask with many grey levels (a JPEG, a soft mask) is thresholded at half its range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps

from sansa_cli.core.choices import DEFAULT_RESIZE, RESIZE_MODES
from sansa_cli.datasets.reading import opened_image
from sansa_cli.errors import MissingFileError, UserInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ImageLike = Union[str, Path, Image.Image, np.ndarray]


def describe(src: Any) -> str:
    return str(src) if isinstance(src, (str, Path)) else f"<{type(src).__name__}>"


def _open(src: ImageLike, what: str) -> Image.Image:
    if isinstance(src, Image.Image):
        return ImageOps.exif_transpose(src)
    if isinstance(src, np.ndarray):
        return Image.fromarray(_to_uint8(src) if src.dtype not in (np.uint8, bool) else src)
    with open_image_file(Path(src), what) as img:
        img.load()
        return ImageOps.exif_transpose(img)


def open_image_file(path: Path, what: str = "image"):
    """``path`` opened for a ``with`` block (header read, pixels decoded by ``load()``): a
    regular file within sansa's pixel limit (``SANSA_MAX_PIXELS``), else one line naming it.

    See :func:`sansa_cli.datasets.reading.opened_image`.
    """
    return opened_image(path, what, UserInputError, fix="re-export it", missing="check the path")


def frame_count(path: Path, what: str = "image") -> int:
    """How many frames the image file holds (more than 1: an animated GIF, PNG or WebP, or a
    multi-page TIFF); reads the header and frame table, not the pixels."""
    with open_image_file(path, what) as img:
        return getattr(img, "n_frames", 1)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale any numeric array into 0..255 (16-bit and float images)."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        top = 1.0 if array.size and float(np.nanmax(array)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(array) / top * 255.0, 0, 255).astype(np.uint8)
    top = 65535 if array.size and array.max() > 255 else 255
    return (array.astype(np.float64) / top * 255.0).round().astype(np.uint8)


def load_image(src: ImageLike) -> Image.Image:
    """An RGB PIL image, upright (EXIF applied), from any supported input."""
    img = _open(src, "image")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = Image.fromarray(_to_uint8(np.asarray(img)))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert("RGB")


def load_mask(src: ImageLike, what: str = "mask") -> np.ndarray:
    """A boolean HxW mask, upright, from any supported input (see the module docstring)."""
    if isinstance(src, np.ndarray) and src.dtype == bool:
        array = src
    else:
        img = _open(src, what)
        if img.mode == "P":
            array = np.asarray(img)  # palette indices: 0 is background
        elif img.mode in ("RGBA", "LA"):
            bands = np.asarray(img)
            alpha = bands[..., -1]
            array = alpha if alpha.min() < alpha.max() else bands[..., :-1].max(axis=-1)
        else:
            array = np.asarray(img)
            if array.ndim == 3:
                array = array.max(axis=-1)
        array = _binarize(array)
    if array.ndim != 2:
        raise UserInputError(f"{what} {describe(src)} is not a 2-D mask (shape {array.shape})")
    return array.astype(bool)


def _binarize(array: np.ndarray) -> np.ndarray:
    values = np.unique(array)
    if len(values) <= 16:  # a label image: any non-zero value is the object
        return array > 0
    return array > (float(values.max()) + float(values.min())) / 2.0


def reference_pair(image: ImageLike, mask: ImageLike) -> tuple[Image.Image, np.ndarray]:
    """Load a reference image and mask; sizes must agree and the mask must not be empty."""
    img = load_image(image)
    m = load_mask(mask)
    if m.shape != (img.height, img.width):
        raise UserInputError(
            f"mask {describe(mask)} is {m.shape[1]}x{m.shape[0]} but image {describe(image)} is "
            f"{img.width}x{img.height}; give the mask of that image at the same size"
        )
    if not m.any():
        raise UserInputError(
            f"mask {describe(mask)} is empty (no object pixels); mark the object in it"
        )
    return img, m


def check_resize(resize: str) -> str:
    """``resize`` itself if it is one of :data:`~sansa_cli.core.choices.RESIZE_MODES`."""
    if resize not in RESIZE_MODES:
        raise UserInputError(
            f"unknown resize mode {resize!r}; use one of {', '.join(RESIZE_MODES)}")
    return resize


def preprocess(img: Image.Image, size: int, resize: str = DEFAULT_RESIZE,
               pre_resize: int | None = None):
    """A float tensor [3, size, size]: square resize (aspect not kept), ImageNet normalisation.

    ``pil-bicubic`` is what SAM2's video predictor does; ``antialias-bilinear`` is what the
    SANSA authors' release does with tensors. ``pre_resize`` first resizes to that square (the
    canvas a benchmark loader feeds the model at), with the same filter, in float.
    """
    import torch
    import torch.nn.functional as F

    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    sides = [s for s in (pre_resize, size) if s]
    if resize == "pil-bicubic":
        for side in sides:
            img = img.resize((side, side), Image.BICUBIC)
        tensor = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    elif resize == "antialias-bilinear":
        tensor = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        for side in sides:
            tensor = F.interpolate(tensor[None], size=(side, side), mode="bilinear",
                                   align_corners=False, antialias=True)[0]
    else:
        check_resize(resize)
    return (tensor - mean) / std


def mask_to_input(mask: np.ndarray, size: int, rule: str = "half",
                  pre_resize: int | None = None):
    """A reference mask as SAM2 takes it: [1, size, size] float 0/1.

    The mask is resized with bilinear antialiasing; ``rule`` says which pixels are then object:
    ``half`` (>= 0.5, SAM2's video predictor) or ``any`` (> 0, the SANSA release, whose masks
    keep the antialiasing spill). ``pre_resize`` first resizes it (nearest) to the canvas a
    benchmark loader feeds the model at.
    """
    import torch
    import torch.nn.functional as F

    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    if pre_resize:
        m = F.interpolate(m, size=(pre_resize, pre_resize), mode="nearest")
    if m.shape[-2:] != (size, size):
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
        m = (m >= 0.5 if rule == "half" else m > 0).float()
    return m[0]


def list_targets(paths: list[str | Path]) -> list[Path]:
    """Expand targets (images or directories of images) into image paths, in a stable order.

    Only regular files are taken from a directory (a FIFO named ``x.jpg`` would block reading);
    one given by name must be a regular file.
    """
    return [path for path, _ in walk_targets(paths)]


def walk_targets(paths: list[str | Path], recursive: bool = False,
                 exclude: Path | None = None) -> list[tuple[Path, str]]:
    """``(image path, output name)`` for every target, in a stable order.

    The output name is the image's path relative to the folder it was found in, without its
    suffix (``sub/dir/img`` under ``--recursive``; the stem for a file given by name), so
    outputs can mirror the folders. ``recursive`` walks subfolders (symlinked folders are not
    followed; hidden ones are skipped); ``exclude`` is a folder never walked (the output folder).
    """
    found: list[tuple[Path, str]] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            images = _images_below(path, recursive, exclude)
            if not images:
                raise UserInputError(
                    f"directory {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                    f"{'' if recursive else ' directly; add --recursive to search subfolders'}"
                    "; point at a folder of images")
            found.extend((p, p.relative_to(path).with_suffix("").as_posix()) for p in images)
        elif path.is_file():
            found.append((path, path.stem))
        elif path.exists():
            raise UserInputError(f"target {path} is not a regular file (a FIFO or device); "
                                 "give image files or folders")
        else:
            raise MissingFileError(f"target {path} does not exist; check the path")
    return found


def _images_below(folder: Path, recursive: bool, exclude: Path | None) -> list[Path]:
    import os

    def wanted(p: Path) -> bool:
        return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()

    if not recursive:
        return sorted(p for p in folder.iterdir() if wanted(p))
    skip = exclude.resolve() if exclude is not None else None
    images = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")
                   and (skip is None or (Path(root) / d).resolve() != skip)]
        images.extend(p for p in (Path(root) / f for f in files) if wanted(p))
    return sorted(images, key=lambda p: p.relative_to(folder).parts)


def subfolders_with_images(paths: list[str | Path]) -> int:
    """How many direct subfolders of the given folders hold images (not walked without
    ``--recursive``; said so rather than skipped without a word)."""
    count = 0
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            count += sum(1 for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")
                         and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()))
    return count
