"""The project's exception hierarchy.

Every error peerlab raises on purpose derives from :class:`PeerlabError`. Protocol errors are
split, as h11 splits them, by whose fault they are: :class:`LocalProtocolError` when this member
tried something illegal, :class:`RemoteProtocolError` when the peer sent something illegal. A
remote error costs the connection it arrived on, never the member.
"""

from __future__ import annotations

from collections.abc import Iterable


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


class HandshakeError(RemoteProtocolError):
    """The peer's handshake was missing, late, or incompatible."""


class ConfigError(PeerlabError, ValueError):
    """A member setting out of range; ``field`` names the setting, ``problem`` says what is
    wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"MemberConfig.{field} {problem}")
        self.field = field
        self.problem = problem


class UnknownMember(PeerlabError, LookupError):
    """A member id that is not (or no longer) running in the network it was asked of."""


class ScenarioError(PeerlabError):
    """An invalid scenario: carries the file, line and key path of the problem."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.reason = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        key = f"{path}: " if path else ""
        super().__init__(f"{where}{key}{message}")


class ResultsError(PeerlabError):
    """A file that is not a readable peerlab results file."""


class CampaignError(ScenarioError):
    """An invalid campaign file, grid point or folder; where a grid point is to blame, its
    ``path`` names the point before the key path."""
