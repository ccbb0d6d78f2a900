"""A standalone live member: one process, one real listening socket, a command prompt.

Several of these, on one machine or on many, form a real overlay that relays messages::

    peerlab member --id a --listen 127.0.0.1:9000
    peerlab member --id b --listen 127.0.0.1:9001 --join 127.0.0.1:9000

The prompt is :mod:`cmd` on :mod:`readline`: history, completion of commands and member ids,
and events printed above the line being typed. Output goes through a bounded queue and a thread
of its own, so a reader that does not keep up never holds up the member.
"""

from __future__ import annotations

import cmd
import contextlib
import io
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from peerlab import trace as ev
from peerlab.errors import PeerlabError
from peerlab.identity import Identity
from peerlab.member import PEER_LEFT, PROTOCOL_ERROR_REASON, Member, MemberConfig
from peerlab.realnet.loop import EventLoop
from peerlab.realnet.transport import TcpTransport, os_reason, parse_address
from peerlab.tls import TlsContexts
from peerlab.trace import TraceEvent, Tracer
from peerlab.wire import Data

HELP = """commands:
  send DST TEXT      send TEXT to member DST
  peers              list neighbours
  routes             show the routing table
  graph              show the links this member believes in
  connect HOST:PORT  dial another member, and again whenever the link is lost
  disconnect PEER    say Bye to a neighbour and stay apart until 'connect'
  wait SECONDS       pause the script (non-interactive use)
  help               this text
  quit               leave gracefully and exit"""

#: Each command's line of HELP, shown when a known command gets the wrong arguments.
USAGE = {line.split()[0]: line.strip() for line in HELP.splitlines()[1:]}

#: The events shown by default; ``verbosity`` > 0 shows every kind, < 0 none.
SHOWN_EVENTS = frozenset({"connect", "disconnect", "connect_failed", "drop", "protocol_error"})

#: Event lines held for a slow reader before further ones are dropped (and counted).
OUTPUT_QUEUE = 1000

#: How a disconnect's reason starts when the peer closed for a protocol error, saying why.
REFUSED = f"{PEER_LEFT}: {PROTOCOL_ERROR_REASON}"

#: Longest wait between two dials of an address that keeps failing (seconds).
MAX_REDIAL_DELAY = 30.0


_CLEAR_LINE = "\r\x1b[K"


class Output:
    """Lines for a stream, written by a thread of their own: :meth:`put` never waits, so the
    member's loop is never held up by a reader that does not keep up. At most ``limit`` lines
    wait; what comes beyond is dropped, counted, and said once the reader catches up.

    On a terminal, ``prompt`` (when it gives a prompt) is drawn again below each line, with
    what has been typed so far, so that lines appear above the line being edited.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        limit: int = OUTPUT_QUEUE,
        prompt: Callable[[], str | None] | None = None,
    ) -> None:
        self.stream = stream
        self.prompt = prompt
        self.dropped = 0
        self._said = 0  # drops already reported
        self._lines: queue.Queue[str | None] = queue.Queue(limit)
        self._lock = threading.Lock()
        self._fd = _fileno(stream)
        if self._fd is not None:
            stream.flush()  # what was written through the stream before goes first
        self._thread = threading.Thread(target=self._run, name="peer-output", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue ``line`` for writing; drop it (counted) if the queue is full."""
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def write(self, text: str) -> None:
        """Write ``text`` now, after any line being written (for replies to commands)."""
        with self._lock:
            self._send(text)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds) and stop the thread; a
        thread still blocked on a reader that never reads is left to end with the process."""
        with contextlib.suppress(queue.Full):
            self._lines.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            line = self._lines.get()  # None: the end
            with self._lock:
                text = "" if line is None else line + "\n"
                if (line is None or self._lines.empty()) and self.dropped > self._said:
                    text += f"* {self.dropped - self._said} lines not shown: output was not "
                    text += "keeping up\n"
                    self._said = self.dropped
                prompt = self.prompt() if self.prompt is not None else None
                if prompt is not None and text:
                    text = _CLEAR_LINE + text + prompt
                self._send(text)
            if line is None:
                return

    def _send(self, text: str) -> None:
        try:
            if self._fd is None:
                self.stream.write(text)
                self.stream.flush()
                return
            data = text.encode(errors="replace")
            while data:  # straight to the file: no buffer lock held if the process exits
                data = data[os.write(self._fd, data) :]
        except (OSError, ValueError):
            pass  # the reader or the terminal is gone, or the stream closed: nothing to show on


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return None


@dataclass
class _Dial:
    """An address kept dialled: when to try again, and how long to wait after that."""

    next_at: float
    delay: float


class Peer:
    """One live member on its own event loop, with the addresses it keeps dialled.

    An address given to :meth:`start` or :meth:`connect` is dialled again whenever the member
    met there is not a neighbour, waiting twice as long after each try (up to
    :data:`MAX_REDIAL_DELAY`), until that member says Bye or is disconnected with
    :meth:`disconnect`. Only dialling an address says who is there: what a peer announces (the
    listen address in its Hello, the address in its advert) neither stops nor starts a dial.
    """

    def __init__(
        self,
        member_id: str,
        listen: str,
        *,
        out: TextIO = sys.stdout,
        config: MemberConfig | None = None,
        verbosity: int = 0,
        output: Output | None = None,
        identity: Identity | None = None,
        tls: TlsContexts | None = None,
    ) -> None:
        self.output = output or Output(out)
        self.shown = ev.KINDS if verbosity > 0 else frozenset() if verbosity < 0 else SHOWN_EVENTS
        self._wanted: dict[str, _Dial] = {}  # address -> when to dial it again
        self._peer_at: dict[str, str] = {}  # address kept dialled -> id of the member met there
        self._retry_every = 1.0
        self.loop = EventLoop(f"peer-{member_id}").start()
        try:
            self.transport, self.member = self._open(member_id, listen, config, identity, tls)
        except BaseException:
            self._stop()
            raise
        self.transport.handler = self.member
        self.loop.call(self.transport.start)

    def _open(
        self,
        member_id: str,
        listen: str,
        config: MemberConfig | None,
        identity: Identity | None,
        tls: TlsContexts | None,
    ) -> tuple[TcpTransport, Member]:
        host, port = parse_address(listen, listening=True)
        try:
            transport = self.loop.call(
                lambda: TcpTransport(self.loop, host, port, name=member_id, tls=tls)
            )
        except OSError as exc:
            raise PeerlabError(
                f"cannot listen on {listen}: {os_reason(exc.errno, str(exc))}"
            ) from None
        tracer = Tracer(
            kinds=self.shown | {ev.CONNECT, ev.DISCONNECT}, keep=False, sink=self._on_event
        )
        try:
            member = Member(
                member_id,
                transport,
                config=config,
                tracer=tracer,
                rng=random.Random(member_id),
                on_deliver=self._on_deliver,
                # a later life of a standalone peer starts later: its wall clock orders its lives
                incarnation=time.time_ns() // 1_000_000,
                identity=identity,
            )
        except ValueError as exc:  # an id the wire cannot carry
            self.loop.call(transport.shutdown)
            raise PeerlabError(str(exc)) from None
        return transport, member

    @property
    def id(self) -> str:
        """This member's id."""
        return self.member.id

    def start(self, join: Iterable[str] = (), retry_every: float = 1.0) -> None:
        """Start the member and keep the ``join`` addresses dialled (the others may start
        later); ``retry_every`` is the first wait between two dials of an address."""
        join = list(join)
        self._retry_every = retry_every

        def begin() -> None:
            for address in join:
                self._want(address)
            self.member.start(join)
            self.loop.call_later(retry_every, self._redial)

        self.loop.call(begin)
        self.say(f"member {self.member.id} listening on {self.transport.listen_address}")

    def close(self) -> None:
        """Leave gracefully, close every socket, stop the loop thread and the output."""
        self.loop.call(self.member.leave)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self.loop.call(lambda: bool(self.transport.conns)):
            time.sleep(0.01)
        self.loop.call(self.transport.shutdown)
        self._stop()

    def _stop(self) -> None:
        self.loop.stop()
        self.output.close()

    def say(self, text: str) -> None:
        """Show ``text`` (a reply to a command) now."""
        self.output.write(text + "\n")

    # --- what the commands do -------------------------------------------------------------

    def send(self, dst: str, text: str) -> str:
        """Send ``text`` to member ``dst``; returns the message id."""
        return self.loop.call(lambda: self.member.send(dst, text.encode()))

    def connect(self, address: str) -> None:
        """Dial ``address`` now, and keep it dialled (even after a Bye or a disconnect)."""
        parse_address(address)

        def dial() -> None:
            self._want(address)
            self.member.connect(address)

        self.loop.call(dial)

    def disconnect(self, peer: str) -> bool:
        """Say Bye to neighbour ``peer``, close the connection and stop dialling it; False if
        ``peer`` is not a neighbour."""

        def part() -> bool:
            if not self.member.disconnect(peer, f"disconnected by {self.member.id}", bye=True):
                return False
            self._unwant(peer)
            return True

        return self.loop.call(part)

    def neighbours(self) -> list[str]:
        """Ids of the established neighbours."""
        return self.loop.call(lambda: self.member.neighbours)

    def routing_table(self) -> dict[str, dict[str, str | int]]:
        """The member's routing table."""
        return self.loop.call(self.member.routing_table)

    def view(self) -> set[tuple[str, str]]:
        """The links the member believes in."""
        return self.loop.call(self.member.view)

    def known(self) -> list[str]:
        """Ids of the members in this member's link-state database, but itself."""
        return self.loop.call(lambda: sorted(m for m in self.member.db if m != self.member.id))

    # --- on the loop thread ---------------------------------------------------------------

    def _want(self, address: str) -> None:
        self._wanted[address] = _Dial(self.loop.now() + self._retry_every, self._retry_every)

    def _unwant(self, peer: str) -> None:
        """Stop dialling the addresses where ``peer`` was met."""
        for address in [a for a, met in self._peer_at.items() if met == peer]:
            del self._peer_at[address]
            self._wanted.pop(address, None)

    def _redial(self) -> None:
        if not self.member.running:
            return
        now = self.loop.now()
        neighbours = set(self.member.neighbours)
        for address, dial in self._wanted.items():
            if self._peer_at.get(address) not in neighbours and now >= dial.next_at:
                self.member.connect(address)
                dial.next_at = now + dial.delay
                dial.delay = min(dial.delay * 2, MAX_REDIAL_DELAY)
        self.loop.call_later(self._retry_every, self._redial)

    def _on_deliver(self, data: Data) -> None:
        text = data.payload.decode(errors="replace")
        self.output.put(f"<{data.src}> {text}   (path {' -> '.join(data.path)})")

    def _on_event(self, event: TraceEvent) -> None:
        fields = event.fields
        peer = fields.get("peer")
        if peer is not None and event.kind in (ev.CONNECT, ev.DISCONNECT):
            address = fields.get("address", "")
            dial = self._wanted.get(address)
            # our dial of a kept address met ``peer`` there (also when that connection closed
            # as the duplicate of one the peer had opened to us)
            if dial is not None:
                self._peer_at[address] = peer
                if event.kind == ev.CONNECT:  # reached again: the next loss starts the waits afresh
                    dial.delay = self._retry_every
            reason = str(fields.get("reason", ""))
            # a Bye that names a protocol error refuses this connection, not every later one
            if (
                event.kind == ev.DISCONNECT
                and reason.startswith(PEER_LEFT)
                and not reason.startswith(REFUSED)
            ):
                self._unwant(peer)
        if event.kind in self.shown:
            self.output.put(f"* {event.kind} " + " ".join(f"{k}={v}" for k, v in fields.items()))


class Shell(cmd.Cmd):
    """The commands of a live member (see :data:`HELP`), read from a terminal with line
    editing, history and completion, or one per line from a script."""

    def __init__(self, peer: Peer, stdin: TextIO | None = None, interactive: bool = False) -> None:
        super().__init__(stdin=stdin, stdout=_Replies(peer))
        self.peer = peer
        self.use_rawinput = interactive
        self.prompt = f"{peer.id}> " if interactive else ""
        self._editing = False  # whether the user is at the prompt (events redraw it)

    # --- the loop -------------------------------------------------------------------------

    def preloop(self) -> None:
        """Complete words separated by spaces only (member ids may hold other punctuation)."""
        if self.use_rawinput:
            import readline

            readline.set_completer_delims(" \t\n")
            readline.set_pre_input_hook(self._at_prompt)

    def postloop(self) -> None:
        """Leave the readline hooks as they were."""
        if self.use_rawinput:
            import readline

            readline.set_pre_input_hook(None)

    def _at_prompt(self) -> None:
        self._editing = True

    def showing_prompt(self) -> str | None:
        """The prompt with what has been typed, if the user is at the prompt; else None."""
        if not self._editing:
            return None
        import readline

        return self.prompt + readline.get_line_buffer()

    def precmd(self, line: str) -> str:
        """The user is no longer at the prompt; comments are ignored."""
        self._editing = False
        return "" if line.lstrip().startswith("#") else line

    def emptyline(self) -> bool:
        """An empty line does nothing (not the last command again)."""
        return False

    def default(self, line: str) -> bool:
        """An unknown command."""
        self.peer.say(f"error: cannot understand {line.strip()!r}; type 'help'")
        return False

    def completenames(self, text: str, *ignored: object) -> list[str]:
        """Command names that start with ``text``."""
        return _words([name for name in USAGE if name.startswith(text)])

    def _complete_id(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        if len(line[:begidx].split()) != 1:  # only the command's first argument is an id
            return []
        return _words([m for m in self.peer.known() if m.startswith(text)])

    complete_send = complete_disconnect = _complete_id

    def _usage(self, command: str) -> bool:
        self.peer.say(f"error: usage: {USAGE[command]}")
        return False

    # --- the commands ---------------------------------------------------------------------

    def do_help(self, arg: str) -> bool:
        """Show the commands."""
        self.peer.say(HELP)
        return False

    def do_send(self, arg: str) -> bool:
        """send DST TEXT"""
        words = arg.split(None, 1)
        if len(words) != 2:
            return self._usage("send")
        try:
            self.peer.say(f"sent {self.peer.send(words[0], words[1])}")
        except PeerlabError as exc:  # e.g. a text too long for one frame
            self.peer.say(f"error: {exc}")
        return False

    def do_peers(self, arg: str) -> bool:
        """peers"""
        self.peer.say(" ".join(self.peer.neighbours()) or "(no peers)")
        return False

    def do_routes(self, arg: str) -> bool:
        """routes"""
        table = self.peer.routing_table()
        for dst, r in table.items():
            self.peer.say(f"{dst:>12} via {r['next_hop']} ({r['hops']} hops)")
        if not table:
            self.peer.say("(no routes)")
        return False

    def do_graph(self, arg: str) -> bool:
        """graph"""
        for a, b in sorted(self.peer.view()):
            self.peer.say(f"{a} -- {b}")
        return False

    def do_connect(self, arg: str) -> bool:
        """connect HOST:PORT"""
        if len(arg.split()) != 1:
            return self._usage("connect")
        try:
            self.peer.connect(arg.strip())
        except ValueError as exc:
            self.peer.say(f"error: {exc}")
        return False

    def do_disconnect(self, arg: str) -> bool:
        """disconnect PEER"""
        if len(arg.split()) != 1:
            return self._usage("disconnect")
        if not self.peer.disconnect(arg.strip()):
            self.peer.say(f"error: {arg.strip()!r} is not a neighbour")
        return False

    def do_wait(self, arg: str) -> bool:
        """wait SECONDS"""
        try:
            seconds = float(arg)
        except ValueError:
            self.peer.say(f"error: wait needs seconds, got {arg.strip()!r}")
            return False
        time.sleep(max(0.0, seconds))
        return False

    def do_quit(self, arg: str) -> bool:
        """quit"""
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:
        """The end of the input: quit."""
        if self.use_rawinput:
            self.peer.say("")  # the shell's prompt starts on a line of its own
        return True


def _words(matches: list[str]) -> list[str]:
    """Completions, a lone one followed by a space (readline adds none)."""
    return [matches[0] + " "] if len(matches) == 1 else matches


class _Replies:
    """The shell's standard output: through the peer's output, in order with its events."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def write(self, text: str) -> None:
        self.peer.output.write(text)

    def flush(self) -> None:
        pass


def run_peer(
    member_id: str,
    listen: str,
    join: Iterable[str],
    commands: TextIO,
    interactive: bool,
    run_for: float | None = None,
    *,
    verbosity: int = 0,
    redial: float = 1.0,
    identity: Identity | None = None,
    config: MemberConfig | None = None,
    tls: TlsContexts | None = None,
) -> int:
    """Run a peer until ``quit`` or the end of the input (then ``run_for`` more seconds); it
    leaves gracefully, also when interrupted (the interrupt goes on to the caller).
    ``redial`` is the first wait before a lost address is dialled again; with an ``identity``
    the peer runs in secure mode, and with ``tls`` its links are encrypted too."""
    shell: Shell | None = None
    output = Output(sys.stdout, prompt=lambda: shell.showing_prompt() if shell else None)
    peer = Peer(
        member_id,
        listen,
        verbosity=verbosity,
        output=output,
        identity=identity,
        config=config,
        tls=tls,
    )
    shell = Shell(peer, commands, interactive)
    try:
        peer.start(join, retry_every=redial)
        shell.cmdloop()
        if run_for is not None:
            time.sleep(run_for)
    except KeyboardInterrupt:
        if interactive:
            peer.say("")  # the shell's prompt starts on a line of its own
        raise
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            peer.close()
    return 0
