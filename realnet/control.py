"""The proc backend's control messages: msgpack maps, each behind its length (4 bytes, big
endian). Commands go from the runner to a worker; answers and trace events come back."""

from __future__ import annotations

import struct
from typing import Any

from msgspec import msgpack

_LENGTH = struct.Struct(">I")


def encode(obj: Any) -> bytes:
    """One control message, framed."""
    body = msgpack.encode(obj)
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Cuts a byte stream into the control messages it carries."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Take in ``data``; returns the messages it completes."""
        buf = self._buf
        buf += data
        start, messages = 0, []
        while len(buf) - start >= 4:
            (size,) = _LENGTH.unpack_from(buf, start)
            end = start + 4 + size
            if len(buf) < end:
                break
            messages.append(msgpack.decode(buf[start + 4 : end]))
            start = end
        del buf[:start]
        return messages
