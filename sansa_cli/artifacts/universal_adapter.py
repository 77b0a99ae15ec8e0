"""The default model: the SANSA authors' universal promptable adapter, fetched and converted once.

``sansa predict`` without ``--adapters`` uses it. The authors publish ``sansa_universal.pth`` as a
GitHub release asset (referenced by their ``hubconf.py``); it is downloaded into the checkpoint
folder, converted to ``sansa_universal.safetensors`` with :mod:`sansa_cli.artifacts.official`
(read safely, weights checked, the base's architecture fingerprint recorded), and the download is
removed. Its base model, SAM 2.0 Hiera-L, is fetched by the usual checkpoint path.
"""

from __future__ import annotations

import os
from pathlib import Path

from sansa_cli.errors import DownloadError, MissingFileError

UNIVERSAL_URL = (
    "https://github.com/ClaudiaCuttano/SANSA/releases/download/v1.0.0/sansa_universal.pth"
)
UNIVERSAL_FILE = "sansa_universal.safetensors"
RELEASE_FILE = "sansa_universal.pth"


def universal_url() -> str:
    """The release asset's URL; ``$SANSA_UNIVERSAL_URL`` replaces it (mirrors, offline hosts)."""
    return os.environ.get("SANSA_UNIVERSAL_URL", UNIVERSAL_URL)


def ensure_default_adapters(download: bool = True, base_model: str | None = None) -> Path:
    """The converted universal adapter file in :func:`checkpoint_dir`, made on first use.

    A ``sansa_universal.pth`` placed in the checkpoint folder by hand is converted (and kept);
    otherwise it is downloaded when ``download`` is true. ``base_model`` overrides the recorded
    base (tests point it at a tiny SAM2 config); the default is the release's SAM 2.0 Hiera-L.
    """
    from sansa_cli.artifacts.official import RELEASE_BASE_MODEL, convert_official
    from sansa_cli.artifacts.sam2_checkpoints import checkpoint_dir

    folder = checkpoint_dir()
    out = folder / UNIVERSAL_FILE
    if out.is_file():
        return out
    # A known Hiera-L file: converted for that base rather than inferred, so a download that is
    # not the release's universal model is refused naming the shapes that do not fit.
    base_model = base_model or RELEASE_BASE_MODEL
    placed = folder / RELEASE_FILE
    if placed.is_file():
        return convert_official(placed, out, base_model)
    from sansa_cli.core.sam2_base import resolve_base

    sam2_file = resolve_base(base_model).checkpoint_filename
    by_hand = (f"download {universal_url()} and place it at {placed} (converted on first use); "
               f"its base SAM2 also needs {folder / sam2_file}")
    if not download:
        raise MissingFileError(f"the default SANSA model is missing; {by_hand}, or pass --adapters")
    from sansa_cli.artifacts.download import download as fetch

    partial = folder / f".{RELEASE_FILE}.download"
    try:
        fetch(universal_url(), partial)
    except DownloadError as exc:
        cause = exc.__cause__
        reason = getattr(cause, "reason", cause) if cause else "incomplete or damaged"
        raise DownloadError(
            f"could not download the default SANSA model ({reason}); "
            f"{by_hand}, or pass --adapters FILE"
        ) from exc
    try:
        return convert_official(partial, out, base_model)
    finally:
        partial.unlink(missing_ok=True)
