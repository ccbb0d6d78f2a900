"""Fast starts of the proc backend's worker processes: a fork server.

A fresh interpreter takes about half a second to import what a worker runs. The fork server
imports it once, then forks a worker on each request: a start costs a fork. One fork server
serves one network and ends with it.

Between the runner and the server, one line each way per message: the runner writes a start
request (``{"argv": [...], "env": {...}}`` as JSON), the server answers ``started PID`` and,
whenever a worker ends, says ``exited PID STATUS`` (the status as :mod:`subprocess` has it:
negative for a signal). Workers are the server's children: it reaps them. Each worker runs in a
process group of its own (a Ctrl-C at the terminal is the runner's to handle), and dies with the
server, which dies with the runner (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import traceback
from typing import IO

from peerlab.realnet import worker


class ForkedChild:
    """A worker the fork server started, as the runner sees it (what :class:`subprocess.Popen`
    offers: see :class:`~peerlab.realnet.placement.Child`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()

    def ended(self, status: int) -> None:
        """The server reaped it with ``status``."""
        self.returncode = status
        self._ended.set()

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send the process a signal (nothing once it has ended)."""
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass  # ended, not yet reported

    def kill(self) -> None:
        """SIGKILL the process."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit status; ``subprocess.TimeoutExpired`` after ``timeout``."""
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode


class ForkServer:
    """The runner's end of a fork server (started on creation)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peerlab.realnet.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._requests: IO[bytes] = self.proc.stdin
        self._children: dict[int, ForkedChild] = {}
        self._started: list[ForkedChild | None] = []  # None: the server is gone
        self._lock = threading.Condition()
        self._one_at_a_time = threading.Lock()  # answers come in the order of the requests
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="forkserver", daemon=True
        )
        self._reader.start()

    def _read(self, answers: IO[bytes]) -> None:
        for line in answers:
            word, *numbers = line.split()
            with self._lock:
                if word == b"started":  # known before its end can be heard of
                    child = self._children[int(numbers[0])] = ForkedChild(int(numbers[0]))
                    self._started.append(child)
                elif word == b"exited":
                    pid, status = map(int, numbers)
                    child = self._children.pop(pid, None)
                    if child is not None:
                        child.ended(status)
                self._lock.notify_all()
        with self._lock:  # the server is gone, and its workers with it
            for child in self._children.values():
                child.ended(-signal.SIGKILL)
            self._children.clear()
            self._started.append(None)
            self._lock.notify_all()

    def start(self, argv: list[str], env: dict[str, str], timeout: float = 20.0) -> ForkedChild:
        """Fork a worker running ``python -m peerlab.realnet.worker ARGV`` with ``env`` added
        to its environment; RuntimeError if the server does not answer."""
        with self._one_at_a_time, self._lock:
            self._requests.write(json.dumps({"argv": argv, "env": env}).encode() + b"\n")
            self._requests.flush()
            if not self._lock.wait_for(lambda: self._started, timeout):
                raise RuntimeError(f"the fork server did not start a worker within {timeout}s")
            child = self._started.pop(0)
            if child is None:
                raise RuntimeError(f"the fork server exited (status {self.proc.poll()})")
            return child

    def close(self) -> None:
        """End the server (and any worker still running), and reap it."""
        try:
            self._requests.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _child(argv: list[str], env: dict[str, str], server_fds: list[int]) -> None:
    """In the forked worker: a process group and environment of its own, the server's pipes
    closed, then the worker; never returns."""
    status = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(-1)
        for fd in server_fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(2, 1)  # the server's answers are on its stdout: a worker writes to stderr
        os.close(null)
        os.environ.update(env)
        status = worker.main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


def serve() -> None:
    """The server: fork a worker per request on stdin, report starts and ends on stdout,
    until stdin closes; then end the workers still running."""
    worker.die_with_parent()
    out = sys.stdout.buffer
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up pipe hears of it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    running: set[int] = set()
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(0, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj == wake_r:
                    os.read(wake_r, 512)
                    for pid, status in _reaped():
                        running.discard(pid)
                        out.write(b"exited %d %d\n" % (pid, status))
                    out.flush()
                    continue
                data = os.read(0, 1 << 16)
                if not data:
                    for pid in running:
                        os.kill(pid, signal.SIGKILL)
                    return
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:
                    request = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        fds = [wake_r, wake_w, selector.fileno()]  # type: ignore[attr-defined]
                        _child(request["argv"], request["env"], fds)
                    running.add(pid)
                    out.write(b"started %d\n" % pid)
                out.flush()


def _reaped() -> list[tuple[int, int]]:
    """The workers that ended, with their exit status (negative: the signal that ended it)."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        ended.append((pid, os.waitstatus_to_exitcode(status)))
    return ended


if __name__ == "__main__":
    serve()
