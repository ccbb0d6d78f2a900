"""Where the ``proc`` backend's member processes run: here, or on Dask workers.

:class:`LocalPlacement` starts each member's worker process on this machine. With
:class:`DaskPlacement` each member runs as a long task pinned to one worker of a Dask cluster
(members spread over the workers in turn, a member's every life on the same worker): the task
starts the member's process on the worker's machine and passes on the signals the runner's
faults send it (stop, continue, kill) through a Dask queue, until the process ends. The runner
drives the member over the control channel as it drives a local one, so results do not change
with placement.

A LocalCluster of several worker processes stands in for several machines: its workers all run
on 127.0.0.1, and members keep their own loopback addresses (127.0.0.x). On workers of other
hosts a member listens on its worker's host, at a port that worker found free, and dials the
runner's control port at the address this machine reaches the scheduler from.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from peerlab.realnet.forkserver import ForkServer
from peerlab.realnet.transport import is_loopback


class Child(Protocol):
    """A member's process, as the runner sees it (what :class:`subprocess.Popen` offers)."""

    returncode: int | None

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""

    def send_signal(self, sig: int) -> None:
        """Send the process a signal."""

    def kill(self) -> None:
        """SIGKILL the process."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit status; ``subprocess.TimeoutExpired`` after ``timeout``."""


class LocalPlacement:
    """Member processes on this machine, forked from a fork server of the placement's own
    (:mod:`~peerlab.realnet.forkserver`), each in a process group of its own (the terminal's
    Ctrl-C is the runner's to handle)."""

    #: The address the runner's control port listens on.
    control_host = "127.0.0.1"
    #: Whether members may run on other hosts (there they listen on their host's address).
    remote = False

    def host_for(self, member_id: str) -> str | None:
        """Where ``member_id`` listens: None, a loopback address of its own."""
        return None

    def free_port(self, member_id: str, host: str) -> int:
        """A port free on ``host`` where ``member_id`` runs."""
        return _free_port(host)

    def __init__(self) -> None:
        self._forks: ForkServer | None = None

    def start(self, member_id: str, argv: list[str], env: dict[str, str]) -> Child:
        """Start ``member_id``'s worker process (``python -m peerlab.realnet.worker ARGV``),
        forked from the placement's fork server (started on first use)."""
        if self._forks is None:
            self._forks = ForkServer()
        return self._forks.start(argv, env)

    def describe(self, member_id: str) -> str:
        """Where ``member_id`` runs, for the logs."""
        return "this machine"

    def close(self) -> None:
        """End the fork server."""
        if self._forks is not None:
            self._forks.close()
            self._forks = None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_member(cmd: list[str], env: dict[str, str], queue_name: str) -> int:
    """A Dask task: run a member's process on this worker's machine, passing on the signals
    put on the queue ``queue_name`` until the process ends; returns its exit status."""
    from distributed import Queue, secede

    secede()  # a long task: it leaves the worker's thread pool to the other tasks
    signals = Queue(queue_name)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, process_group=0, env={**os.environ, **env}
    )

    def ended() -> None:  # the end of the process ends the wait for signals
        proc.wait()
        signals.put(None)

    threading.Thread(target=ended, name="member-ended", daemon=True).start()
    try:
        while (sig := signals.get()) is not None:
            if proc.poll() is None:
                proc.send_signal(sig)
        return proc.wait()
    finally:
        if proc.poll() is None:  # the task was cancelled: the member goes with it
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


class DaskChild:
    """A member's process running as a task on a Dask worker."""

    def __init__(self, future: Any, signals: Any) -> None:
        self._future = future
        self._signals = signals
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status once the task is over (-1 if the task failed), else None."""
        if self.returncode is None and self._future.done():
            try:
                self.returncode = self._future.result()
            except Exception:
                self.returncode = -1
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Have the task send the process ``sig``."""
        if self.poll() is None:
            self._signals.put(int(sig))

    def kill(self) -> None:
        """SIGKILL the process."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end."""
        try:
            self._future.result(timeout=timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired("member task", timeout or 0.0) from None
        except Exception:
            pass  # the task failed: poll says -1
        returncode = self.poll()
        assert returncode is not None
        return returncode


class DaskPlacement:
    """Member processes as long tasks on the workers of a Dask cluster, spread in turn; every
    life of a member on the same worker. ``client`` is a ``distributed.Client``; ``on_close``
    is called when the network is done with it (to close a cluster made for the run)."""

    def __init__(self, client: Any, *, on_close: Callable[[], None] | None = None) -> None:
        self.client = client
        self._on_close = on_close
        self.workers = sorted(client.scheduler_info()["workers"].items())
        if not self.workers:
            raise RuntimeError("the Dask cluster has no workers to place members on")
        self._run = uuid.uuid4().hex[:12]
        self._where: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lives: dict[str, int] = {}
        scheduler = client.scheduler.address.rpartition("/")[2].rpartition(":")[0].strip("[]")
        self.control_host = "127.0.0.1" if is_loopback(scheduler) else _route_to(scheduler)
        #: Whether members may run on other hosts (there they listen on their host's address).
        self.remote = not all(is_loopback(w.get("host", "127.0.0.1")) for _, w in self.workers)

    def worker_of(self, member_id: str) -> str:
        """The address of the worker ``member_id`` runs on (chosen on first asking)."""
        if member_id not in self._where:
            self._where[member_id] = self.workers[len(self._where) % len(self.workers)]
        return self._where[member_id][0]

    def host_for(self, member_id: str) -> str | None:
        """Where ``member_id`` listens: its worker's host, or None (a loopback address of its
        own) when that worker runs on this machine's loopback."""
        self.worker_of(member_id)
        host = self._where[member_id][1].get("host", "127.0.0.1")
        return None if is_loopback(host) else host

    def free_port(self, member_id: str, host: str) -> int:
        """A port free on ``host``, found by ``member_id``'s worker."""
        worker = self.worker_of(member_id)
        return self.client.run(_free_port, host, workers=[worker])[worker]

    def start(self, member_id: str, argv: list[str], env: dict[str, str]) -> Child:
        """Start ``member_id``'s process (``python -m peerlab.realnet.worker ARGV``) as a task
        pinned to its worker."""
        from distributed import Queue

        cmd = [sys.executable, "-m", "peerlab.realnet.worker", *argv]
        worker = self.worker_of(member_id)
        life = self._lives[member_id] = self._lives.get(member_id, 0) + 1
        name = f"peerlab-{self._run}-{member_id}-{life}"
        signals = Queue(name, client=self.client)
        future = self.client.submit(
            run_member,
            cmd,
            env,
            name,
            key=name,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )
        return DaskChild(future, signals)

    def describe(self, member_id: str) -> str:
        """Where ``member_id`` runs, for the logs."""
        return f"Dask worker {self.worker_of(member_id)}"

    def close(self) -> None:
        """Tell whoever made the client that the network is done with it."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


def _route_to(host: str) -> str:
    """The address of this machine that reaches ``host`` (no packet is sent)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))
        return s.getsockname()[0]
