"""SHA-256 of large files (SAM2 checkpoints, adapter files), remembered in the user's cache.

Hashing a Hiera-L checkpoint takes seconds, and runs compare it on every load, so the hash is
remembered: one small JSON file per hashed file under :func:`hash_cache_dir`, named after the
file's resolved path. An entry is used only while the file's resolved path, size, modification
time (ns), inode, device and status-change time (ns) are unchanged; a file rewritten in place or
replaced by another (a new inode) is hashed again. Nothing is ever written next to the user's
file, and a corrupt, foreign or unreadable entry is ignored (the file is hashed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from sansa_cli.artifacts.files import write_bytes_atomic


def cache_dir() -> Path:
    """sansa's cache folder: ``$SANSA_CACHE``, else ``$XDG_CACHE_HOME/sansa``, else
    ``~/.cache/sansa``."""
    if env := os.environ.get("SANSA_CACHE"):
        return Path(env).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "sansa"
    return Path.home() / ".cache" / "sansa"


def hash_cache_dir() -> Path:
    """Where the remembered hashes live: ``cache_dir()/sha256``."""
    return cache_dir() / "sha256"


def _stamp(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "inode": stat.st_ino, "device": stat.st_dev, "ctime_ns": stat.st_ctime_ns}


def _entry(resolved: Path) -> Path:
    name = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()
    return hash_cache_dir() / f"{name}.json"


def _remembered(entry: Path, stamp: dict) -> str | None:
    """The entry's hash if it is well formed and its stamp equals ``stamp``."""
    try:
        saved = json.loads(entry.read_text(encoding="utf-8"))
        value = saved.pop("sha256")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    valid = (isinstance(value, str) and len(value) == 64
             and all(c in "0123456789abcdef" for c in value))
    return value if valid and saved == stamp else None


def _digest(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path``, from the cache when the file is unchanged.

    Raises ``OSError`` (e.g. ``FileNotFoundError``) when the file itself cannot be read; a cache
    that cannot be read or written only costs the time to hash.
    """
    resolved = Path(path).expanduser().resolve()
    stamp = _stamp(resolved)
    entry = _entry(resolved)
    value = _remembered(entry, stamp)
    if value is not None:
        return value
    value = _digest(resolved)
    if _stamp(resolved) == stamp:  # not changed while hashing: worth remembering
        with contextlib.suppress(OSError):
            write_bytes_atomic(entry, json.dumps({**stamp, "sha256": value}).encode("utf-8"))
    return value
