"""The scalars a scenario writes its own way (``5ms``, ``100Mbps``, member names): small
``str`` and ``float`` subclasses that msgspec parses through :func:`dec_hook`, and their plain
forms for the validated scenario."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import msgspec

from peerlab.scenario.document import KeyPath
from peerlab.units import parse_bandwidth, parse_duration
from peerlab.wire import member_id_problem


class Name(str):
    """A non-empty name, written as text or a number."""

    NOUN = "name"

    @classmethod
    def parse(cls, value: object) -> Self:
        """The name ``value`` writes; :class:`ValueError` says why it is not one."""
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise ValueError(f"expected a non-empty name, got {kind_of(value)} {value!r}")
        return cls(value)


class MemberName(Name):
    """A name that can be a member id on the wire."""

    NOUN = "member name"

    @classmethod
    def parse(cls, value: object) -> Self:
        """The member name ``value`` writes; :class:`ValueError` says why it is not one."""
        name = super().parse(value)
        problem = member_id_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name


class NewMember(MemberName):
    """The name of a member that does not exist yet (one that joins)."""


class Text(str):
    """Free text; a number written there is taken as its text."""

    @classmethod
    def parse(cls, value: object) -> Self:
        """The text ``value`` writes; :class:`ValueError` if it is not a scalar."""
        if not isinstance(value, str | int | float):
            raise ValueError(f"expected text, got {kind_of(value)} {value!r}")
        return cls(value)


class Duration(float):
    """Seconds, written as ``5ms``, ``2s``, ``1m`` or a plain number."""

    @classmethod
    def parse(cls, value: object) -> Self:
        """The duration ``value`` writes; :class:`ValueError` says why it is not one."""
        return cls(parse_duration(value))


class Bandwidth(float):
    """Bits per second, written as ``100Mbps``, ``512kbps`` or a plain number."""

    @classmethod
    def parse(cls, value: object) -> Self:
        """The bandwidth ``value`` writes; :class:`ValueError` says why it is not one."""
        return cls(parse_bandwidth(value))


WRITTEN = (Name, Text, Duration, Bandwidth)


def dec_hook(tp: type, value: Any) -> Any:
    """msgspec's hook for the scalars a scenario writes its own way."""
    if isinstance(tp, type) and issubclass(tp, WRITTEN):
        return tp.parse(value)
    raise NotImplementedError(f"no conversion to {tp!r}")


def plain(value: Any) -> Any:
    """``value`` with every struct a dict (keys as written) and every written scalar a plain
    ``str`` or ``float``: what the runner and the results hold."""
    return msgspec.to_builtins(value, enc_hook=_plain_scalar)


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return float(value)
    raise NotImplementedError(f"no plain form of {type(value).__name__}")


def names_in(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, MemberName]]:
    """Every member name in a converted value, with its key path below ``value``."""
    if isinstance(value, MemberName):
        yield path, value
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from names_in(item, (*path, i))
    elif isinstance(value, msgspec.Struct):
        for f in msgspec.structs.fields(value):
            yield from names_in(getattr(value, f.name), (*path, f.encode_name))


def kind_of(value: Any) -> str:
    """What ``value`` is, for a message: ``a mapping``, ``a string``, ``an integer``..."""
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), "a value")
