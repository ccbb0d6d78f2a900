"""TLS for real links in secure mode: X.509 certificates made from the network's keys, and the
TLS 1.3 contexts that use them (real transports only; the simulation has no bytes to encrypt).

The network key signs a self-signed certificate authority (``network.pem``); a member's
certificate (``ID.pem``) binds its Ed25519 signing key to its id (the common name) until its
expiry, signed by the network key. Both sides of a link present their certificate and require
the other's, signed by the network: TLS then encrypts the link, and the member handshake inside
it still proves ids, expiry and revocation as without TLS. The X.509 encoding and the TLS
protocol are the ``cryptography`` library's and the standard library's ``ssl``.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

#: When TLS certificates start to be valid: before any run (they expire with the member's
#: certificate).
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _network_name(network: Ed25519PrivateKey) -> x509.Name:
    raw = network.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return _name(f"peerlab network {raw.hex()[:16]}")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def network_pem(network: Ed25519PrivateKey) -> bytes:
    """The network's certificate authority, self-signed by its key (PEM)."""
    name = _network_name(network)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(network.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(network, None)
    )
    return _pem(cert)


def member_pem(
    network: Ed25519PrivateKey, member_id: str, sign_key: Ed25519PublicKey, expires: int
) -> bytes:
    """Member ``member_id``'s TLS certificate for its signing key until ``expires`` (Unix
    seconds), signed by the network key (PEM)."""
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(member_id))
        .issuer_name(_network_name(network))
        .public_key(sign_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(datetime.datetime.fromtimestamp(expires, datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(network, None)
    )
    return _pem(cert)


@dataclass(frozen=True)
class TlsContexts:
    """One member's TLS 1.3 contexts: to accept links and to dial them, each presenting the
    member's certificate and requiring a peer's signed by the network."""

    server: ssl.SSLContext
    client: ssl.SSLContext

    @classmethod
    def load(cls, network: Path, certificate: Path, key: Path) -> TlsContexts:
        """Contexts from PEM files: the network's certificate, the member's, and its private
        key file (the first key in it signs)."""
        return cls(
            _context(ssl.PROTOCOL_TLS_SERVER, network, certificate, key),
            _context(ssl.PROTOCOL_TLS_CLIENT, network, certificate, key),
        )


def _context(protocol: int, network: Path, certificate: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    # peers are known by the member id their handshake proves, not by a host name
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=network)
    context.load_cert_chain(certificate, key)
    return context
