"""The per-episode log of an evaluation: append-only JSON lines, the basis of resuming.

Line 1 is a header holding the hash of the settings that decide every episode's numbers (model,
checkpoint, dataset and its options, split, seed, canvas, prompt, precision). Each further line is
one finished episode, written and fsync'd as soon as it is done, keyed by model run, fold, shot,
episode index and the hash of its task (episode list + adapter file). A restart reads the log,
refuses a log written under other settings, and skips the episodes already there; a torn last line
(a crash mid-write) is dropped. Results are always computed from the log, so an interrupted and
resumed evaluation gives exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from sansa_cli.errors import UserInputError

FORMAT = "sansa-eval-episodes"
VERSION = 1


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def row_key(row: dict[str, Any]) -> tuple:
    return (row["model"], row["fold"], row["shot"], row["index"], row["task"])


class EpisodeLog:
    """``<out>/episodes.jsonl``: read on every process, written by the main process only."""

    def __init__(self, path: Path, settings: dict[str, Any]):
        self.path = Path(path)
        self.settings = settings
        self.hash = settings_hash(settings)

    def read(self) -> list[dict[str, Any]]:
        """The finished episodes of a previous run with the same settings (none if no log)."""
        if not self.path.is_file():
            return []
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except ValueError:
            header = {}
        if header.get("format") != FORMAT:
            raise UserInputError(f"{self.path} is not a sansa evaluation log; choose another "
                                 "--out folder or remove the file")
        if header.get("settings_hash") != self.hash:
            changed = sorted(k for k in set(self.settings) | set(header.get("settings", {}))
                             if self.settings.get(k) != header.get("settings", {}).get(k))
            raise UserInputError(
                f"{self.path} holds episodes of an evaluation with other settings "
                f"({', '.join(changed) or 'format'}); pass another --out folder or delete it")
        return read_json_lines(self.path, lines[1:], "delete the file to start over", first=2)

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append finished episodes and fsync, so a crash loses at most the episode in flight."""
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a+b") as f:
            if new:
                header = {"format": FORMAT, "version": VERSION, "settings_hash": self.hash,
                          "settings": self.settings}
                f.write((json.dumps(header, sort_keys=True, default=str) + "\n").encode())
            else:
                _drop_torn_tail(f)
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())


def read_json_lines(path: Path, lines: list[str], fix: str, first: int = 1) -> list[Any]:
    """The values of JSON ``lines`` (numbered from ``first`` in ``path``), blank ones skipped.

    A last line that does not parse was torn by a crash mid-write and is dropped; a bad line
    anywhere else is one error naming it, ending with ``fix``.
    """
    rows = []
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number != first + len(lines) - 1:  # only the last line can be torn by a crash
                raise UserInputError(f"{path} line {number} is corrupt; {fix}") from None
    return rows


def _drop_torn_tail(f) -> None:
    """Cut a last line left incomplete by a crash (the file must end with a newline)."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - 65536))
    tail = f.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    f.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)
    f.seek(0, os.SEEK_END)
