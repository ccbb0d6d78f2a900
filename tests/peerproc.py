"""Driving `peerlab member` processes from tests: every read has a deadline."""

from __future__ import annotations

import queue
import subprocess
import threading
import time


def spawn(cmd: list[str]) -> subprocess.Popen:
    """Start a member process; a thread reads its output into ``proc.lines``."""
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
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
