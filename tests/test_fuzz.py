"""Structure-aware fuzzing of what a peer can send: every message type, mutated where it counts
(a field replaced by nested containers, a value of the wrong type, a huge integer, a huge array,
elements added or dropped), and whole frames truncated, spliced and bit-flipped. The decoder may
raise only :class:`~peerlab.errors.ProtocolError`; a member fed the same over one connection
keeps its other connections and goes on relaying between them.

One escape is known and tested on its own (:func:`test_deep_nesting_in_an_advert_blob_is_a_
protocol_error`): nesting as deep as the interpreter's recursion limit, where an advert blob is
skipped untyped. The fuzzing below nests less deeply than that.
"""

from __future__ import annotations

import sys

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memnet import MemoryNetwork, raw_peer
from test_wire import messages

from peerlab import trace as ev
from peerlab.errors import ProtocolError
from peerlab.linkstate import AdvertCache
from peerlab.member import MemberConfig
from peerlab.wire import (
    HEADER,
    MAX_INCARNATION,
    MAX_SEQ,
    PROTOCOL_VERSION,
    Ack,
    Adverts,
    Batch,
    Bye,
    Data,
    FrameDecoder,
    Hello,
    Ping,
    Pong,
    Reliable,
    encode_frame,
)

#: Nesting the fuzzing stays under: the known escape begins near the recursion limit.
SHALLOW = 64

huge_ints = st.sampled_from(
    [2**64 - 1, -(2**63), 2**63, MAX_INCARNATION + 1, MAX_SEQ + 1, -1, 0, 2**53]
)


def nest(value: object, depth: int, kind: str) -> object:
    for _ in range(depth):
        value = [value] if kind == "array" else {"k": value}
    return value


hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    huge_ints,
    st.text(max_size=20),
    st.integers(0, 4000).map(lambda n: "x" * n),  # past every length limit
    st.binary(max_size=20),
    st.integers(0, 200_000).map(lambda n: [0] * n),  # a huge array
    st.dictionaries(st.text(max_size=4), st.integers(-(2**63), 2**64 - 1), max_size=3),
    st.builds(msgspec.msgpack.Ext, st.integers(-128, 127), st.binary(max_size=8)),
    st.builds(nest, st.just(None), st.integers(1, SHALLOW), st.sampled_from(["array", "map"])),
)


def tree(message) -> object:
    """A message as the plain msgpack values it is made of (adverts included)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(message))


@st.composite
def mutated_bodies(draw) -> bytes:
    """A valid message's body with a few of its values, at any depth, replaced, added or
    dropped."""
    value = tree(draw(messages))
    for _ in range(draw(st.integers(1, 3))):
        value = mutate(draw, value)
    return msgspec.msgpack.encode(value)


def mutate(draw, value: object) -> object:
    """``value`` with one node somewhere inside replaced, or one element added or dropped."""
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        edit = draw(st.sampled_from(["into", "drop", "add"]))
        if edit == "into":
            return [*value[:i], mutate(draw, value[i]), *value[i + 1 :]]
        if edit == "drop":
            return value[:i] + value[i + 1 :]
        return [*value[:i], draw(hostile_values), *value[i:]]
    return draw(hostile_values)


def framed(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


@st.composite
def hostile_streams(draw) -> bytes:
    """Bytes a hostile peer could send: mutated frames, and valid frames truncated, spliced,
    bit-flipped or given a wrong length."""
    kind = draw(st.sampled_from(["mutated", "truncated", "spliced", "flipped", "mislength"]))
    if kind == "mutated":
        return framed(draw(mutated_bodies()))
    body = encode_frame(draw(messages))[HEADER.size :]
    if kind == "truncated":
        return framed(body[: draw(st.integers(0, len(body)))])
    if kind == "spliced":
        other = encode_frame(draw(messages))[HEADER.size :]
        head = body[: draw(st.integers(0, len(body)))]
        return framed(head + other[draw(st.integers(0, len(other))) :])
    if kind == "flipped":
        data = bytearray(body)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return framed(bytes(data))
    return HEADER.pack(max(0, len(body) + draw(st.integers(-8, 8)))) + body


def cuts(data: bytes, points: list[int]) -> list[bytes]:
    at = sorted({p % (len(data) + 1) for p in points})
    return [data[i:j] for i, j in zip([0, *at], [*at, len(data)], strict=True)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_streams(), min_size=1, max_size=3), st.lists(st.integers(0, 10**6)))
def test_the_decoder_raises_only_protocol_errors(frames, points):
    decoder = FrameDecoder()
    cache = AdvertCache()
    try:
        for chunk in cuts(b"".join(frames), points):
            for message in decoder.feed(chunk):
                if isinstance(message, Adverts):  # as a member takes them in
                    cache.decode_all(message.adverts)
        decoder.eof()
    except ProtocolError:
        pass


ADVERT_BLOB = b"\x92\xa7adverts\x91"  # an Adverts frame's body up to its one advert blob


@pytest.mark.parametrize("opening", [b"\x91", b"\x81\xa1k"], ids=["arrays", "maps"])
def test_deep_nesting_in_an_advert_blob_is_a_protocol_error(opening):
    # the smallest such frame: about a thousand levels (the recursion limit), 1-3 KB
    body = ADVERT_BLOB + opening * sys.getrecursionlimit() + b"\xc0"
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(framed(body))


EXAMPLES = [
    Hello("a", "x", PROTOCOL_VERSION, 1),
    Data("a:1:1", "a", "b", 3, ["a"], b"p", Reliable(1, 1, 1)),
    Ack("a:1:1", "b", "a", 3),
    Batch([Ack("a:1:1", "b", "a", 3)]),
    Ping(1),
    Pong(1),
    Bye("x"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_deep_nesting_in_any_typed_field_is_a_protocol_error(message):
    """Everywhere but an advert blob, a type is expected, so the decoder stops at the first
    level of nesting."""
    deep = b"\x91" * 100_000 + b"\xc0"
    fields = tree(message)
    for i in range(1, len(fields)):
        marked = msgspec.msgpack.encode([*fields[:i], "MARK", *fields[i + 1 :]])
        body = marked.replace(msgspec.msgpack.encode("MARK"), deep)
        with pytest.raises(ProtocolError):
            FrameDecoder().feed(framed(body))


FAST = MemberConfig(keepalive_interval=0.2, dead_timeout=0.8, handshake_timeout=1.0)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(hostile_streams(), min_size=1, max_size=4), st.integers(0, 99))
def test_a_member_fed_hostile_frames_keeps_its_other_connections(hello_first, frames, seed):
    net = MemoryNetwork(seed=seed, config=FAST)
    for name in ("p", "m", "q"):
        net.add(name)
    net.link("p", "m")
    net.link("m", "q")
    m = net.members["m"]
    assert net.run_until(lambda: "q" in net.members["p"].routes, timeout=5)
    t, raw = raw_peer(net, "r", "m")
    (conn,) = raw.conns
    if hello_first:
        t.send(conn, encode_frame(Hello("r", "", PROTOCOL_VERSION, 1)))
    for data in frames:
        t.send(conn, data)
    net.run_for(0.1)  # every byte delivered and handled: a callback that raised fails here
    assert {"p", "q"} <= set(m.neighbours)
    msg_id = net.members["p"].send("q", b"still relaying")
    assert net.run_until(
        lambda: any(
            e.kind == ev.DELIVER and e.fields["msg_id"] == msg_id for e in net.tracer.events
        ),
        timeout=2,
    )
    net.run_for(2 * FAST.dead_timeout)  # the raw peer never answers: it is dropped in time
    assert "r" not in m.neighbours and sorted(m.neighbours) == ["p", "q"]
