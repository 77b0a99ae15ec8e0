"""Reading a dataset's files: split lists, images, masks, and the split folder (helpers every
dataset plugin shares; errors name the file and the fix).

Every image sansa reads, here and in :mod:`sansa_cli.core.images`, is opened by
:func:`opened_image`: regular files only (a FIFO named ``x.jpg`` would block forever) and at most
:func:`pixel_limit` pixels, so that a small file claiming a huge size (a decompression bomb)
is refused from its header instead of exhausting memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from sansa_cli.errors import DatasetError, MissingFileError, SansaError, UserInputError

#: the environment variable that sets :func:`pixel_limit`
PIXEL_LIMIT_VARIABLE = "SANSA_MAX_PIXELS"
#: PIL's own refusal threshold (twice its warning threshold of 89,478,485 pixels): sansa refuses
#: nothing PIL would have decoded (a 16384 x 10922 photo passes; 200-megapixel photos need the
#: variable)
DEFAULT_MAX_PIXELS = 178_956_970


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file; CRLF and trailing blanks are tolerated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MissingFileError(f"split file {path} does not exist; check --splits") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def pixel_limit() -> int:
    """The most pixels (width x height) sansa decodes from one image: ``SANSA_MAX_PIXELS``,
    default :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(PIXEL_LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UserInputError(f"{PIXEL_LIMIT_VARIABLE}={text!r} is not a positive whole number "
                             "of pixels; set it to e.g. 300000000, or unset it")
    return value


@contextlib.contextmanager
def opened_image(path: Path, what: str = "image", error: type[SansaError] = DatasetError,
                 fix: str = "replace or remove it",
                 missing: str = "run `sansa prepare` to check") -> Iterator:
    """``path`` opened as a PIL image for the block (header read, pixels not yet decoded).

    One line naming ``what`` and the file for anything unusable: a missing file
    (:class:`MissingFileError`, ending with ``missing``), or as ``error`` (ending with ``fix``)
    something that is not a regular file, more pixels than :func:`pixel_limit`, or a file that
    fails to decode in the block.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what} {path} does not exist; {missing}")
    if not path.is_file():
        raise error(f"{what} {path} is not a regular file (a folder, FIFO or device); {fix}")
    limit = pixel_limit()
    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = -(-limit // 2)  # PIL refuses above twice this; asked for more
    try:
        with warnings.catch_warnings():  # sansa applies its own limit; PIL's warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > limit:
                    raise error(_too_large(what, path, image.width * image.height, limit))
                yield image
    except SansaError:
        raise
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise error(_too_large(what, path, int(pixels[1]) if pixels else None, limit)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise error(f"{what} {path} cannot be read as an image ({exc}); {fix}") from exc


def _too_large(what: str, path: Path, pixels: int | None, limit: int) -> str:
    count = f"{pixels:,} pixels, more than" if pixels else "more pixels than"
    return (f"{what} {path} has {count} sansa's limit of {limit:,} (a guard against "
            f"decompression bombs); if the image is genuine, raise the limit with the "
            f"environment variable {PIXEL_LIMIT_VARIABLE}={pixels or 2 * limit}")


def open_rgb(path: Path):
    """A dataset image, decoded as RGB (see :func:`opened_image`)."""
    with opened_image(path) as image:
        return image.convert("RGB")


def open_mask_array(path: Path, gray: bool = False) -> np.ndarray:
    """Pixel values of a mask: palette indices or gray levels (other modes, or all with ``gray``,
    are converted to 8-bit gray as HSNet does)."""
    with opened_image(path, "mask") as image:
        if gray or image.mode not in ("P", "L"):
            image = image.convert("L")
        return np.asarray(image)


def find_split_dir(given: str | Path | None, default: Path, benchmark: str, probe: str) -> Path:
    """The folder holding split files: ``given`` (or its ``<benchmark>`` subfolder), else
    ``default``.

    Accepting the parent lets users point ``--splits`` at HSNet's ``data/splits`` as is.
    """
    base = Path(given).expanduser() if given is not None else default
    for candidate in (base, base / benchmark):
        if (candidate / probe).exists():
            return candidate
    hint = "pass --splits DIR (HSNet's data/splits works)" if given is None else "check --splits"
    raise MissingFileError(f"no {benchmark} split file {base / probe}; {hint}")


def natural_key(name: str) -> tuple:
    """Sort key putting '2.jpg' before '10.jpg'."""
    stem, _, ext = name.rpartition(".") if "." in name else (name, "", "")
    return (0, int(stem), ext) if stem.isdigit() else (1, name, "")
