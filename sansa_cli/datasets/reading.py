"""Reading a dataset's files: split lists, images, masks, and the split folder (helpers every
dataset plugin shares; errors name the file and the fix)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sansa_cli.errors import DatasetError, MissingFileError


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file; CRLF and trailing blanks are tolerated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MissingFileError(f"split file {path} does not exist; check --splits") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def open_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise MissingFileError(f"image {path} does not exist; run `sansa prepare` to "
                               "check") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"image {path} is unreadable ({exc}); replace or remove it") from exc


def open_mask_array(path: Path, gray: bool = False) -> np.ndarray:
    """Pixel values of a mask: palette indices or gray levels (other modes, or all with ``gray``,
    are converted to 8-bit gray as HSNet does)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if gray or image.mode not in ("P", "L"):
                image = image.convert("L")
            return np.asarray(image)
    except FileNotFoundError:
        raise MissingFileError(f"mask {path} does not exist; run `sansa prepare` to "
                               "check") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"mask {path} is unreadable ({exc}); replace or remove it") from exc


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
