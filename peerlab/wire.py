"""Frames and typed messages: what members say to each other, as bytes.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of body. A body is one
message, encoded as msgpack by msgspec (typed, validated on decode). :class:`FrameDecoder` turns
a byte stream split at arbitrary points back into whole messages, and raises only
:class:`~peerlab.errors.ProtocolError` subclasses on bad input.

Link-state adverts travel as pre-encoded blobs (``msgspec.Raw``) inside an :class:`Adverts`
batch, so a member can forward an advert without re-encoding it and an :class:`AdvertCache` can
decode each distinct advert once and share the immutable result between members.

Routed messages leaving for one neighbour together travel in one :class:`Batch` frame, so a busy
relay pays the cost of a frame (a length prefix, a slice, a decoder call, a write) once per batch
rather than once per message.

Messages are declared ``gc=False``: they hold only strings, numbers, bytes and lists of those, so
they can never be part of a reference cycle, and the collector need not track the thousands a
busy member makes each second.
"""

from __future__ import annotations

import struct
from typing import Annotated, Final

import msgspec

from peerlab.errors import FrameTooLarge, LocalProtocolError, MalformedMessage, TruncatedFrame

PROTOCOL_VERSION: Final = 2
DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20
HEADER: Final = struct.Struct(">I")
HEADER_SIZE: Final = HEADER.size

MAX_MEMBER_ID: Final = 128
#: Incarnations: every life of a member has one that no earlier life had; the largest is
#: reserved for flushes (see :mod:`peerlab.linkstate`). 2**53 - 1 keeps them exact in JSON.
MAX_INCARNATION: Final = 2**53 - 1
#: Sequence numbers of a member's adverts within one incarnation: 1 to ``MAX_SEQ``.
MAX_SEQ: Final = 2**32 - 1
MemberId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MEMBER_ID)]
Address = Annotated[str, msgspec.Meta(max_length=256)]
#: The largest TTL a message may start with.
MAX_TTL: Final = 1024
Hops = Annotated[int, msgspec.Meta(ge=0, le=MAX_TTL)]
#: The members a message has visited: never more than a TTL allows.
Path = Annotated[list[MemberId], msgspec.Meta(max_length=MAX_TTL + 1)]
Incarnation = Annotated[int, msgspec.Meta(ge=0, le=MAX_INCARNATION)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]


class Hello(msgspec.Struct, tag="hello", array_like=True, frozen=True, gc=False):
    """First message on every connection, sent by both sides: who we are, where we listen, the
    protocol version we speak and which life of ours this is."""

    member_id: MemberId
    listen_address: Address
    protocol_version: int
    # a default, so that an older member's Hello still decodes and is refused for its version
    incarnation: Incarnation = 0


class Advert(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One member's link-state advert: who it is, which of its lives and which change of that
    life this is (``incarnation``, ``seq``), its neighbours, and where it listens."""

    origin: MemberId
    incarnation: Incarnation
    seq: Seq
    neighbours: tuple[MemberId, ...]
    address: Address


class Adverts(msgspec.Struct, tag="adverts", array_like=True, frozen=True, gc=False):
    """A batch of adverts, each a ``msgspec.Raw`` holding one encoded :class:`Advert`."""

    adverts: list[msgspec.Raw]


class Reliable(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What makes a :class:`Data` reliable: the sender's life, the message's number among the
    reliable messages that life sends to this destination (from 1), and ``floor``: every lower
    number is settled (acknowledged or given up) at the sender, so the receiver may forget it."""

    life: Incarnation
    seq: Seq
    floor: Seq


class Data(msgspec.Struct, tag="data", array_like=True, gc=False):
    """An application message relayed hop by hop; ``path`` lists the members it has visited.

    Not frozen: a relay decodes its own copy and appends itself to ``path`` and counts ``ttl``
    down in place, where a copy per hop cost as much as a fifth of the relay's own work.
    """

    msg_id: str
    src: MemberId
    dst: MemberId
    ttl: Hops
    path: Path
    payload: bytes
    reliable: Reliable | None = None


class Ack(msgspec.Struct, tag="ack", array_like=True, frozen=True, gc=False):
    """End-to-end acknowledgement of a reliable :class:`Data`, routed back to its source."""

    msg_id: str
    src: MemberId
    dst: MemberId
    ttl: Hops


class Batch(msgspec.Struct, tag="batch", array_like=True, frozen=True, gc=False):
    """Routed messages (:class:`Data` and :class:`Ack`) for one neighbour, in one frame.

    A member sends one when several routed messages leave for the same neighbour while it
    handles one read, or inside :meth:`~peerlab.member.Member.batch`: each is still decoded,
    routed and re-encoded on its own at every hop, but the frames, writes and reads they cost
    are shared.
    """

    messages: list[Data | Ack]


class Ping(msgspec.Struct, tag="ping", array_like=True, frozen=True, gc=False):
    """Keepalive probe; the peer answers with a :class:`Pong` carrying the same nonce."""

    nonce: int


class Pong(msgspec.Struct, tag="pong", array_like=True, frozen=True, gc=False):
    """Answer to a :class:`Ping`."""

    nonce: int


class Bye(msgspec.Struct, tag="bye", array_like=True, frozen=True, gc=False):
    """Graceful goodbye: the sender is leaving and will close the connection."""

    reason: str


Message = Hello | Adverts | Data | Ack | Batch | Ping | Pong | Bye
MESSAGE_TYPES: Final = (Hello, Adverts, Data, Ack, Batch, Ping, Pong, Bye)

_encoder = msgspec.msgpack.Encoder()
_unpack_header = HEADER.unpack_from
#: The parts of :func:`encode_frame`, for a sender that frames inline on its hot path.
encode_body = _encoder.encode
frame_header = HEADER.pack
_decoder = msgspec.msgpack.Decoder(Message)
_decode = _decoder.decode
_advert_decoder = msgspec.msgpack.Decoder(Advert)


#: What decoding a peer's bytes may raise: msgspec's errors, and RecursionError where a value
#: the schema does not look into (an advert carried as raw bytes) nests deeper than msgspec
#: descends (about a thousand levels); every one of them is the peer's fault.
UNDECODABLE: Final = (msgspec.DecodeError, RecursionError)


def _why(exc: Exception) -> str:
    """What was wrong with undecodable bytes, in words."""
    if isinstance(exc, RecursionError):
        return "containers nested deeper than the decoder descends"
    return str(exc)


def member_id_problem(member_id: str) -> str | None:
    """What makes ``member_id`` unusable on the wire (peers would refuse its Hello), or None."""
    if not member_id:
        return "a member id must not be empty"
    if len(member_id) > MAX_MEMBER_ID:
        return (
            f"member id {member_id[:24]!r}... is {len(member_id)} characters long; "
            f"the protocol allows at most {MAX_MEMBER_ID}"
        )
    return None


#: The wire tag of each message type (``Hello: "hello"``, ``Data: "data"``, ...).
KIND: Final[dict[type, str]] = {cls: cls.__struct_config__.tag for cls in MESSAGE_TYPES}


def message_kind(message: Message) -> str:
    """The wire tag of a message (``"hello"``, ``"data"``, ...)."""
    return KIND[type(message)]


def encode_advert(advert: Advert) -> msgspec.Raw:
    """Encode one advert for inclusion in an :class:`Adverts` batch."""
    return msgspec.Raw(_encoder.encode(advert))


def decode_advert(raw: bytes | msgspec.Raw) -> Advert:
    """Decode one advert blob; raises :class:`MalformedMessage` if it is not a valid advert
    (a flush, the advert at the top incarnation and sequence number, must list no neighbours)."""
    try:
        advert = _advert_decoder.decode(raw)
    except UNDECODABLE as exc:
        raise MalformedMessage(f"invalid advert: {_why(exc)}") from None
    if advert.neighbours and advert.incarnation == MAX_INCARNATION and advert.seq == MAX_SEQ:
        raise MalformedMessage(f"flush of {advert.origin!r} lists neighbours")
    return advert


def encode_frame(message: Message, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Encode a message as one frame (length prefix + body).

    Raises :class:`LocalProtocolError` if the body would exceed ``max_frame_size``.
    """
    # encode + concatenate: cheaper than encode_into a bytearray, and gives immutable bytes,
    # so no transport has to copy a frame it keeps
    body = encode_body(message)
    size = len(body)
    if size > max_frame_size:
        raise frame_too_large(message, size, max_frame_size)
    return frame_header(size) + body


def frame_too_large(message: Message, size: int, max_frame_size: int) -> LocalProtocolError:
    """The error for a message whose body (``size`` bytes) would not fit in a frame."""
    return LocalProtocolError(
        f"refusing to send a {size}-byte {message_kind(message)} frame "
        f"(max frame size {max_frame_size})"
    )


def decode_body(body: bytes | memoryview) -> Message:
    """Decode one frame body; raises :class:`MalformedMessage` on anything but a valid message."""
    try:
        return _decoder.decode(body)
    except UNDECODABLE as exc:
        raise MalformedMessage(f"undecodable frame body ({len(body)} bytes): {_why(exc)}") from None


def _too_large(size: int, limit: int) -> FrameTooLarge:
    return FrameTooLarge(f"frame length {size} exceeds the maximum frame size {limit}")


class FrameDecoder:
    """Incremental decoder: feed it bytes in any split, get whole messages back.

    The length prefix is checked against :attr:`limit` before any of the body is buffered, so
    an oversize announcement costs nothing. The limit is ``first_frame_size`` for the first
    frame (a Hello needs a few hundred bytes: a stranger may not make us buffer a megabyte) and
    ``max_frame_size`` for every frame after it. Only an unfinished frame is ever buffered:
    whole frames are decoded straight from the bytes fed. After a :class:`ProtocolError` the
    decoder is unusable; the connection it served should be closed.
    """

    def __init__(
        self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, first_frame_size: int | None = None
    ) -> None:
        self.max_frame_size = max_frame_size
        #: The largest frame accepted now; its user raises it to ``max_frame_size`` once the
        #: first frame is handled (frames after it in the same read already get that).
        self.limit = max_frame_size if first_frame_size is None else first_frame_size
        self._buf = bytearray()  # the start of an unfinished frame, header included

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buf)

    def whole(self, data: bytes) -> Message | None:
        """The message of ``data`` when it is exactly one whole frame and nothing is buffered
        (the common case on a lightly loaded link), else None: then :meth:`feed` takes it."""
        end = len(data)
        if not self._buf and end > HEADER_SIZE:
            (size,) = _unpack_header(data)
            if size + HEADER_SIZE == end and size <= self.limit:
                try:
                    return _decode(data[HEADER_SIZE:])
                except UNDECODABLE:
                    return decode_body(data[HEADER_SIZE:])  # raises the protocol error
        return None

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return the messages completed by them, in order."""
        end = len(data)
        out: list[Message] = []
        pos = self._finish(data, out) if self._buf else 0
        if self._buf:
            return out  # ``data`` did not even finish the buffered frame
        start = pos
        limit = self.max_frame_size if out else self.limit
        try:
            while end - pos >= HEADER_SIZE:
                (size,) = _unpack_header(data, pos)
                if size > limit:
                    raise _too_large(size, limit)
                start = pos + HEADER_SIZE
                if end - start < size:
                    break
                pos = start + size
                # a bytes slice: for frames of a few hundred bytes its copy is cheaper than a
                # memoryview slice and the buffer export msgspec makes of it
                out.append(_decode(data[start:pos]))
                limit = self.max_frame_size
        except UNDECODABLE:
            decode_body(data[start:pos])  # raises the protocol error with its description
        if pos < end:
            self._buf += data[pos:]
        return out

    def _finish(self, data: bytes, out: list[Message]) -> int:
        """Extend the buffered frame from the start of ``data``, decoding it if it is now whole;
        returns how many bytes of ``data`` it took (all of them if the frame is still open)."""
        buf = self._buf
        taken = min(max(HEADER_SIZE - len(buf), 0), len(data))  # what the header still lacks
        buf += data[:taken]
        if len(buf) < HEADER_SIZE:
            return taken
        (size,) = _unpack_header(buf)
        if size > self.limit:
            raise _too_large(size, self.limit)
        frame = HEADER_SIZE + size
        more = min(frame - len(buf), len(data) - taken)
        buf += data[taken : taken + more]
        if len(buf) == frame:
            body = bytes(buf[HEADER_SIZE:])  # a copy: decoded Raw blobs point into their input
            buf.clear()
            out.append(decode_body(body))
        return taken + more

    def eof(self) -> None:
        """Signal end of stream; raises :class:`TruncatedFrame` if a frame was left incomplete."""
        buf = self._buf
        if buf:
            if len(buf) < HEADER_SIZE:
                expected = "the rest of a length prefix"
            else:
                expected = f"{HEADER_SIZE + _unpack_header(buf)[0] - len(buf)} more body bytes"
            raise TruncatedFrame(
                f"stream ended inside a frame: {len(buf)} bytes buffered, waiting for {expected}"
            )
