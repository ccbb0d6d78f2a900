"""TlsSession: TLS on one connection of the selectors loop, without a thread or a blocking call.

The standard library's ``ssl.SSLObject`` works on two memory buffers: the transport feeds it the
bytes it reads and sends the bytes it leaves in the outgoing buffer, so the handshake and the
records go through the same non-blocking reads and writes as plain bytes do.
"""

from __future__ import annotations

import ssl

#: Plain bytes read from a session at a time.
READ_SIZE = 256 << 10


class TlsFailure(Exception):
    """The peer's records are not acceptable (a failed handshake, a certificate the network did
    not sign, tampering); ``alert`` holds the records that tell the peer so."""

    def __init__(self, reason: str, alert: bytes) -> None:
        super().__init__(reason)
        self.alert = alert


class TlsSession:
    """The TLS state of one connection: plain bytes in and out on one side, TLS records on the
    other. Bytes written before the handshake is over wait for it."""

    def __init__(self, context: ssl.SSLContext, *, server_side: bool) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side)
        self.ready = False
        self._waiting: list[bytes] = []

    def start(self) -> bytes:
        """Begin the handshake; returns the records to send (none on the accepting side)."""
        self._handshake()
        return self._outgoing.read()

    def receive(self, records: bytes) -> tuple[bytes, bytes]:
        """Take records read from the socket; returns the plain bytes they carried and the
        records to send in answer; :class:`TlsFailure` if they are not acceptable."""
        try:
            return self._receive(records)
        except ssl.SSLError as exc:
            raise TlsFailure(exc.reason or str(exc), self._outgoing.read()) from None

    def _receive(self, records: bytes) -> tuple[bytes, bytes]:
        self._incoming.write(records)
        if not self.ready and self._handshake():
            for data in self._waiting:
                self._tls.write(data)
            self._waiting.clear()
        plain = []
        while self.ready:
            try:
                chunk = self._tls.read(READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            plain.append(chunk)
        return b"".join(plain), self._outgoing.read()

    def seal(self, data: bytes) -> bytes:
        """The records carrying ``data`` (none until the handshake is over: it waits)."""
        if not self.ready:
            self._waiting.append(bytes(data))
            return b""
        self._tls.write(data)
        return self._outgoing.read()

    def version(self) -> str | None:
        """The TLS version agreed, once the handshake is over."""
        return self._tls.version()

    def peer_name(self) -> str | None:
        """The common name (the member id) in the peer's certificate, once it was checked."""
        cert = self._tls.getpeercert()
        for rdn in cert.get("subject", ()) if cert else ():
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.ready = True
        return True
