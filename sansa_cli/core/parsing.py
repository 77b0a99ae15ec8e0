"""Parsing of repeatable ``KEY=VALUE`` command-line options (one rule for every command)."""

from __future__ import annotations

import json
from typing import Any

from sansa_cli.errors import UserInputError


def key_values(items: list[str] | None, flag: str, example: str = "") -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``: values are JSON when they parse as JSON,
    strings otherwise. A malformed item is a one-line error naming ``flag``."""
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            hint = f"; use e.g. {flag} {example}" if example else ""
            raise UserInputError(f"{flag} {item!r} is not KEY=VALUE{hint}")
        try:
            values[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            values[key.strip()] = value
    return values
