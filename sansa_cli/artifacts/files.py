"""Small file helpers: atomic writes, output folders (:func:`check_output_dir`,
:func:`output_lock`), output plans that never overwrite inputs, content hashes, strict JSON.

Every file is written through :func:`atomic_path`: a hidden temporary sibling
``.<name>.<host>-<pid>-<random>.part``, renamed over ``<name>`` when complete. It is created with
mode 0666 so the kernel applies the umask, as for any file the user writes. A run killed mid-write
leaves its ``.part`` behind; the next write of the same file on this machine removes the leftovers
whose process is gone (a live writer's file is never touched).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import threading
from pathlib import Path
from typing import Iterator

#: the advisory lock file :func:`output_lock` keeps in an output folder while a run writes it
LOCK_NAME = ".sansa.lock"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
_PART = re.compile(r"\.(?P<dest>.+)\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.part")
_leftovers: dict[Path, dict[str, list[tuple[str, int]]]] = {}  # folder -> dest -> (part, pid)
_leftovers_lock = threading.Lock()


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; it replaces ``dest`` only if the block succeeds.

    Readers never see a half-written file, and a failure leaves nothing behind. The file exists
    (empty) when the block starts; write it in place (do not replace it) to keep its mode.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(dest)
    tmp_path = _create_part(dest)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def _create_part(dest: Path) -> Path:
    """A new empty ``.part`` file beside ``dest``, named after this host and process."""
    while True:
        tmp = dest.with_name(f".{dest.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.part")
        try:  # O_EXCL: never an existing file or link; 0o666: the kernel applies the umask
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _remove_leftovers(dest: Path) -> None:
    """Delete the ``.part`` files of ``dest`` left by killed processes of this host.

    Each folder is listed once per process (a folder of many outputs is not listed per file).
    """
    with _leftovers_lock:
        if dest.parent not in _leftovers:
            _leftovers[dest.parent] = _list_parts(dest.parent)
        parts = _leftovers[dest.parent].pop(dest.name, [])
    for name, pid in parts:
        if pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):  # e.g. another user's, in a sticky folder
                (dest.parent / name).unlink(missing_ok=True)


def _list_parts(folder: Path) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries]
    except OSError:  # a folder that cannot be listed keeps its leftovers
        return found
    for name in names:
        match = _PART.fullmatch(name)
        if match and match["host"] == _HOST:
            found.setdefault(match["dest"], []).append((name, int(match["pid"])))
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (always True where that cannot be asked safely)."""
    if os.name == "nt":  # os.kill on Windows terminates the process: never ask
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to another user
        return True
    return True


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def plan_outputs(out: Path, targets: list[Path], suffixes: tuple[str, ...], inputs: list[Path],
                 extra: tuple[str, ...] = (), names: dict[Path, str] | None = None,
                 extensions: tuple[str, ...] | None = None) -> dict[Path, tuple[Path, ...]]:
    """target -> ``out/<name><suffix><extension>`` for each suffix, checked before any work.

    ``names`` gives each target's output name (default: its stem; ``a/b`` mirrors subfolders),
    ``extensions`` each suffix's extension (default ``.png``). Refuses an ``out`` that is a
    file, two targets that would share an output name, and any output (``extra`` names more
    files in ``out``) that would overwrite one of ``inputs``.
    """
    from sansa_cli.errors import UserInputError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a folder for the outputs")
    extensions = extensions or (".png",) * len(suffixes)
    plan: dict[Path, tuple[Path, ...]] = {}
    seen: dict[str, Path] = {}
    for target in targets:
        name = names[target] if names else target.stem
        if name in seen:
            raise UserInputError(
                f"targets {seen[name]} and {target} would both be written as "
                f"{name}{suffixes[0]}{extensions[0]}; rename one or run them separately")
        seen[name] = target
        plan[target] = tuple(out / f"{name}{suffix}{ext}"
                             for suffix, ext in zip(suffixes, extensions))
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
    try:
        existing = next(p for p in (path, *path.parents) if p.exists())
    except PermissionError as exc:  # a parent folder this user may not enter
        raise UserInputError(f"{flag} {path} cannot be reached ({exc.strerror}: "
                             f"{exc.filename}); choose a folder you can write") from None
    if existing == path and not path.is_dir():
        raise UserInputError(f"{flag} {path} is a file; give a folder")
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


@contextlib.contextmanager
def output_lock(path: str | Path, flag: str = "--out") -> Iterator[Path]:
    """Hold output folder ``path`` (created if needed) for one run; yields it.

    A second run on the same folder is refused with one line naming ``flag`` and the holder's
    pid. The lock is an advisory ``fcntl.flock`` on ``<path>/.sansa.lock`` (removed at the end;
    the kernel releases it if the run is killed); where ``fcntl`` does not exist (Windows) runs
    are not locked. Folders the block leaves empty and that this call created are removed, so a
    run that fails writes nothing. The folder is checked with :func:`check_output_dir`; call that
    too before any long work, so a bad folder is refused before the work, not after.
    """
    folder = check_output_dir(path, flag)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _flock(folder / LOCK_NAME, f"{flag} {path}"):
            yield folder
    finally:
        for made in created:  # deepest first; only empty folders go
            with contextlib.suppress(OSError):
                made.rmdir()


@contextlib.contextmanager
def _flock(lock: Path, what: str) -> Iterator[None]:
    fd = _acquire(lock, what)
    try:
        yield
    finally:
        if fd is not None:
            lock.unlink(missing_ok=True)  # before unlocking, so a waiting opener sees it gone
            os.close(fd)


def _acquire(lock: Path, what: str) -> int | None:
    """The open, locked ``lock`` file holding this pid; None where files cannot be locked
    (no ``fcntl``, or a file system without ``flock``)."""
    try:
        import fcntl
    except ImportError:
        return None
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            from sansa_cli.errors import UserInputError

            raise UserInputError(f"{what} is in use by another sansa run (pid {holder}); wait "
                                 "for it or choose another folder") from None
        except OSError:
            os.close(fd)
            return None
        if _same_file(fd, lock):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # the holder removed it as we opened it: lock the current file


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
