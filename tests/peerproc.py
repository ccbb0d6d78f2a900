"""Driving `peerlab member` processes from tests (and the soak benchmark): every read has a
deadline."""

from __future__ import annotations

import itertools
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable


def _popen(cmd: list[str]) -> subprocess.Popen:
    """A member process typed to on stdin, its stderr mixed into its stdout, line by line."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def spawn(cmd: list[str]) -> subprocess.Popen:
    """Start a member process; a thread reads its output into ``proc.lines``."""
    proc = _popen(cmd)
    proc.lines = queue.Queue()
    proc.reader = threading.Thread(
        target=lambda: [proc.lines.put(x) for x in proc.stdout], daemon=True
    )
    proc.reader.start()
    return proc


def next_line(proc: subprocess.Popen, deadline: float) -> str:
    """The next line of output, or "" if none came before the deadline."""
    try:
        return proc.lines.get(timeout=max(0.01, deadline - time.monotonic()))
    except queue.Empty:
        return ""


def read_until(proc: subprocess.Popen, needle: str, timeout: float = 15) -> str:
    """Output up to and including the line containing ``needle``; fails at the deadline."""
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not seen; output so far:\n{seen}")
        seen += next_line(proc, deadline)
    return seen


def ask(proc: subprocess.Popen, command: str) -> None:
    """Type one command at the member's prompt."""
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


def wait_for_route(proc: subprocess.Popen, dst: str, via: str, timeout: float = 20) -> None:
    """Ask ``routes`` until the member routes to ``dst`` via ``via``."""
    deadline = time.monotonic() + timeout
    while True:
        ask(proc, "routes")
        window = min(deadline, time.monotonic() + 0.5)
        while (line := next_line(proc, window)) != "":
            if line.strip().startswith(f"{dst} via {via}"):
                return
        assert time.monotonic() < deadline, f"no route to {dst} via {via}"


def stop(procs: list[subprocess.Popen]) -> None:
    """Kill what is still running, reap it, join its reader, close its pipes."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        p.reader.join(10)
        p.stdin.close()
        p.stdout.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` just now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.02)


class LiveMember:
    """A `peerlab member` process on ``127.0.0.1:port`` whose every output line is kept, with
    the time it was read (by a thread of its own; ``read=False`` leaves the output to a pipe
    nobody reads). Every wait has a deadline; its file descriptors, memory and CPU time are read
    from /proc."""

    def __init__(
        self, member_id: str, join: Iterable[str] = (), *flags: str, read: bool = True
    ) -> None:
        self.id = member_id
        self.address = f"127.0.0.1:{free_port()}"
        self.log: list[str] = []
        self.times: list[float] = []  # when each line of the log was read
        self._lock = threading.Lock()
        self._start(list(join), flags, read)

    def _start(self, join: list[str], flags: tuple[str, ...], read: bool) -> None:
        cmd = [sys.executable, "-m", "peerlab", "member", "--id", self.id]
        cmd += ["--listen", self.address, "--redial", "0.2", *flags]
        if join:
            cmd += ["--join", *join]
        self.proc = _popen(cmd)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True) if read else None
        if self.reader is not None:
            self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.log.append(line)
                self.times.append(time.monotonic())

    def restart(self) -> None:
        """Kill the process (no goodbye) and start a new one at the same address, joining
        nobody; the log goes on."""
        self.close()
        self._start([], (), True)

    def lines(self, start: int = 0) -> list[str]:
        """The lines printed so far, from line ``start`` on."""
        with self._lock:
            return self.log[start:]

    def timed_lines(self) -> list[tuple[str, float]]:
        """Every line printed so far, with when it was read."""
        with self._lock:
            return list(zip(self.log, self.times, strict=True))

    def saw(self, text: str, start: int = 0) -> bool:
        """Whether a line from line ``start`` on contains ``text``."""
        return any(text in line for line in self.lines(start))

    def wait_for(self, text: str, timeout: float = 15.0, start: int = 0) -> None:
        """Wait until a line from line ``start`` on contains ``text``; fail at the deadline."""
        deadline = time.monotonic() + timeout
        while not self.saw(text, start):
            assert self.proc.poll() is None, f"{self.id} exited: {''.join(self.lines()[-20:])}"
            assert time.monotonic() < deadline, f"{self.id}: no {text!r} within {timeout}s"
            time.sleep(0.02)

    def ask(self, command: str) -> None:
        """Type one command at the member's prompt."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_for_route(self, dst: str, via: str = "", timeout: float = 15.0) -> None:
        """Ask ``routes`` until the member routes to ``dst`` (via ``via``, if given)."""
        deadline = time.monotonic() + timeout
        route = f"{dst} via {via} " if via else f"{dst} via "
        while True:
            start = len(self.lines())
            self.ask("routes")
            window = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < window:
                if any(x.strip().startswith(route) for x in self.lines(start)):
                    return
                time.sleep(0.02)
            assert time.monotonic() < deadline, f"{self.id}: no route to {dst} via {via}"

    def status(self, field: str) -> int:
        """A number of kilobytes (or a count) from /proc/PID/status, e.g. ``VmRSS``."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def rss(self) -> int:
        """Resident memory, in bytes."""
        return self.status("VmRSS") << 10

    def peak_rss(self) -> int:
        """The most resident memory since the process started or :meth:`reset_peak`, in bytes."""
        return self.status("VmHWM") << 10

    def reset_peak(self) -> None:
        """Start measuring :meth:`peak_rss` afresh (from the resident memory now)."""
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")

    def fds(self) -> int:
        """Open file descriptors."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def top_fd(self) -> int:
        """The highest open file descriptor (a new one takes the lowest free number)."""
        return max(map(int, os.listdir(f"/proc/{self.pid}/fd")))

    def cpu(self) -> float:
        """CPU seconds used so far (user and system)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def quit(self, timeout: float = 10.0) -> int:
        """Type ``quit`` and wait for the process to end; its exit status."""
        self.ask("quit")
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Kill what is still running, reap it, join its reader, close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.reader is not None:
            self.reader.join(10)
        self.proc.stdin.close()
        self.proc.stdout.close()


_runs = itertools.count(1)


class Traffic:
    """``src`` sends numbered messages to ``dst``, ``rate`` a second, from a thread, for as
    long as the ``with`` block lasts; ``dst``'s output says which arrived, and when."""

    def __init__(self, src: LiveMember, dst: LiveMember, rate: float) -> None:
        self.tag = f"t{next(_runs)}n"  # tells this run's messages from any other's
        self.src, self.dst, self.rate = src, dst, rate
        self.sent: list[float] = []  # when each message was handed to src
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _send(self) -> None:
        while not self._stop.wait(1 / self.rate):
            self.sent.append(time.monotonic())
            self.src.ask(f"send {self.dst.id} {self.tag}{len(self.sent) - 1}")

    def arrivals(self) -> dict[int, float]:
        """When each message that arrived was seen, by number."""
        pattern = re.compile(rf"<{re.escape(self.src.id)}> {self.tag}(\d+) ")
        return {int(m[1]): t for line, t in self.dst.timed_lines() if (m := pattern.match(line))}

    def delivery(self, timeout: float = 10.0) -> float:
        """The share of the messages sent that arrived, once all have or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals()) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.arrivals()) / max(1, len(self.sent))

    def latencies(self) -> list[float]:
        """Seconds from sending to arrival of each message that arrived."""
        return [t - self.sent[n] for n, t in self.arrivals().items()]
