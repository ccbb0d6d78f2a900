"""The ``peerlab keys init-network|issue|revoke`` commands: a secure network's key folder."""

from __future__ import annotations

import argparse
import time

from peerlab.console import log
from peerlab.errors import PeerlabError
from peerlab.identity import KeyDir
from peerlab.units import parse_duration
from peerlab.wire import member_id_problem

#: How long a certificate is good for unless ``--expires`` says otherwise.
DEFAULT_VALIDITY = "365d"


def add_keys_commands(
    sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """Add ``keys`` (with ``init-network``, ``issue``, ``revoke``) to ``sub``, each taking the
    flags of ``parents`` too."""
    p = sub.add_parser(
        "keys",
        parents=parents,
        help="a secure network's keys: make the network, issue and revoke members",
        description="Secure mode's keys (see README, 'Secure mode'). A folder holds the "
        "network's key pair, its members' keys and certificates and the revocation list; copy "
        "to a member's machine only network.pub, ID.key and ID.cert (and revoked).",
    )
    commands = p.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")

    p = commands.add_parser("init-network", parents=parents, help="make a network's key pair")
    p.add_argument("folder", metavar="DIR")
    p.set_defaults(func=_cmd_init)

    p = commands.add_parser(
        "issue", parents=parents, help="new keys and a certificate for a member"
    )
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--id", required=True, help="the member's id")
    p.add_argument(
        "--expires",
        default=DEFAULT_VALIDITY,
        metavar="DURATION",
        help=f"how long the certificate is good for, e.g. 30d or 12h (default {DEFAULT_VALIDITY})",
    )
    p.set_defaults(func=_cmd_issue)

    p = commands.add_parser(
        "revoke", parents=parents, help="add a member to the network's revocation list"
    )
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--id", required=True, help="the member's id")
    p.set_defaults(func=_cmd_revoke)


def _member_id(text: str) -> str:
    problem = member_id_problem(text)
    if problem is not None:
        raise PeerlabError(f"--id: {problem}")
    return text


def _cmd_init(args: argparse.Namespace) -> int:
    folder = KeyDir(args.folder)
    authority = folder.init_network()
    print(f"network {authority.network.hex()} made in {folder.path}")
    print(f"keep {folder.path / 'network.key'} private: it certifies members")
    return 0


def _cmd_issue(args: argparse.Namespace) -> int:
    member_id = _member_id(args.id)
    try:
        validity = parse_duration(args.expires)
    except ValueError as exc:
        raise PeerlabError(f"--expires: {exc}") from None
    if validity <= 0:
        raise PeerlabError(f"--expires: expected a duration > 0, got {args.expires!r}")
    folder = KeyDir(args.folder)
    cert = folder.issue(member_id, int(time.time() + validity))
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(cert.expires))
    print(f"member {member_id!r} certified until {until}")
    print(
        f"its machine needs {folder.path / 'network.pub'}, {folder.path / (member_id + '.key')} "
        f"and {folder.path / (member_id + '.cert')} (with --tls, {folder.path / 'network.pem'} "
        f"and {folder.path / (member_id + '.pem')} too)"
    )
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    member_id = _member_id(args.id)
    folder = KeyDir(args.folder)
    revocations = folder.revoke(member_id, int(time.time()))
    print(f"member {member_id!r} revoked ({len(revocations.revoked)} in {folder.path / 'revoked'})")
    log.info("members load the revocation list when they start: restart them with it")
    return 0
