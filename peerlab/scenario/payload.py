"""Payload sizing: a message's Data frame must fit all the way along the longest path."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from peerlab.member import MemberConfig
from peerlab.scenario.convert import Problems
from peerlab.scenario.events import EVENTS
from peerlab.scenario.model import Event
from peerlab.secure import MAC_SIZE
from peerlab.wire import HEADER_SIZE, MAX_INCARNATION, MAX_SEQ, Data, Reliable, encode_frame


def payload_limit(names: Collection[str], config: MemberConfig) -> int:
    """The largest payload a scenario with these member names can send: its Data frame must
    still fit on the longest path, after every relay has added its id to the recorded path."""
    longest = max(names, key=len)
    # the largest frame a message here can need: the longest ids, a path through every member
    # (a shortest path repeats none), a message id and reliable numbers as large as any, a
    # bin32 payload, and secure mode's code
    probe_size = 1 << 16
    path = [longest] * min(config.default_ttl, len(names))
    probe = Data(
        f"{longest}:{MAX_INCARNATION}:{2**40}",
        longest,
        longest,
        config.default_ttl,
        path,
        bytes(probe_size),
        Reliable(MAX_INCARNATION, MAX_SEQ, MAX_SEQ),
        bytes(MAC_SIZE),
    )
    overhead = len(encode_frame(probe, 1 << 30)) - HEADER_SIZE - probe_size
    return config.max_frame_size - overhead


def check_payloads(
    events: Iterable[Event], names: Collection[str], config: MemberConfig, problems: Problems
) -> None:
    """Add to ``problems`` every event whose payload does not fit in one frame all the way to
    its destination."""
    sizes = [
        (e, *payload(e.args)) for e in events if (payload := EVENTS[e.kind].payload) is not None
    ]
    if not sizes:
        return
    limit = payload_limit(names, config)
    for e, key, size in sizes:
        if size > limit:
            problems.add(
                ("events", e.index, e.kind, key),
                f"a {size:,}-byte payload does not fit in one frame on this network's longest "
                f"path (at most {limit:,} bytes; frames are at most {config.max_frame_size:,})",
            )
