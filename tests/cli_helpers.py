"""Run the ``sansa`` console entry point in-process and capture what a user would see."""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from pathlib import Path

import pytest


def run_sansa(args, capsys, monkeypatch) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``sansa ARGS`` through the real entry point."""
    from sansa_cli.cli.app import main

    monkeypatch.setattr(sys, "argv", ["sansa", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@contextlib.contextmanager
def read_only_folder(path: Path):
    """A folder this process cannot create files in. Root ignores permission bits, so as root
    the folder is made immutable (Linux ``chattr +i``) instead."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
        return
    _immutable(path, True)
    try:
        yield path
    finally:
        _immutable(path, False)


def _immutable(path: Path, on: bool) -> None:
    import fcntl

    get_flags, set_flags, immutable = 0x80086601, 0x40086602, 0x10  # linux/fs.h
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, get_flags, struct.pack("i", 0)))[0]
        fcntl.ioctl(fd, set_flags, struct.pack("i", flags | immutable if on else
                                               flags & ~immutable))
    except OSError as exc:
        pytest.skip(f"running as root, where permission bits do not stop writes, on a "
                    f"filesystem without the immutable flag ({exc})")
    finally:
        os.close(fd)
