"""Where SAM2 checkpoints live, and fetching the stock ones from Meta's public host."""

from __future__ import annotations

import os
from pathlib import Path

from sansa_cli.core.sam2_base import STOCK_MODELS, BaseModelSpec
from sansa_cli.errors import CheckpointError, MissingFileError

META_HOST = "https://dl.fbaipublicfiles.com/segment_anything_2"
# Known SHA-256 of stock checkpoints; a value here is enforced after download. Meta publishes none,
# so only the byte count the server announces is checked unless an entry is added.
KNOWN_SHA256: dict[str, str] = {}


def checkpoint_dir() -> Path:
    """``$SANSA_CHECKPOINTS``, else the ``checkpoints/`` folder of a source checkout, else
    ``~/.cache/sansa/checkpoints``."""
    if env := os.environ.get("SANSA_CHECKPOINTS"):
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "checkpoints"
    if checkout.is_dir():
        return checkout
    return Path.home() / ".cache" / "sansa" / "checkpoints"


def stock_url(name: str) -> str:
    """Meta's URL for a stock checkpoint; ``$SANSA_SAM2_URL`` replaces the host (mirrors)."""
    _config, filename, release = STOCK_MODELS[name]
    base = os.environ.get("SANSA_SAM2_URL", META_HOST).rstrip("/")
    return f"{base}/{release}/{filename}"


def sam2_checkpoint(spec: BaseModelSpec, explicit: str | Path | None = None,
                    download: bool = True) -> Path:
    """The checkpoint file for ``spec``: ``explicit`` if given, else ``checkpoints/<file>``,
    downloaded first when missing and ``spec`` is a stock model."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise MissingFileError(
                f"SAM2 checkpoint {explicit} does not exist; check --sam2-checkpoint")
        return path
    path = checkpoint_dir() / spec.checkpoint_filename
    if path.is_file():
        return path
    if not spec.is_stock:
        raise CheckpointError(
            f"no checkpoint for the SAM2 config {spec.config_path}; pass --sam2-checkpoint FILE "
            f"or place it at {path}"
        )
    if not download:
        raise CheckpointError(
            f"SAM2 checkpoint {path} is missing; download {stock_url(spec.name)} and place it there"
        )
    from sansa_cli.artifacts.download import download as fetch

    return fetch(stock_url(spec.name), path, sha256=KNOWN_SHA256.get(spec.name))
