"""Run the ``sansa`` console entry point in-process and capture what a user would see."""

from __future__ import annotations

import sys

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
