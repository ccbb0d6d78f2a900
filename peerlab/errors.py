"""The project's exception hierarchy.

Every error peerlab raises on purpose derives from :class:`PeerlabError`. Protocol errors are
split, as h11 splits them, by whose fault they are: :class:`LocalProtocolError` when this member
tried something illegal, :class:`RemoteProtocolError` when the peer sent something illegal. A
remote error costs the connection it arrived on, never the member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def name_list(names: Iterable[str], most: int = 12) -> str:
    """Names for an error message: sorted, at most ``most`` of them, "none" if there are none."""
    ordered = sorted(names)
    return ", ".join(ordered[:most]) + (", ..." if len(ordered) > most else "") or "none"


class PeerlabError(Exception):
    """Base class of every error peerlab raises deliberately."""


class ProtocolError(PeerlabError):
    """A violation of the peerlab wire protocol."""


class LocalProtocolError(ProtocolError):
    """This member tried to do something the protocol forbids (e.g. encode an oversize frame)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes or messages the protocol forbids."""


class FrameTooLarge(RemoteProtocolError):
    """A frame's length prefix exceeds the configured maximum frame size."""


class MalformedMessage(RemoteProtocolError):
    """A frame body that does not decode to a known message with well-typed fields."""


class TruncatedFrame(RemoteProtocolError):
    """The stream ended in the middle of a frame."""


class TooManyMembers(RemoteProtocolError):
    """An advert named a member id beyond the number of ids this process will track."""


class TooManyNames(RemoteProtocolError):
    """A peer named more member ids this process had never seen than its budget allows (ids
    invented to fill a member's memory)."""


class HandshakeError(RemoteProtocolError):
    """The peer's handshake was missing, late, or incompatible."""


class HandshakeTimeout(HandshakeError):
    """The peer said no Hello within the handshake deadline."""


class TooSlow(RemoteProtocolError):
    """A frame came in slower than the minimum rate (bytes dripped to hold a connection)."""


class ConfigError(PeerlabError, ValueError):
    """A member setting out of range; ``field`` names the setting, ``problem`` says what is
    wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"MemberConfig.{field} {problem}")
        self.field = field
        self.problem = problem


class UnknownMember(PeerlabError, LookupError):
    """A member id that is not (or no longer) running in the network it was asked of."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: what is wrong (``reason``) and where (``file``,
    ``line`` and key ``path``, each None when unknown)."""

    reason: str
    file: str | None = None
    line: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.reason}"


class ScenarioError(PeerlabError):
    """An invalid scenario: every :class:`Problem` found in it (``problems``), one line each
    in its text. Made from one problem (``message``, ``file``, ``line``, ``path``) or from
    ``problems``; ``file``, ``line``, ``path`` and ``reason`` are the first problem's."""

    def __init__(
        self,
        message: str = "",
        *,
        file: str | None = None,
        line: int | None = None,
        path: str | None = None,
        problems: Iterable[Problem] = (),
    ) -> None:
        self.problems = tuple(problems) or (Problem(message, file, line, path),)
        first = self.problems[0]
        self.file = first.file
        self.line = first.line
        self.path = first.path
        self.reason = first.reason
        super().__init__("\n".join(map(str, self.problems)))


class ResultsError(PeerlabError):
    """A file that is not a readable peerlab results file."""


class CampaignError(ScenarioError):
    """An invalid campaign file, grid point or folder; where a grid point is to blame, its
    ``path`` names the point before the key path."""
