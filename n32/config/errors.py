"""The one error of the configuration: ``<file>: <dotted.key>: <what is wrong>`` on one line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "a mapping"}


class ConfigError(ValueError):
    """``<file>: <key>: <problem>`` on one line (newlines in the problem are folded)."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, " ".join(str(problem).split())
        super().__init__(f"{self.file}: {self.key}: {self.problem}")


def type_name(typ: Any) -> str:
    return _TYPE_NAMES.get(typ, getattr(typ, "__name__", str(typ)))


def show(value: Any) -> str:
    """A value as quoted in an error: its repr, cut at 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
