"""The record a ``sansa predict`` run keeps in its output folder, which ``--resume`` reads.

``OUT/.sansa-predict.jsonl`` starts with the run's settings, then gets one line per target
once every output of that target is written (outputs are written atomically, so a target with
a line has whole files). A run killed at any point leaves a journal whose targets are done;
``--resume`` skips those whose outputs still exist with the sizes recorded, redoes the others,
and refuses settings that would make old and new outputs disagree. Summaries
(``predictions.json``, the review page, label collections) are rebuilt from the journal, so
they cover the targets of every run that wrote into the folder.

Only small rows are kept in memory (an offset per target); the rows themselves stay on disk.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator

from sansa_cli.errors import UserInputError

NAME = ".sansa-predict.jsonl"


class Journal:
    """Append-only record of finished targets; keyed by each target's output name."""

    def __init__(self, out: Path, settings: dict[str, Any], resume: bool):
        self.path = Path(out) / NAME
        self._offsets: dict[str, int] = {}
        self._outputs: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._settings = settings
        self._file = None  # opened at the first record: a run that fails before writes none
        self._fresh = not (resume and self.path.exists())
        if not self._fresh:
            self._read(settings)

    def _read(self, settings: dict[str, Any]) -> None:
        from sansa_cli.evaluation.resume import read_json_lines

        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # a line torn by a kill: cut it
            data = data[:data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(data))
        raw = data.split(b"\n")
        lines = [line.decode("utf-8", "replace") for line in raw]
        rows = read_json_lines(self.path, lines, "delete it to start over (or drop --resume)")
        if not rows or not isinstance(rows[0], dict) or "settings" not in rows[0]:
            raise UserInputError(f"{self.path} is not a sansa predict journal; delete it to "
                                 "start over")
        _check_same(rows[0]["settings"], settings, self.path)
        starts, offset = [], 0
        for line, text in zip(raw, lines):
            if text.strip():  # the lines read_json_lines parsed (no torn tail is left)
                starts.append(offset)
            offset += len(line) + 1
        for start, row in zip(starts, rows):
            if "key" in row:
                self._offsets[row["key"]] = start
                self._outputs[row["key"]] = row.get("outputs", {})

    def has_rows(self) -> bool:
        """Whether an earlier run recorded any finished target."""
        return bool(self._offsets)

    def done(self, key: str, planned: list[Path], out: Path) -> bool:
        """Whether ``key`` was finished by an earlier run and each of its ``planned`` outputs
        is on disk with the size recorded then."""
        recorded = self._outputs.get(key)
        if recorded is None:
            return False
        for path in planned:
            rel = path.relative_to(out).as_posix()
            try:
                if rel not in recorded or path.stat().st_size != recorded[rel]:
                    return False
            except OSError:
                return False
        return True

    def record(self, key: str, row: dict[str, Any], outputs: list[Path], out: Path) -> None:
        """Add a finished target: its summary ``row`` and the sizes of its ``outputs``."""
        sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in outputs}
        with self._lock:
            if self._file is None:
                self._open()
            self._offsets[key] = self._file.tell()
            self._outputs[key] = sizes
            self._append({"key": key, "outputs": sizes, "row": row})

    def _open(self) -> None:
        if self._fresh:  # a new run replaces an earlier run's journal
            self._file = open(self.path, "wb")
            self._append({"settings": self._settings})
        else:
            self._file = open(self.path, "ab")

    def _append(self, value: dict) -> None:
        from sansa_cli.artifacts.files import finite_json

        self._file.write((finite_json(value, indent=None) + "\n").encode())
        self._file.flush()

    def rows(self, keys: list[str]) -> Iterator[dict]:
        """The rows of ``keys`` in that order (targets without a row are left out)."""
        if self._fresh and self._file is None:  # nothing recorded by this run
            return
        if self._file is not None:
            self._file.flush()
        with open(self.path, "rb") as f:
            for key in keys:
                offset = self._offsets.get(key)
                if offset is None:
                    continue
                f.seek(offset)
                yield json.loads(f.readline())["row"]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _check_same(old: dict, new: dict, path: Path) -> None:
    """Refuse to resume with settings that change outputs (references, model, precision...)."""
    new = json.loads(json.dumps(new))
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise UserInputError(
                f"--resume: {key} was {old.get(key)!r} in the run that wrote {path.parent}, "
                f"now {new.get(key)!r}; resume with the same settings, or write to another "
                "--out folder")
