"""Pickled data files from others (benchmark split lists, annotation tables), read as data only.

HSNet's COCO-20i split files and Matcher's LVIS tables are pickles. Plain ``pickle.load`` runs
whatever callable a file names (``__reduce__``), so a crafted file would run code. Here the
unpickler builds only containers and scalars: the pickle opcodes for dicts, lists, tuples,
strings, bytes, numbers, booleans and None need no global at all, and the few globals older
protocols use for data (``set``, ``frozenset``, ``bytearray``, ``complex``,
``collections.OrderedDict``, ``_codecs.encode`` with the latin-1 codec that protocol 2 writes
bytes with) are admitted. Any other global is refused before it is looked up, so nothing in the
file is imported or called.
"""

from __future__ import annotations

import codecs
import collections
import pickle
from pathlib import Path
from typing import Any

from sansa_cli.errors import DatasetError, MissingFileError


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocols 0 to 2 write bytes with; any codec but the one they name is refused."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with codec {str(encoding)[:40]!r} is not "
                                     "how pickle writes bytes")
    return codecs.encode(text, "latin1")


# (module, name) -> the object the unpickler may use. Python 2 pickles name `__builtin__`.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(module, cls.__name__): cls
       for module in ("builtins", "__builtin__")
       for cls in (set, frozenset, bytearray, complex)},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global that data files never need."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.global_name = f"{module}.{name}"


class DataUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that admits only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not data")


def load_data_pickle(path: str | Path, what: str, fix: str = "replace it with the original file"
                     ) -> Any:
    """The content of the pickle at ``path``, unpickled as data only.

    ``what`` names the file in errors (e.g. ``"split file"``), ``fix`` says how to get a good
    one. The result equals what ``pickle.load`` gives for a file of containers and scalars.

    Raises:
        MissingFileError: ``path`` does not exist.
        DatasetError: the file names a global other than :data:`ALLOWED_GLOBALS` (nothing in it
            was imported or run), or is not a readable pickle.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return DataUnpickler(f).load()
    except FileNotFoundError:
        raise MissingFileError(f"{what} {path} does not exist; check the path") from None
    except RefusedGlobal as exc:
        raise DatasetError(
            f"{what} {path} refers to the global {exc.global_name}, which a data file never "
            "needs (it could run code), so it was not loaded; "
            f"{fix}") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, LookupError, MemoryError, RecursionError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:160] or type(exc).__name__
        raise DatasetError(f"{what} {path} is unreadable ({reason}); {fix}") from exc
