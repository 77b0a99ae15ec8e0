"""Parsing of command-line values shared by every command: repeatable ``KEY=VALUE`` options
and comma-separated integer lists (one rule each)."""

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


def parse_int_list(text: str, what: str) -> list[int]:
    """``'5,1,5'`` -> ``[1, 5]`` (sorted, repeats dropped); ``what`` names the flag in errors."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserInputError(f"{what} {text!r} is not a list of integers; use e.g. 1,5") from None
    if not values:
        raise UserInputError(f"{what} {text!r} is empty; use e.g. 1,5")
    return sorted(dict.fromkeys(values))


def parse_shots(text: str) -> list[int]:
    """``--shots``: a list of positive integers such as ``1,5``."""
    shots = parse_int_list(text, "--shots")
    if any(s < 1 for s in shots):
        raise UserInputError(f"--shots {text!r} needs positive integers; use e.g. 1,5")
    return shots
