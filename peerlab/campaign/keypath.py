"""Key paths into a scenario document, written as scenario errors print them:
``topology.generator.degree``, ``events[2].traffic.count``."""

from __future__ import annotations

import re
from typing import Any

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_WHOLE = re.compile(rf"{_NAME}(?:\.{_NAME}|\[\d+\])*")
_STEP = re.compile(rf"({_NAME})|\[(\d+)\]")

KeyPath = tuple[str | int, ...]


def parse_key_path(text: str) -> KeyPath:
    """The steps of a key path; :class:`ValueError` if ``text`` is not one."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a key path (expected names joined by dots, list items as [N], "
            "e.g. topology.generator.degree or events[0].at)"
        )
    return tuple(name if name else int(index) for name, index in _STEP.findall(text))


def format_key_path(path: KeyPath) -> str:
    """A key path as text, the inverse of :func:`parse_key_path`."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def set_key_path(document: dict[str, Any], path: KeyPath, value: Any) -> list[str]:
    """Set ``path`` in ``document`` to ``value``, making the missing mappings on the way.

    Returns the key paths of the mappings it made. :class:`ValueError` says why the path cannot
    be set (it goes through something that is not a mapping or list, or past a list's end).
    """
    made: list[str] = []
    node: Any = document
    for depth, step in enumerate(path):
        where = format_key_path(path[:depth]) or "the scenario"
        if isinstance(step, int):
            if not isinstance(node, list):
                raise ValueError(f"{where} is not a list, so it has no item [{step}]")
            if step >= len(node):
                raise ValueError(f"{where} has {len(node)} item(s), so no item [{step}]")
        elif not isinstance(node, dict):
            raise ValueError(f"{where} is not a mapping, so it has no key {step!r}")
        elif step not in node and depth < len(path) - 1:
            node[step] = {}
            made.append(format_key_path(path[: depth + 1]))
        if depth == len(path) - 1:
            node[step] = value
        else:
            node = node[step]
    return made
