"""Write messages.json: the protocol's test vectors, made with peerlab's own codec.

Run ``python docs/vectors/generate.py`` after a deliberate change of the wire format;
``tests/test_vectors.py`` checks the committed file against the codec both ways, so the
vectors (and docs/protocol.md, which they illustrate) cannot drift from the code unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from peerlab.wire import (
    MAX_INCARNATION,
    MAX_MEMBER_ID,
    MAX_SEQ,
    MAX_TTL,
    Ack,
    Advert,
    Adverts,
    Batch,
    Bye,
    Data,
    Hello,
    Ping,
    Pong,
    Proof,
    Reliable,
    encode_advert,
    encode_body,
    frame_header,
)

HERE = Path(__file__).resolve().parent
pack = msgspec.msgpack.encode


def as_json(value: object) -> object:
    """A message (or part of one) as JSON: tagged messages as objects with ``type``, adverts
    as objects, bytes as ``{"hex": ...}``."""
    if isinstance(value, msgspec.Raw):
        return as_json(msgspec.msgpack.decode(value, type=Advert))
    if isinstance(value, msgspec.Struct):
        out: dict[str, object] = {}
        tag = type(value).__struct_config__.tag
        if isinstance(tag, str):
            out["type"] = tag
        for name in value.__struct_fields__:
            out[name] = as_json(getattr(value, name))
        return out
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def valid(name: str, note: str, message: object) -> dict:
    body = encode_body(message)
    return {
        "name": name,
        "note": note,
        "hex": body.hex(),
        "frame": (frame_header(len(body)) + body).hex(),
        "message": as_json(message),
    }


def accepted(name: str, note: str, value: list, message: object) -> dict:
    """Bytes a receiver must accept although a sender would encode the message otherwise."""
    return {
        "name": name,
        "note": note,
        "hex": pack(value).hex(),
        "canonical_hex": encode_body(message).hex(),
        "message": as_json(message),
    }


def invalid(name: str, note: str, body: bytes, level: str = "body") -> dict:
    return {"name": name, "note": note, "hex": body.hex(), "level": level}


def advert(*fields) -> msgspec.Raw:
    return encode_advert(Advert(*fields))


def main() -> None:
    cert = bytes(range(256)) * 2  # 512 bytes: the longest certificate field
    a1 = Advert("alice", 1700000000000, 7, ("bob", "carol"), "127.0.0.1:9000")
    flush = Advert("bob", MAX_INCARNATION, MAX_SEQ, (), "127.0.0.2:9000")
    signed = Advert("carol", 3, 1, ("alice",), "127.0.0.3:9000", bytes(200), bytes(range(64)))
    data = Data("alice:1700000000000:1", "alice", "carol", 64, ["alice"], b"hello carol")
    relayed = Data("alice:1700000000000:1", "alice", "carol", 63, ["alice", "bob"], b"hello carol")
    reliable = Data(
        "alice:5:12",
        "alice",
        "dave",
        62,
        ["alice", "bob", "carol"],
        b"\x00\xff",
        Reliable(5, 3, 2),
    )
    sealed = Data("a:1:1", "a", "b", 64, ["a"], b"", Reliable(1, 1, 1), bytes(range(16)))
    ack = Ack("alice:5:12", "dave", "alice", 64)
    vectors = [
        valid(
            "hello",
            "open mode: certificate and nonce nil",
            Hello("alice", "127.0.0.1:9000", 2, 1700000000000),
        ),
        valid("hello-incarnation-0", "incarnation 0, shortest int", Hello("b", "", 2, 0)),
        valid(
            "hello-max-lengths",
            "a 128-code-point unicode id (256 bytes of UTF-8), a 256-character address, "
            "the top incarnation",
            Hello("é" * MAX_MEMBER_ID, "x" * 256, 2, MAX_INCARNATION),
        ),
        valid(
            "hello-unicode-id",
            "ids are any UTF-8 strings, compared by code point",
            Hello("пир-節點-🛰", "[::1]:9000", 2, 42),
        ),
        valid(
            "hello-secure",
            "secure mode: a 512-byte certificate field and a 16-byte nonce "
            "(content not checked by the codec)",
            Hello("alice", "127.0.0.1:9000", 2, 3, cert, bytes(range(16))),
        ),
        valid(
            "hello-other-version",
            "decodes: the version is refused by the member, not the codec",
            Hello("zed", "127.0.0.9:1", 3, 1),
        ),
        valid("proof", "secure mode: a 64-byte Ed25519 signature", Proof(bytes(range(64)))),
        valid("adverts-empty", "an empty batch of adverts is valid", Adverts([])),
        valid(
            "adverts-one",
            "one advert: an untagged array nested in the batch",
            Adverts([encode_advert(a1)]),
        ),
        valid(
            "adverts-several",
            "a batch with a flush (top incarnation and seq, no neighbours), a signed advert "
            "and a unicode neighbour",
            Adverts(
                [
                    encode_advert(flush),
                    encode_advert(signed),
                    advert("dave", 1, MAX_SEQ, ("é" * 128,), ""),
                ]
            ),
        ),
        valid("data", "as its source sends it: ttl 64, path [src]", data),
        valid("data-relayed", "after one relay: ttl 63, the relay appended to path", relayed),
        valid(
            "data-empty",
            "empty payload, empty path (legal on the wire), ttl 0",
            Data("m", "a", "b", 0, [], b""),
        ),
        valid("data-reliable", "reliable: [life, seq, floor]", reliable),
        valid("data-sealed", "secure mode: a 16-byte code", sealed),
        valid("data-max-ttl", "the largest ttl", Data("m", "a", "b", MAX_TTL, ["a"], b"x")),
        valid(
            "data-max-path",
            "a path of 1025 ids, the most a ttl allows",
            Data("m", "a", "b", 1, [f"m{i}" for i in range(MAX_TTL + 1)], b""),
        ),
        valid("ack", "src is the acknowledger (the data's dst), dst the data's src", ack),
        valid("ack-sealed", "secure mode: a 16-byte code", Ack("a:1:1", "b", "a", 64, bytes(16))),
        valid("batch-empty", "an empty batch is valid and does nothing", Batch([])),
        valid(
            "batch",
            "routed messages for one neighbour: data and ack, each tagged",
            Batch([relayed, ack]),
        ),
        valid("ping", "", Ping(1)),
        valid("ping-zero", "", Ping(0)),
        valid("ping-max", "the largest nonce: uint64", Ping(2**64 - 1)),
        valid("ping-min", "the smallest nonce: int64", Ping(-(2**63))),
        valid("pong", "", Pong(123456789)),
        valid("bye", "a graceful leave", Bye("leaving")),
        valid("bye-empty", "an empty reason", Bye("")),
        valid(
            "bye-protocol-error",
            "the reason a member gives before closing for a protocol error",
            Bye("protocol error: received data before Hello"),
        ),
        valid("bye-unicode", "", Bye("au revoir, à bientôt 👋")),
        accepted(
            "hello-short",
            "trailing optional fields left out: incarnation 0, no certificate, no nonce",
            ["hello", "alice", "127.0.0.1:9000", 2],
            Hello("alice", "127.0.0.1:9000", 2),
        ),
        accepted(
            "data-short",
            "data without its optional reliable and mac fields",
            ["data", "m", "a", "b", 5, ["a"], b"x"],
            Data("m", "a", "b", 5, ["a"], b"x"),
        ),
        accepted(
            "ping-extra-field",
            "elements beyond the known fields are ignored",
            ["ping", 7, "from a later revision"],
            Ping(7),
        ),
        {
            "name": "ping-wide-int",
            "note": "any integer width is accepted (here 5 as a uint64); senders write the "
            "shortest",
            "hex": "92a470696e67cf0000000000000005",
            "canonical_hex": encode_body(Ping(5)).hex(),
            "message": as_json(Ping(5)),
        },
        invalid("map-body", "a map is not a message", pack({"type": "ping", "nonce": 1})),
        invalid(
            "msgspec-tag-field",
            "msgspec's default tagged-map layout is not the wire's",
            pack({"type": "bye", "reason": "x"}),
        ),
        invalid("unknown-tag", "", pack(["nope", 1])),
        invalid("empty-body", "a body of length 0", b""),
        invalid("tag-not-first", "the tag must be the first element", pack([1, "ping"])),
        invalid(
            "too-few-fields",
            "hello needs at least its four required fields",
            pack(["hello", "a", "x"]),
        ),
        invalid("empty-id", "member ids have at least one code point", pack(["hello", "", "x", 2])),
        invalid("id-too-long", "129 code points", pack(["hello", "é" * 129, "x", 2])),
        invalid("address-too-long", "257 characters", pack(["hello", "a", "x" * 257, 2])),
        invalid("bytes-for-str", "a bin where a str belongs", pack(["hello", "a", b"x", 2])),
        invalid(
            "str-for-bytes",
            "a str where a bin belongs",
            pack(["data", "m", "a", "b", 1, ["a"], "x"]),
        ),
        invalid("float-for-int", "", pack(["ping", 1.0])),
        invalid("bool-for-int", "", pack(["ping", True])),
        invalid("negative-incarnation", "", pack(["hello", "a", "x", 2, -1])),
        invalid("ttl-too-large", "ttl above 1024", pack(["data", "m", "a", "b", 1025, ["a"], b""])),
        invalid("path-too-long", "1026 ids", pack(["data", "m", "a", "b", 1, ["a"] * 1026, b""])),
        invalid("nested-batch", "a batch inside a batch", pack(["batch", [["batch", []]]])),
        invalid("batch-of-ping", "a batch holds data and ack only", pack(["batch", [["ping", 1]]])),
        invalid(
            "reliable-seq-0",
            "seq and floor start at 1",
            pack(["data", "m", "a", "b", 1, ["a"], b"", [1, 0, 1]]),
        ),
        invalid("advert-seq-0", "an advert's seq starts at 1", pack(["a", 1, 0, [], ""]), "advert"),
        invalid(
            "advert-seq-too-large",
            "seq above 2**32-1",
            pack(["a", 1, MAX_SEQ + 1, [], ""]),
            "advert",
        ),
        invalid(
            "advert-flush-with-neighbours",
            "the advert at the top order must list nobody",
            pack(["a", MAX_INCARNATION, MAX_SEQ, ["b"], ""]),
            "advert",
        ),
        invalid(
            "advert-tagged", "adverts carry no tag", pack(["advert", "a", 1, 1, [], ""]), "advert"
        ),
        invalid(
            "incarnation-too-large",
            "above 2**53-1",
            pack(["a", MAX_INCARNATION + 1, 1, [], ""]),
            "advert",
        ),
    ]
    frames = [
        {
            "name": "frame-too-large",
            "note": "a length prefix above the maximum frame size (1 MiB) is refused on the "
            "header alone",
            "hex": (frame_header((1 << 20) + 1)).hex(),
            "max_frame_size": 1 << 20,
        },
        {
            "name": "first-frame-too-large",
            "note": "the first frame of a connection may be refused above 16 KiB",
            "hex": (frame_header((16 << 10) + 1)).hex(),
            "max_frame_size": 16 << 10,
        },
    ]
    out = {
        "protocol_version": 2,
        "about": (
            "Test vectors of the peerlab wire protocol (docs/protocol.md). 'valid': hex is the "
            "body a sender writes for message (frame adds the 4-byte length); 'accepted': bytes "
            "a receiver must decode to message, though a sender writes canonical_hex; "
            "'invalid': bodies (level body) or single adverts (level advert) a receiver must "
            "refuse; 'frames': length prefixes to refuse. In message, bytes are {\"hex\": ...}, "
            "adverts are objects inside an adverts message, and absent optional values are null."
        ),
        "valid": [v for v in vectors if "frame" in v],
        "accepted": [v for v in vectors if "canonical_hex" in v],
        "invalid": [v for v in vectors if "level" in v],
        "frames": frames,
    }
    (HERE / "messages.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
