"""What a member holds remote peers to: their standing, and what it learned of addresses.

In the spirit of Bitcoin Core's misbehaviour scores and discouragement, and libp2p's resource
manager, a member keeps per remote *address* (a peer's host: its IP, or a simulated member's
address) a score that misbehaviour raises and time lets decay; past the threshold the address
is refused for a while. Connection and buffer limits are the member's; this module keeps the
books they are checked against.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from peerlab.errors import TooManyNames


def host_of(address: str) -> str:
    """The part of a remote address that names the peer's machine: ``127.0.0.5`` of
    ``127.0.0.5:9000``, ``::1`` of ``[::1]:9000``; an address with no port stays whole."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address
    return host.strip("[]")


class NameBudget:
    """How many member ids never seen before one peer may still make this process number: up
    to ``size``, regained at ``rate`` a second (a network's churn brings new ids slowly; a peer
    inventing them to fill memory brings them all at once)."""

    __slots__ = ("at", "left", "peer", "rate", "size")

    def __init__(self, peer: str, size: int, rate: float, now: float) -> None:
        self.peer = peer
        self.size = size
        self.rate = rate
        self.left = float(size)
        self.at = now

    def refill(self, now: float) -> None:
        """Regain what the time since the last refill allows."""
        self.left = min(self.size, self.left + (now - self.at) * self.rate)
        self.at = now

    def take(self, new: int, origin: str) -> None:
        """Spend ``new`` ids on an advert of ``origin``; :class:`TooManyNames` if they are more
        than what is left."""
        if new > self.left:
            raise TooManyNames(
                f"{self.peer!r} named {new} new member ids in the advert of {origin!r}, with "
                f"{int(self.left)} left of its budget of {self.size}"
            )
        self.left -= new


@dataclass(slots=True)
class _Score:
    points: float
    at: float  # when ``points`` was last brought up to date
    until: float = 0.0  # refused until then


#: Points for what a remote peer did wrong; :attr:`Standing.threshold` of them discourages it.
PROTOCOL_ERROR = 25  # bytes the protocol forbids
HANDSHAKE_TIMEOUT = 10  # a connection that never said Hello
SLOW_FRAME = 25  # a frame dripped in slower than the minimum rate
HOARDING = 25  # holding more buffered bytes than any other while the budget ran out
LIED_ADDRESS = 50  # an address advertised for a member that answered as another

#: New member ids a second a peer's :class:`NameBudget` regains.
NAME_REFILL = 100.0


class Standing:
    """Misbehaviour scores per remote address, halving every ``half_life`` seconds; an address
    that reaches ``threshold`` is discouraged (refused) for ``ban`` seconds."""

    def __init__(self, *, threshold: float = 100, half_life: float = 60.0, ban: float = 600.0):
        self.threshold = threshold
        self.half_life = half_life
        self.ban = ban
        self._scores: dict[str, _Score] = {}

    def blame(self, address: str, points: float, now: float) -> bool:
        """Add ``points`` to ``address``'s score; True if that discourages it (just now)."""
        score = self._current(address, now)
        score.points += points
        # to the nearest point: four quick strikes of a quarter each discourage, decay or not
        if round(score.points) >= self.threshold and score.until <= now:
            score.until = now + self.ban
            return True
        return False

    def discouraged(self, address: str, now: float) -> bool:
        """Whether ``address`` is refused now."""
        score = self._scores.get(address)
        return score is not None and score.until > now

    def score(self, address: str, now: float) -> float:
        """``address``'s score now (0 for an address never blamed)."""
        return self._current(address, now).points if address in self._scores else 0.0

    def report(self, now: float) -> dict[str, dict[str, float]]:
        """Every address with a score or a ban: ``{address: {"score", "refused_for"}}``."""
        out = {}
        for address in sorted(self._scores):
            score = self._current(address, now)
            if score.points >= 0.5 or score.until > now:
                out[address] = {
                    "score": round(score.points, 1),
                    "refused_for": round(max(0.0, score.until - now), 1),
                }
            else:
                del self._scores[address]  # forgiven and forgotten
        return out

    def _current(self, address: str, now: float) -> _Score:
        score = self._scores.get(address)
        if score is None:
            score = self._scores[address] = _Score(0.0, now)
        elif now > score.at:
            score.points *= 0.5 ** ((now - score.at) / self.half_life)
            score.at = now
        return score


class Guard:
    """One member's books on remote peers: their standing, pending handshakes and connections
    per address, the bytes their unfinished frames hold, and which member answered at an
    address it dialled."""

    def __init__(self, standing: Standing) -> None:
        self.standing = standing
        self.pending: Counter[str] = Counter()  # handshakes under way, by remote address
        self.established: Counter[str] = Counter()  # connections past their Hello, by address
        self.buffered = 0  # bytes of unfinished frames, all connections together
        #: address -> the member that answered there when we dialled it (so that a Hello
        #: announcing someone else's address is not taken for that member)
        self.answered: dict[str, str] = {}
        #: address -> the member an advert said listens there, while we dial it on that word
        self.expected: dict[str, str] = {}
        #: address -> until when it is not dialled on an advert's word (it answered as another)
        self.unverified: dict[str, float] = {}
