"""A standalone live member: one process, one real listening socket, a command prompt.

Several of these, on one machine or on many, form a real overlay that relays messages::

    peerlab member --id a --listen 127.0.0.1:9000
    peerlab member --id b --listen 127.0.0.1:9001 --join 127.0.0.1:9000
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from peerlab.errors import PeerlabError
from peerlab.member import Member, MemberConfig
from peerlab.realnet.loop import EventLoop
from peerlab.realnet.transport import TcpTransport, os_reason, parse_address
from peerlab.trace import TraceEvent, Tracer
from peerlab.wire import Data

HELP = """commands:
  send DST TEXT      send TEXT to member DST
  peers              list neighbours
  routes             show the routing table
  graph              show the links this member believes in
  connect HOST:PORT  dial another member
  disconnect PEER    close the connection to a neighbour
  wait SECONDS       pause the script (non-interactive use)
  help               this text
  quit               leave gracefully and exit"""

#: Each command's line of HELP, shown when a known command gets the wrong arguments.
USAGE = {line.split()[0]: line.strip() for line in HELP.splitlines()[1:]}

SHOWN_EVENTS = {"connect", "disconnect", "connect_failed", "drop", "protocol_error"}


class Peer:
    """One live member on its own event loop, driven by text commands."""

    def __init__(
        self,
        member_id: str,
        listen: str,
        *,
        out: TextIO = sys.stdout,
        config: MemberConfig | None = None,
        verbose: bool = True,
    ) -> None:
        host, port = parse_address(listen)
        self.out = out
        self.loop = EventLoop(f"peer-{member_id}").start()
        self.verbose = verbose
        tracer = Tracer(keep=False, sink=self._on_event)
        try:
            self.transport = self.loop.call(
                lambda: TcpTransport(self.loop, host, port, name=member_id)
            )
        except OSError as exc:
            self.loop.stop()
            raise PeerlabError(
                f"cannot listen on {listen}: {os_reason(exc.errno, str(exc))}"
            ) from None
        try:
            self.member = Member(
                member_id,
                self.transport,
                config=config,
                tracer=tracer,
                rng=random.Random(member_id),
                on_deliver=self._on_deliver,
                # a later life of a standalone peer starts later: its wall clock orders its lives
                incarnation=time.time_ns() // 1_000_000,
            )
        except ValueError as exc:  # an id the wire cannot carry
            self.loop.call(self.transport.shutdown)
            self.loop.stop()
            raise PeerlabError(str(exc)) from None
        self.transport.handler = self.member
        self.loop.call(self.transport.start)

    def start(self, join: Iterable[str] = (), retry_every: float = 1.0) -> None:
        """Start the member and dial the ``join`` addresses, again every ``retry_every``
        seconds while one of them is not a neighbour (the others may start later)."""
        join = list(join)

        def retry() -> None:
            if self.member.running:
                connected = self.member.peer_addresses()
                for address in join:
                    if address not in connected:
                        self.member.connect(address)
            if self.member.running:
                self.loop.call_later(retry_every, retry)

        self.loop.call(lambda: self.member.start(join))
        if join:
            self.loop.call(lambda: self.loop.call_later(retry_every, retry))
        self._say(f"member {self.member.id} listening on {self.transport.listen_address}")

    def close(self) -> None:
        """Leave gracefully, close every socket and stop the loop thread."""

        def bye() -> None:
            self.member.leave()

        self.loop.call(bye)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self.loop.call(lambda: bool(self.transport.conns)):
            time.sleep(0.01)
        self.loop.call(self.transport.shutdown)
        self.loop.stop()

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _on_deliver(self, data: Data) -> None:
        text = data.payload.decode(errors="replace")
        self._say(f"<{data.src}> {text}   (path {' -> '.join(data.path)})")

    def _on_event(self, event: TraceEvent) -> None:
        if self.verbose and event.kind in SHOWN_EVENTS:
            fields = " ".join(f"{k}={v}" for k, v in event.fields.items())
            self._say(f"* {event.kind} {fields}")

    def execute(self, line: str) -> bool:
        """Run one command; returns False when the command was ``quit``."""
        line = line.strip()
        words = line.split()
        if not words or words[0].startswith("#"):
            return True
        cmd, args = words[0].lower(), words[1:]
        m = self.member
        if cmd in ("quit", "exit"):
            return False
        if cmd == "help":
            self._say(HELP)
        elif cmd == "send" and len(args) >= 2:
            dst, text = args[0], line.split(None, 2)[2]
            try:
                msg_id = self.loop.call(lambda: m.send(dst, text.encode()))
            except PeerlabError as exc:  # e.g. a text too long for one frame
                self._say(f"error: {exc}")
                return True
            self._say(f"sent {msg_id}")
        elif cmd == "peers":
            self._say(" ".join(self.loop.call(lambda: m.neighbours)) or "(no peers)")
        elif cmd == "routes":
            table = self.loop.call(m.routing_table)
            for dst, r in table.items():
                self._say(f"{dst:>12} via {r['next_hop']} ({r['hops']} hops)")
            if not table:
                self._say("(no routes)")
        elif cmd == "graph":
            for a, b in sorted(self.loop.call(m.view)):
                self._say(f"{a} -- {b}")
        elif cmd == "connect" and len(args) == 1:
            try:
                parse_address(args[0])
            except ValueError as exc:
                self._say(f"error: {exc}")
                return True
            self.loop.call(lambda: m.connect(args[0]))
        elif cmd == "disconnect" and len(args) == 1:
            if not self.loop.call(lambda: m.disconnect(args[0])):
                self._say(f"error: {args[0]!r} is not a neighbour")
        elif cmd == "wait" and len(args) == 1:
            try:
                time.sleep(float(args[0]))
            except ValueError:
                self._say(f"error: wait needs seconds, got {args[0]!r}")
        elif cmd in USAGE:
            self._say(f"error: usage: {USAGE[cmd]}")
        else:
            self._say(f"error: cannot understand {line.strip()!r}; type 'help'")
        return True


def run_peer(
    member_id: str,
    listen: str,
    join: Iterable[str],
    commands: TextIO,
    interactive: bool,
    run_for: float | None = None,
) -> int:
    """Run a peer until ``quit``, end of input (then ``run_for`` more seconds), or Ctrl-C."""
    peer = Peer(member_id, listen)
    try:
        peer.start(join)
        while True:
            if interactive:
                sys.stdout.write(f"{member_id}> ")
                sys.stdout.flush()
            line = commands.readline()
            if not line:
                if run_for is not None:
                    time.sleep(run_for)
                break
            if not peer.execute(line):
                break
    except KeyboardInterrupt:
        pass
    finally:
        peer.close()
    return 0
