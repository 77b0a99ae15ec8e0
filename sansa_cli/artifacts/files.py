"""Small file helpers: atomic writes, output plans that never overwrite inputs, content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; it replaces ``dest`` only if the block succeeds.

    Readers never see a half-written file, and a failure leaves nothing behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, remembered in ``<file>.sha256`` while size and mtime are unchanged."""
    path = Path(path)
    stat = path.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    sidecar = path.with_name(path.name + ".sha256")
    try:
        saved_stamp, saved_hash = sidecar.read_text().split()
        if saved_stamp == stamp:
            return saved_hash
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only folder only loses the cache
        write_bytes_atomic(sidecar, f"{stamp} {value}\n".encode())
    return value


def plan_outputs(out: Path, targets: list[Path], suffixes: tuple[str, ...], inputs: list[Path],
                 extra: tuple[str, ...] = ()) -> dict[Path, tuple[Path, ...]]:
    """target -> ``out/<stem><suffix>.png`` for each suffix, checked before any work.

    Refuses an ``out`` that is a file, two targets that would share an output name, and any
    output (``extra`` names more files in ``out``) that would overwrite one of ``inputs``.
    """
    from sansa_cli.errors import UserInputError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a folder for the outputs")
    plan: dict[Path, tuple[Path, ...]] = {}
    seen: dict[str, Path] = {}
    for target in targets:
        if target.stem in seen:
            raise UserInputError(
                f"targets {seen[target.stem]} and {target} would both be written as "
                f"{target.stem}{suffixes[0]}.png; rename one or run them separately")
        seen[target.stem] = target
        plan[target] = tuple(out / f"{target.stem}{suffix}.png" for suffix in suffixes)
    protected = {Path(p).resolve() for p in inputs}
    for path in [*(p for paths in plan.values() for p in paths), *(out / name for name in extra)]:
        if path.resolve() in protected:
            raise UserInputError(f"writing {path} would overwrite an input file; "
                                 "choose another --out folder")
    return plan


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` if a run can create and write files in it; checked before any work.

    Refuses an existing file, a path below a file, and a folder (or the nearest existing parent
    of one to be created) that this process cannot write, naming ``flag``.
    """
    from sansa_cli.errors import UserInputError

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{flag} {path} is a file; give a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"{flag} {path} lies below the file {existing}; give a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"{flag} {path} is not writable ({existing} is read-only for this "
                             "user); choose a folder you can write")
    return path


def finite_json(payload, indent: int | None = 2) -> str:
    """``payload`` as JSON text in which NaN and infinities become null (standard JSON has
    neither, and strict readers refuse them)."""
    import json
    import math

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(payload), indent=indent, allow_nan=False)
