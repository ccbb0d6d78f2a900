"""Who may be a member of a secure network: keys, certificates, revocations, and trust.

A network has one Ed25519 key pair: its authority. A member has two keys of its own, an Ed25519
key that signs (its handshakes and its adverts) and an X25519 key that agrees a secret with
each other member (for the message authentication codes of its data), and a
:class:`Certificate` in which the authority binds both to its member id until an expiry date.
The authority can revoke member ids; members load the signed :class:`Revocations`.
:class:`Trust` checks certificates against the network key, the expiry and the revocations.

Every signature is made over a domain-separated encoding (``DOMAIN_*`` then the msgpack of the
signed fields), so that nothing signed for one purpose verifies for another. The cryptography
is the ``cryptography`` library's; nothing here is hand-rolled.

On disk (``peerlab keys``): ``network.pub`` (the network key, hex), ``network.key`` (its private
key, PEM, owner-only), ``ID.key`` (a member's two private keys, PEM, owner-only), ``ID.cert``
and ``revoked`` (msgpack), and for TLS (:mod:`peerlab.tls`) the X.509 certificates
``network.pem`` and ``ID.pem``. Private key files readable by anyone but their owner are
refused.
"""

from __future__ import annotations

import hashlib
import os
import random
import ssl
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from peerlab.errors import HandshakeError, PeerlabError
from peerlab.tls import TlsContexts, member_pem, network_pem
from peerlab.wire import MemberId

DOMAIN_CERTIFICATE: Final = b"peerlab-certificate-v1"
DOMAIN_REVOCATIONS: Final = b"peerlab-revocations-v1"
Key = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Signature = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


class KeyFileError(PeerlabError):
    """A key, certificate or revocation file that cannot be used as it is."""


class BadCertificate(HandshakeError):
    """A certificate this network does not vouch for (another network's, expired, revoked,
    tampered with, or naming another member)."""


class Certificate(msgspec.Struct, array_like=True, frozen=True):
    """The network authority's word that ``member_id`` holds these keys until ``expires``
    (Unix seconds); ``network`` is the authority's public key."""

    network: Key
    member_id: MemberId
    sign_key: Key
    dh_key: Key
    expires: Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]
    signature: Signature

    def signed_part(self) -> bytes:
        """What the authority signed."""
        fields = [self.network, self.member_id, self.sign_key, self.dh_key, self.expires]
        return DOMAIN_CERTIFICATE + msgspec.msgpack.encode(fields)


class Revocations(msgspec.Struct, array_like=True, frozen=True):
    """Member ids the authority no longer vouches for, as of ``issued`` (Unix seconds)."""

    network: Key
    revoked: list[MemberId]
    issued: int
    signature: Signature

    def signed_part(self) -> bytes:
        """What the authority signed."""
        return DOMAIN_REVOCATIONS + msgspec.msgpack.encode(
            [self.network, sorted(self.revoked), self.issued]
        )


_certificate = msgspec.msgpack.Decoder(Certificate)
_revocations = msgspec.msgpack.Decoder(Revocations)


def _raw(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _derived(seed: bytes, purpose: bytes) -> bytes:
    """32 bytes for a private key, derived from ``seed`` (simulations: keys per seed)."""
    return hashlib.sha256(purpose + b"\0" + seed).digest()


@dataclass(frozen=True)
class MemberKeys:
    """A member's private keys: one to sign, one to agree secrets."""

    sign: Ed25519PrivateKey
    dh: X25519PrivateKey

    @classmethod
    def generate(cls, seed: bytes | None = None) -> MemberKeys:
        """Fresh keys; from ``seed`` the same keys every time (for simulations and tests)."""
        if seed is None:
            return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
        return cls(
            Ed25519PrivateKey.from_private_bytes(_derived(seed, b"sign")),
            X25519PrivateKey.from_private_bytes(_derived(seed, b"dh")),
        )

    @property
    def sign_key(self) -> bytes:
        """The public signing key."""
        return _raw(self.sign.public_key())

    @property
    def dh_key(self) -> bytes:
        """The public key-agreement key."""
        return _raw(self.dh.public_key())

    def save(self, path: Path) -> None:
        """Write both private keys to ``path``, readable by its owner only."""
        _write_private(path, _pem(self.sign) + _pem(self.dh))

    @classmethod
    def load(cls, path: Path) -> MemberKeys:
        """Read keys written by :meth:`save`; :class:`KeyFileError` says what is wrong."""
        blocks = _read_private(path).split(b"-----END PRIVATE KEY-----")
        try:
            sign = serialization.load_pem_private_key(
                blocks[0] + b"-----END PRIVATE KEY-----\n", None
            )
            dh = serialization.load_pem_private_key(
                blocks[1] + b"-----END PRIVATE KEY-----\n", None
            )
        except (ValueError, IndexError, TypeError) as exc:
            raise KeyFileError(f"{path}: not a member's key file ({exc})") from None
        if not isinstance(sign, Ed25519PrivateKey) or not isinstance(dh, X25519PrivateKey):
            raise KeyFileError(f"{path}: expected an Ed25519 and an X25519 private key")
        return cls(sign, dh)


@dataclass(frozen=True)
class Authority:
    """A network's authority: the key pair that certifies members."""

    key: Ed25519PrivateKey

    @classmethod
    def generate(cls, seed: bytes | None = None) -> Authority:
        """A new network; from ``seed`` the same one every time."""
        if seed is None:
            return cls(Ed25519PrivateKey.generate())
        return cls(Ed25519PrivateKey.from_private_bytes(_derived(seed, b"network")))

    @property
    def network(self) -> bytes:
        """The network's public key, which names the network."""
        return _raw(self.key.public_key())

    def issue(self, member_id: str, keys: MemberKeys, expires: int) -> Certificate:
        """A certificate binding ``keys`` to ``member_id`` until ``expires``."""
        unsigned = Certificate(
            self.network, member_id, keys.sign_key, keys.dh_key, expires, bytes(64)
        )
        return msgspec.structs.replace(unsigned, signature=self.key.sign(unsigned.signed_part()))

    def revocations(self, revoked: list[str], issued: int) -> Revocations:
        """A signed list of the member ids no longer vouched for."""
        unsigned = Revocations(self.network, sorted(set(revoked)), issued, bytes(64))
        return msgspec.structs.replace(unsigned, signature=self.key.sign(unsigned.signed_part()))


@dataclass
class Trust:
    """What a member of one network accepts: certificates that network's authority signed, not
    expired (by ``clock``, Unix seconds) and not revoked. Checked certificates are remembered
    by their encoding, so each is verified once."""

    network: bytes
    clock: object = field(repr=False)  # () -> float, Unix seconds
    revoked: frozenset[str] = frozenset()
    _checked: dict[bytes, Certificate] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._authority = Ed25519PublicKey.from_public_bytes(self.network)

    def load_revocations(self, revocations: Revocations) -> None:
        """Take a revocation list, after checking the authority signed it."""
        if revocations.network != self.network or not self._signed(revocations):
            raise KeyFileError("a revocation list this network's authority did not sign")
        self.revoked = frozenset(revocations.revoked)

    def check(self, encoded: bytes, member_id: str | None = None) -> Certificate:
        """The certificate in ``encoded``, if this network vouches for it now: signed by its
        authority, not expired, not revoked, and naming ``member_id`` if given;
        :class:`BadCertificate` says why not."""
        cert = self.authentic(encoded, member_id)
        if cert.member_id in self.revoked:
            raise BadCertificate(f"certificate of {cert.member_id!r} is revoked")
        if cert.expires <= self.clock():  # type: ignore[operator]
            raise BadCertificate(f"certificate of {cert.member_id!r} has expired")
        return cert

    def authentic(self, encoded: bytes, member_id: str | None = None) -> Certificate:
        """The certificate in ``encoded``, if this network's authority signed it (and it names
        ``member_id``, if given), expired or revoked since or not."""
        cert = self._checked.get(encoded)
        if cert is None:
            try:
                cert = _certificate.decode(encoded)
            except (msgspec.DecodeError, RecursionError) as exc:
                raise BadCertificate(f"undecodable certificate: {exc}") from None
            if cert.network != self.network:
                raise BadCertificate(f"certificate of {cert.member_id!r} is another network's")
            if not self._signed(cert):
                raise BadCertificate(
                    f"certificate of {cert.member_id!r} was not signed by this network"
                )
            if len(self._checked) > 100_000:
                self._checked.clear()
            self._checked[encoded] = cert
        if member_id is not None and cert.member_id != member_id:
            raise BadCertificate(f"certificate of {cert.member_id!r} presented as {member_id!r}")
        return cert

    def _signed(self, signed: Certificate | Revocations) -> bool:
        try:
            self._authority.verify(signed.signature, signed.signed_part())
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Identity:
    """What a member of a secure network carries: its id, keys and encoded certificate, and
    the network's trust; ``rng`` makes its handshake nonces in a simulation, where runs must
    repeat (elsewhere they come from the operating system)."""

    member_id: str
    keys: MemberKeys
    certificate: bytes
    trust: Trust
    rng: random.Random | None = field(default=None, repr=False)


#: When the certificates a run's own authority issues expire (2100-01-01): not within a run.
RUN_EXPIRY: Final = 4_102_444_800
#: The Unix time a simulation's clock starts at, as certificates' expiry reads it (2026-01-01).
SIM_EPOCH: Final = 1_767_225_600


class RunCredentials:
    """The network authority a secure scenario makes for one run, and its members' identities
    (the same keys in every life of a member).

    Everything is derived from the run's seed, so that the simulation repeats and every backend
    (and every worker process) holds the same network: a model of secure mode, for measuring
    and testing it, not a secret. Real deployments make their keys with ``peerlab keys``.
    """

    def __init__(self, seed: int, clock: Callable[[], float], *, simulated: bool) -> None:
        self.seed = seed
        self.simulated = simulated
        self.authority = Authority.generate(f"{seed}:authority".encode())
        self.trust = Trust(self.authority.network, clock)
        self._identities: dict[str, Identity] = {}
        self._tls: dict[str, TlsContexts] = {}
        self._tls_files: tempfile.TemporaryDirectory | None = None

    def identity(self, member_id: str) -> Identity:
        """Member ``member_id``'s identity in this run."""
        identity = self._identities.get(member_id)
        if identity is None:
            keys = MemberKeys.generate(f"{self.seed}:{member_id}".encode())
            cert = self.authority.issue(member_id, keys, RUN_EXPIRY)
            rng = random.Random(f"{self.seed}:{member_id}:nonces") if self.simulated else None
            identity = Identity(member_id, keys, msgspec.msgpack.encode(cert), self.trust, rng)
            self._identities[member_id] = identity
        return identity

    def tls(self, member_id: str) -> TlsContexts:
        """Member ``member_id``'s TLS contexts in this run (their files live in a private
        temporary folder while the process does)."""
        contexts = self._tls.get(member_id)
        if contexts is not None:
            return contexts
        if self._tls_files is None:
            self._tls_files = tempfile.TemporaryDirectory(prefix="peerlab-tls-")
            network = Path(self._tls_files.name) / "network.pem"
            network.write_bytes(network_pem(self.authority.key))
        folder = Path(self._tls_files.name)
        keys = self.identity(member_id).keys
        certificate, key = folder / f"{member_id}.pem", folder / f"{member_id}.key"
        certificate.write_bytes(
            member_pem(self.authority.key, member_id, keys.sign.public_key(), RUN_EXPIRY)
        )
        _write_private(key, _pem(keys.sign))
        contexts = self._tls[member_id] = TlsContexts.load(folder / "network.pem", certificate, key)
        return contexts


# --- files ---------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable and writable by its owner only (never overwriting)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists already; not overwriting a private key") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _read_private(path: Path) -> bytes:
    """A private key file's bytes, refused if anyone but its owner may read it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path} may be read by others (mode {stat.S_IMODE(mode):04o}); "
            f"a private key must be its owner's alone: chmod 600 {path}"
        )
    return path.read_bytes()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the {what}: {exc.strerror}") from None


class KeyDir:
    """A folder of keys as ``peerlab keys`` writes it (see the module's doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def init_network(self) -> Authority:
        """Make a new network authority here."""
        self.path.mkdir(parents=True, exist_ok=True)
        authority = Authority.generate()
        _write_private(self.path / "network.key", _pem(authority.key))
        (self.path / "network.pub").write_text(authority.network.hex() + "\n")
        (self.path / "network.pem").write_bytes(network_pem(authority.key))
        return authority

    def authority(self) -> Authority:
        """The network authority kept here."""
        path = self.path / "network.key"
        key = serialization.load_pem_private_key(_read_private(path), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 private key")
        return Authority(key)

    def network(self) -> bytes:
        """The network's public key."""
        path = self.path / "network.pub"
        try:
            key = bytes.fromhex(_read(path, "network key").decode().strip())
        except (ValueError, UnicodeDecodeError):
            raise KeyFileError(f"{path}: not a network key (64 hex digits)") from None
        if len(key) != 32:
            raise KeyFileError(f"{path}: not a network key (64 hex digits)")
        return key

    def issue(self, member_id: str, expires: int) -> Certificate:
        """New keys and a certificate for ``member_id``, written here."""
        authority = self.authority()
        keys = MemberKeys.generate()
        cert = authority.issue(member_id, keys, expires)
        keys.save(self.path / f"{member_id}.key")
        (self.path / f"{member_id}.cert").write_bytes(msgspec.msgpack.encode(cert))
        (self.path / f"{member_id}.pem").write_bytes(
            member_pem(authority.key, member_id, keys.sign.public_key(), expires)
        )
        return cert

    def revoke(self, member_id: str, now: int) -> Revocations:
        """Add ``member_id`` to the network's revocation list here."""
        revoked = [*self.revocations().revoked, member_id] if self._has("revoked") else [member_id]
        revocations = self.authority().revocations(revoked, now)
        (self.path / "revoked").write_bytes(msgspec.msgpack.encode(revocations))
        return revocations

    def revocations(self) -> Revocations:
        """The revocation list kept here."""
        try:
            return _revocations.decode(_read(self.path / "revoked", "revocation list"))
        except msgspec.DecodeError as exc:
            raise KeyFileError(f"{self.path / 'revoked'}: not a revocation list ({exc})") from None

    def identity(self, member_id: str, clock: object) -> Identity:
        """Member ``member_id``'s identity as kept here, with the network's trust (and its
        revocation list, if there is one); the certificate is checked as peers will."""
        trust = Trust(self.network(), clock)
        if self._has("revoked"):
            trust.load_revocations(self.revocations())
        keys = MemberKeys.load(self.path / f"{member_id}.key")
        certificate = _read(self.path / f"{member_id}.cert", "certificate")
        try:
            cert = trust.check(certificate, member_id)
        except BadCertificate as exc:
            raise KeyFileError(f"{self.path / (member_id + '.cert')}: {exc}") from None
        if cert.sign_key != keys.sign_key or cert.dh_key != keys.dh_key:
            raise KeyFileError(f"{member_id}.cert is not for the keys in {member_id}.key")
        return Identity(member_id, keys, certificate, trust)

    def tls(self, member_id: str) -> TlsContexts:
        """Member ``member_id``'s TLS contexts from the certificates kept here."""
        key = self.path / f"{member_id}.key"
        _read_private(key)
        files = [self.path / "network.pem", self.path / f"{member_id}.pem"]
        for path in files:
            if not path.exists():
                raise KeyFileError(f"{path}: no TLS certificate here (issue {member_id!r} again)")
        try:
            return TlsContexts.load(*files, key)
        except (ssl.SSLError, OSError) as exc:
            raise KeyFileError(f"{self.path}: cannot use the TLS certificates: {exc}") from None

    def _has(self, name: str) -> bool:
        return (self.path / name).exists()
