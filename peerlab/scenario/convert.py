"""Conversion of YAML data to the scenario schema's types, reporting every problem.

:func:`convert` hands the work to ``msgspec.convert``; only when that fails does it walk the
value against the type to find every problem, with its key path, instead of the first. A
mapping converts as far as it can: a bad optional key is reported and left at its default, so
the checks of meaning can still look at the rest. Every message names the value and what was
expected: the parser's own words for a scalar of :mod:`~peerlab.scenario.scalars`, the type's
(and its ``msgspec.Meta`` bounds') for the others.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from peerlab.errors import ScenarioError
from peerlab.scenario.document import Document, KeyPath
from peerlab.scenario.scalars import WRITTEN, dec_hook, kind_of


class Problems:
    """The problems found in one document, each placed at its key path."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.found: list[tuple[KeyPath, str]] = []

    def add(self, path: KeyPath, reason: str) -> None:
        """Note what is wrong at ``path``."""
        if (path, reason) not in self.found:
            self.found.append((path, reason))

    def within(self, path: KeyPath) -> bool:
        """Whether anything at or inside ``path`` has a problem."""
        return any(p[: len(path)] == path for p, _ in self.found)

    def __len__(self) -> int:
        return len(self.found)

    def check(self) -> None:
        """Raise a :class:`ScenarioError` with every problem, in line order, if there is any."""
        if self.found:
            problems = [self.document.problem(path, reason) for path, reason in self.found]
            raise ScenarioError(problems=sorted(problems, key=lambda p: p.line or 0))


_FAILED = object()
_WHERE = re.compile(r" - at `\$[^`]*`$")


def convert(value: Any, tp: Any, path: KeyPath, problems: Problems) -> Any:
    """``value`` converted to ``tp``; if it does not convert, every problem with it is added to
    ``problems`` and the result is None (for a ``tp`` that cannot be None)."""
    out = _convert(value, tp, path, problems)
    return None if out is _FAILED else out


def require(document: Document, value: Any, tp: Any, path: KeyPath) -> Any:
    """``value`` (at ``path`` of ``document``) converted to ``tp``; a :class:`ScenarioError`
    with every problem if it does not convert."""
    problems = Problems(document)
    out = convert(value, tp, path, problems)
    problems.check()
    return out


def _convert(value: Any, tp: Any, path: KeyPath, problems: Problems) -> Any:
    try:
        return msgspec.convert(value, tp, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        error = _WHERE.sub("", str(exc))
    before = len(problems)
    struct = _choice(
        tp, value, dict, lambda t: isinstance(t, type) and issubclass(t, msgspec.Struct)
    )
    sequence = _choice(tp, value, list, lambda t: typing.get_origin(t) in (list, tuple))
    if struct is not None:
        out = _salvage(value, struct, path, problems)
    elif sequence is not None:
        _items(value, sequence, path, problems)
        out = _FAILED
    else:
        problems.add(path, error if _written(tp) else _expected(value, tp))
        out = _FAILED
    if len(problems) == before:  # a problem the walk cannot place further in
        problems.add(path, error)
    return out


def _items(value: list, tp: Any, path: KeyPath, problems: Problems) -> None:
    """The problems of each item of a list meant as ``tp`` (a list or fixed-length tuple)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list:
        args = args * len(value)
    elif len(value) != len(args):
        problems.add(path, f"expected exactly {len(args)} {_noun(args[0])}s, got {len(value)}")
        return
    for i, (item, item_tp) in enumerate(zip(value, args, strict=True)):
        _convert(item, item_tp, (*path, i), problems)


def _salvage(value: dict, struct: type[msgspec.Struct], path: KeyPath, problems: Problems) -> Any:
    """A struct from the keys of ``value`` that convert, the others left at their defaults;
    _FAILED if a required key is missing or bad."""
    fields = msgspec.structs.fields(struct)
    keys = [f.encode_name for f in fields]
    for key in value:
        if key not in keys:
            problems.add((*path, key), f"unknown key {key!r} (expected one of: {', '.join(keys)})")
    given: dict[str, Any] = {}
    whole = True
    for f in fields:
        if f.encode_name not in value:
            if f.required:
                problems.add(path, f"missing required key {f.encode_name!r}")
                whole = False
            continue
        out = _convert(value[f.encode_name], f.type, (*path, f.encode_name), problems)
        if out is not _FAILED:
            given[f.name] = out
        elif f.required:
            whole = False
    return struct(**given) if whole else _FAILED


def _options(tp: Any) -> tuple[Any, ...]:
    """The types a union allows (``tp`` alone if it is not a union)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _bare(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` constraints."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _choice(tp: Any, value: Any, shape: type, fits: Callable[[Any], bool]) -> Any:
    """The option of ``tp`` that a ``value`` of this ``shape`` (dict or list) is meant as."""
    if isinstance(value, shape):
        for option in _options(tp):
            if fits(_bare(option)):
                return _bare(option)
    return None


def _written(tp: Any) -> bool:
    """Whether ``tp`` is (or allows) a scalar written the scenario's way, whose parser's
    message says what was wrong."""
    return any(isinstance(t, type) and issubclass(t, WRITTEN) for t in map(_bare, _options(tp)))


def _expected(value: Any, tp: Any) -> str:
    options = [t for t in _options(tp) if t not in (type(None), msgspec.UnsetType)]
    wanted = " or ".join(_describe(t) for t in options)
    if any(type(value) in _kinds(t) for t in options):
        return f"expected {wanted}, got {value!r}"
    return f"expected {wanted}, got {kind_of(value)} {value!r}"


def _describe(tp: Any) -> str:
    """What a value of type ``tp`` is, for a message: ``an integer >= 1``, ``a mapping``..."""
    meta = _meta(tp)
    if meta is not None and meta.description:
        return meta.description
    tp = _bare(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " or ".join(
            repr(v).lower() if isinstance(v, bool) else repr(v) for v in typing.get_args(tp)
        )
    if origin in (list, tuple):
        (item, *_) = typing.get_args(tp)
        return f"a list of {_noun(item)}s"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "a mapping"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "text"
    if tp in (int, float):
        what = "an integer" if tp is int else "a number"
        if meta is not None and meta.ge is not None and meta.le is not None:
            return f"{what} in [{meta.ge}, {meta.le}]"
        if meta is not None and meta.ge is not None:
            return f"{what} >= {meta.ge}"
        return what
    return getattr(tp, "__name__", str(tp))


def _noun(tp: Any) -> str:
    return getattr(_bare(tp), "NOUN", "item")


def _meta(tp: Any) -> msgspec.Meta | None:
    if typing.get_origin(tp) is typing.Annotated:
        return next((m for m in tp.__metadata__ if isinstance(m, msgspec.Meta)), None)
    return None


def _kinds(tp: Any) -> tuple[type, ...]:
    """The Python types of the values ``tp`` takes before its constraints are applied."""
    tp = _bare(tp)
    if typing.get_origin(tp) is typing.Literal:
        return tuple(type(v) for v in typing.get_args(tp))
    if tp is float:
        return (int, float)
    return (typing.get_origin(tp) or tp,)
