"""Secure mode: what a member of a secure network signs, proves and checks.

- **Handshake.** Each Hello carries the member's certificate and a fresh nonce. On the peer's
  Hello, each side sends a :class:`~peerlab.wire.Proof`: its signature over the handshake
  *transcript* (both Hellos' ids, listen addresses, incarnations, nonces and certificates, and
  the protocol version, the dialer's first) with its role. A replayed or relayed Hello proves
  nothing: the transcript holds this connection's nonces.
- **Adverts** carry their origin's certificate and its signature over the advert's fields; a
  cache verifies each distinct advert once (:meth:`Security.verify_advert`).
- **Data and acks** carry a 16-byte message authentication code, keyed BLAKE2b (RFC 7693's
  keyed mode, from ``hashlib``), under a key the two end members agree once (X25519, then
  HKDF-SHA256) from their certificates' keys; the destination checks it (relays need not).
  Chosen by measurement: an Ed25519 signature costs ~55 us to make and ~160 us to check, so
  one per message would cut the relay's throughput several times over; HMAC-SHA256 costs ~4 us
  a message (~2.8 us from a precomputed state), keyed BLAKE2b ~1 us.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from peerlab.errors import MalformedMessage
from peerlab.identity import BadCertificate, Certificate, Identity, Trust
from peerlab.wire import PROTOCOL_VERSION, Ack, Advert, Data, Hello

DOMAIN_HANDSHAKE: Final = b"peerlab-handshake-v1"
DOMAIN_ADVERT: Final = b"peerlab-advert-v1"
DOMAIN_DATA_KEY: Final = b"peerlab-data-key-v1"
NONCE_SIZE: Final = 16
MAC_SIZE: Final = 16
_encode = msgspec.msgpack.encode


class BadSignature(MalformedMessage):
    """A signature or code that does not verify: forged, or tampered with on the way."""


def transcript(dialer: Hello, acceptor: Hello) -> bytes:
    """What both ends of a connection sign: its two Hellos, the dialer's first."""

    def fields(h: Hello) -> list:
        return [h.member_id, h.listen_address, h.incarnation, h.nonce, h.certificate]

    return DOMAIN_HANDSHAKE + _encode([PROTOCOL_VERSION, fields(dialer), fields(acceptor)])


def advert_signed_part(advert: Advert) -> bytes:
    """What an advert's origin signs."""
    fields = [
        advert.origin,
        advert.incarnation,
        advert.seq,
        list(advert.neighbours),
        advert.address,
    ]
    return DOMAIN_ADVERT + _encode(fields)


def verify_advert(advert: Advert, trust: Trust) -> None:
    """Raise :class:`BadSignature` (or :class:`~peerlab.identity.BadCertificate`) unless the
    advert's origin signed it, under a certificate of this network's authority.

    Whether that certificate has expired or been revoked is left to the handshake: a member
    whose certificate lapsed is refused connections, so its links drop out of every advert,
    and a peer relaying its older adverts is not at fault."""
    if not advert.signature or not advert.certificate:
        raise BadSignature(f"advert of {advert.origin!r} is not signed")
    cert = trust.authentic(advert.certificate, advert.origin)
    try:
        Ed25519PublicKey.from_public_bytes(cert.sign_key).verify(
            advert.signature, advert_signed_part(advert)
        )
    except InvalidSignature:
        raise BadSignature(f"advert of {advert.origin!r} is not signed by its origin") from None


class Security:
    """One member's secure mode: its identity, the network's trust, and the keys it agreed
    with other members (by their id)."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.trust = identity.trust
        rng = identity.rng
        #: ``nonce(n)``: ``n`` fresh bytes for a Hello
        self.nonce = rng.randbytes if rng is not None else secrets.token_bytes
        #: a peer's certificate -> the keyed state of the codes between us
        self._pair_macs: dict[bytes, hashlib._Hash] = {}

    # --- handshake ---------------------------------------------------------------------

    def check_hello(self, hello: Hello) -> Certificate:
        """The certificate of a peer's Hello, if the network vouches for it under that id."""
        if not hello.certificate or not hello.nonce or len(hello.nonce) != NONCE_SIZE:
            raise BadCertificate(
                f"{hello.member_id!r} said Hello without a certificate and a nonce, "
                "and this network admits members only"
            )
        return self.trust.check(hello.certificate, hello.member_id)

    def prove(self, dialer: Hello, acceptor: Hello, role: bytes) -> bytes:
        """Our signature over the connection's transcript in ``role`` (b"D" or b"A")."""
        return self.identity.keys.sign.sign(role + transcript(dialer, acceptor))

    @staticmethod
    def check_proof(cert: Certificate, proof: bytes, dialer: Hello, acceptor: Hello, role: bytes):
        """Raise :class:`BadSignature` unless ``proof`` is ``cert``'s holder signing this
        connection's transcript in ``role``."""
        try:
            Ed25519PublicKey.from_public_bytes(cert.sign_key).verify(
                proof, role + transcript(dialer, acceptor)
            )
        except InvalidSignature:
            raise BadSignature(
                f"{cert.member_id!r} did not prove it holds its certificate's key"
            ) from None

    # --- adverts -------------------------------------------------------------------------

    def sign_advert(self, advert: Advert) -> Advert:
        """``advert`` (our own) with our certificate and signature."""
        unsigned = msgspec.structs.replace(advert, certificate=self.identity.certificate)
        signature = self.identity.keys.sign.sign(advert_signed_part(unsigned))
        return msgspec.structs.replace(unsigned, signature=signature)

    # --- data ----------------------------------------------------------------------------

    def seal_data(self, data: Data, peer_certificate: bytes) -> bytes:
        """The code of ``data``, from us to the member of ``peer_certificate``."""
        return self._mac(peer_certificate, _data_fields(data))

    def data_is_from(self, data: Data, peer_certificate: bytes) -> bool:
        """Whether ``data``'s code proves that the member of ``peer_certificate`` sent it to us
        as it is (its payload, ids and reliable numbers; not its path or hops left, which relays
        change)."""
        mac = data.mac
        return mac is not None and hmac.compare_digest(
            mac, self._mac(peer_certificate, _data_fields(data))
        )

    def seal_ack(self, ack: Ack, peer_certificate: bytes) -> Ack:
        """``ack``, from us to the member of ``peer_certificate``, with its code."""
        return msgspec.structs.replace(ack, mac=self._mac(peer_certificate, _ack_fields(ack)))

    def ack_is_from(self, ack: Ack, peer_certificate: bytes) -> bool:
        """Whether ``ack``'s code proves the member of ``peer_certificate`` sent it to us."""
        mac = ack.mac
        return mac is not None and hmac.compare_digest(
            mac, self._mac(peer_certificate, _ack_fields(ack))
        )

    def _mac(self, peer_certificate: bytes, fields: list) -> bytes:
        keyed = self._pair_macs.get(peer_certificate)
        if keyed is None:
            cert = self.trust.authentic(peer_certificate)
            shared = self.identity.keys.dh.exchange(X25519PublicKey.from_public_bytes(cert.dh_key))
            ends = sorted((self.identity.keys.sign_key, cert.sign_key))
            key = HKDF(
                hashes.SHA256(), 32, self.trust.network, DOMAIN_DATA_KEY + b"".join(ends)
            ).derive(shared)
            keyed = self._pair_macs[peer_certificate] = hashlib.blake2b(
                key=key, digest_size=MAC_SIZE, person=b"peerlab-data-v1"
            )
        mac = keyed.copy()
        mac.update(_encode(fields))
        return mac.digest()


def _data_fields(data: Data) -> list:
    r = data.reliable
    meta: Sequence = (r.life, r.seq, r.floor) if r is not None else ()
    return ["data", data.msg_id, data.src, data.dst, data.payload, meta]


def _ack_fields(ack: Ack) -> list:
    return ["ack", ack.msg_id, ack.src, ack.dst]
