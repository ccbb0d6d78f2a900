"""The protocol's test vectors (docs/vectors/messages.json) hold for peerlab's codec in both
directions: every valid vector's bytes decode to its message and its message encodes to those
bytes; the accepted ones decode; the invalid ones are refused. So docs/protocol.md's examples
cannot drift from the code unnoticed."""

import json
from pathlib import Path

import msgpack
import msgspec
import pytest

from peerlab.errors import FrameTooLarge, MalformedMessage
from peerlab.wire import (
    KIND,
    Advert,
    Adverts,
    FrameDecoder,
    Reliable,
    decode_advert,
    decode_body,
    encode_advert,
    encode_body,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "vectors" / "messages.json").read_text()
)
CLASSES = {tag: cls for cls, tag in KIND.items()}


def build(message: dict) -> object:
    """The peerlab message a vector's JSON describes."""
    fields = {k: _value(v) for k, v in message.items() if k != "type"}
    cls = CLASSES[message["type"]]
    if cls is Adverts:
        fields["adverts"] = [encode_advert(_advert(a)) for a in message["adverts"]]
    elif "messages" in fields:
        fields["messages"] = [build(m) for m in message["messages"]]
    if fields.get("reliable") is not None:
        fields["reliable"] = Reliable(**fields["reliable"])
    return cls(**fields)


def _advert(fields: dict) -> Advert:
    values = {k: _value(v) for k, v in fields.items()}
    values["neighbours"] = tuple(values["neighbours"])
    return Advert(**values)


def _value(v: object) -> object:
    if isinstance(v, dict) and set(v) == {"hex"}:
        return bytes.fromhex(v["hex"])
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


def plain(message: object) -> object:
    """A decoded message with its advert blobs decoded, for comparing."""
    if isinstance(message, Adverts):
        return ("adverts", [decode_advert(raw) for raw in message.adverts])
    return message


def named(kind: str):
    return pytest.mark.parametrize("vector", VECTORS[kind], ids=lambda v: v["name"])


def test_the_vectors_cover_every_message_type():
    assert {v["message"]["type"] for v in VECTORS["valid"]} == set(CLASSES)
    assert VECTORS["protocol_version"] == 2


@named("valid")
def test_valid_vector_decodes_to_its_message(vector):
    body = bytes.fromhex(vector["hex"])
    assert plain(decode_body(body)) == plain(build(vector["message"]))


@named("valid")
def test_valid_vector_is_what_its_message_encodes_to(vector):
    assert encode_body(build(vector["message"])).hex() == vector["hex"]


@named("valid")
def test_valid_vector_frames_in_any_split(vector):
    frame = bytes.fromhex(vector["frame"])
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    expected = plain(build(vector["message"]))
    assert [plain(m) for m in FrameDecoder().feed(frame)] == [expected]
    decoder = FrameDecoder()
    step = max(1, len(frame) // 50)  # a long vector in about fifty pieces
    pieces = [decoder.feed(frame[i : i + step]) for i in range(0, len(frame), step)]
    assert [plain(m) for got in pieces for m in got] == [expected]


@named("valid")
def test_valid_vector_is_a_tagged_array_to_any_msgpack_library(vector):
    value = msgpack.unpackb(bytes.fromhex(vector["hex"]), raw=False)
    assert isinstance(value, list)
    assert value[0] == vector["message"]["type"]
    assert len(value) == len(vector["message"])  # the tag, then every field
    if value[0] == "adverts":
        for advert, described in zip(value[1], vector["message"]["adverts"], strict=True):
            assert isinstance(advert, list) and advert[0] == described["origin"]


@named("accepted")
def test_accepted_vector_decodes_and_encodes_canonically(vector):
    message = build(vector["message"])
    assert plain(decode_body(bytes.fromhex(vector["hex"]))) == plain(message)
    assert encode_body(message).hex() == vector["canonical_hex"]
    assert vector["hex"] != vector["canonical_hex"]


@named("invalid")
def test_invalid_vector_is_refused(vector):
    body = bytes.fromhex(vector["hex"])
    if vector["level"] == "advert":
        with pytest.raises(MalformedMessage):
            decode_advert(body)
        # inside a batch the frame decodes; the member refuses it when it reads the adverts
        batch = decode_body(msgspec.msgpack.encode(["adverts", [msgspec.Raw(body)]]))
        with pytest.raises(MalformedMessage):
            decode_advert(batch.adverts[0])
    else:
        with pytest.raises(MalformedMessage):
            decode_body(body)


@named("frames")
def test_oversize_length_prefix_is_refused_on_the_header(vector):
    decoder = FrameDecoder(max_frame_size=vector["max_frame_size"])
    with pytest.raises(FrameTooLarge):
        decoder.feed(bytes.fromhex(vector["hex"]))
    assert FrameDecoder(vector["max_frame_size"] + 1).feed(bytes.fromhex(vector["hex"])) == []


SPEC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_the_spec_has_a_section_for_every_message_type():
    for tag in CLASSES:
        assert f"`{tag}`" in SPEC and f'["{tag}", ' in SPEC, tag


def _seconds(value: float) -> str:
    return f"{value:g} s" if value >= 1 else f"{value * 1000:g} ms"


def test_the_specs_table_of_defaults_is_the_members():
    from peerlab.member import MemberConfig
    from peerlab.reliable import WINDOW_MAX
    from peerlab.wire import MAX_TTL, PROTOCOL_VERSION

    c = MemberConfig()
    rows = dict(
        line.strip("|").split(" | ", 1)
        for line in SPEC.split("## 12.")[1].split("## 13.")[0].splitlines()
        if line.startswith("| ") and not line.startswith("| setting")
    )
    rows = {k.strip(): v.strip(" |") for k, v in rows.items()}
    assert rows["protocol version"] == str(PROTOCOL_VERSION)
    assert rows["maximum frame size"] == f"{c.max_frame_size >> 20} MiB (body)"
    assert rows["first-frame limit"] == f"{c.handshake_frame_size >> 10} KiB"
    assert rows["handshake timeout"] == _seconds(c.handshake_timeout)
    assert rows["keepalive interval"] == _seconds(c.keepalive_interval)
    assert rows["dead timeout"] == _seconds(c.dead_timeout)
    assert rows["flood delay (advert batching)"] == _seconds(c.flood_delay)
    assert rows["route recomputation"] == (
        f"{_seconds(c.route_delay)} after a change, at most every {_seconds(c.route_hold)}"
    )
    assert rows["initial TTL"] == f"{c.default_ttl} (max {MAX_TTL})"
    assert rows["`max_age` of unreachable origins"] == _seconds(c.max_age)
    backoff = c.ack_timeout * 2**3
    assert rows["ack timeout / backoff cap / deadline"] == " / ".join(
        map(_seconds, (c.ack_timeout, backoff, c.reliable_deadline))
    )
    assert rows["reliable window"] == f"{c.reliable_window} (max {WINDOW_MAX})"
