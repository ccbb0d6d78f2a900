"""Running what a campaign has not done yet: on Dask (an embedded LocalCluster, or a cluster's
scheduler), or in this process with no Dask at all. Where a run happens does not change what it
computes: each is a plain function of its scenario and backend."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerlab.campaign.spec import Campaign, Run, load_campaign
from peerlab.campaign.store import CampaignFolder
from peerlab.console import Progress
from peerlab.errors import PeerlabError
from peerlab.scenario import Scenario

#: where a cluster's scheduler is named when no address is given
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def execute_run(scenario: Scenario, backend: str) -> dict[str, Any]:
    """Run one scenario on ``backend`` and measure it: what a worker sends back. A run that
    raises is reported in ``error``, not raised, so one bad run cannot stop a campaign."""
    from peerlab.campaign.metrics import measure
    from peerlab.runner import run

    try:
        result = run(scenario, backend)
    except Exception as exc:  # any failure of the run is its outcome, kept with the others
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "failed": [], "metrics": {}}
    return {
        "ok": result.ok,
        "error": None,
        "failed": [e["name"] for e in result.expectations if not e["ok"]],
        "metrics": measure(result, scenario),
    }


@dataclass
class CampaignReport:
    """What running a campaign did: where it ran runs (None if it had none to run), how many
    distinct runs the campaign holds, how many were done before, how many ran now, and the
    records of every run that is not ok."""

    campaign: Campaign
    folder: Path
    where: str | None
    total: int
    skipped: int
    ran: int
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every run of the campaign is ok."""
        return not self.failed


def run_campaign(
    campaign: Campaign | str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    serial: bool = False,
    rerun_failed: bool = False,
    progress: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> CampaignReport:
    """Run every run of ``campaign`` (or a campaign file) that folder ``out`` does not hold yet.

    Where: in this process if ``serial``; else on the Dask scheduler at ``scheduler`` (or
    ``$DASK_SCHEDULER_ADDRESS`` when ``workers`` is not given either); else on an embedded
    LocalCluster of ``workers`` processes (default: one per CPU). A worker that dies has its
    runs done elsewhere. ``rerun_failed`` runs again those stored as not ok. ``progress`` shows
    a progress bar and the dashboard's link on stderr; ``on_record`` sees each new record.
    """
    if not isinstance(campaign, Campaign):
        campaign = load_campaign(campaign)
    if workers is not None and workers < 1:
        raise PeerlabError(f"workers: expected a positive number, got {workers}")
    if workers is not None and (serial or scheduler):
        raise PeerlabError("workers: the embedded cluster's size; not with serial or scheduler")
    if not serial and scheduler is None and workers is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    folder = CampaignFolder(out)
    folder.create(campaign.manifest())
    distinct = {run.key: run for run in campaign.runs}
    todo = [run for key, run in distinct.items() if _needed(folder.record(key), rerun_failed)]
    where = None
    if todo:
        with (
            _executor(serial, workers, scheduler) as (where, dashboard, execute),
            Progress(campaign.name, len(todo), unit=" runs", enabled=progress) as shown,
        ):
            shown.note(f"campaign {campaign.name}: {len(todo)} runs {where}")
            if dashboard:
                shown.note(f"dashboard: {dashboard}")
            failures = 0
            for run, outcome in execute(todo, campaign.backend):
                record = _record(campaign, run, outcome)
                folder.store(record)
                failures += not record["ok"]
                shown.advance(note=f"{failures} failed")
                if on_record is not None:
                    on_record(record)
    records = [folder.record(key) for key in distinct]
    failed = [r for r in records if r is not None and not r["ok"]]
    return CampaignReport(
        campaign, folder.path, where, len(distinct), len(distinct) - len(todo), len(todo), failed
    )


def _needed(record: dict[str, Any] | None, rerun_failed: bool) -> bool:
    return record is None or (rerun_failed and not record["ok"])


def _record(campaign: Campaign, run: Run, outcome: dict[str, Any]) -> dict[str, Any]:
    from peerlab import __version__

    return {
        "key": run.key,
        "campaign": campaign.name,
        "point": campaign.params(run.point),
        "seed": run.seed,
        "backend": campaign.backend,
        "scenario": run.scenario.name,
        "peerlab": __version__,
        **outcome,
    }


Outcomes = Iterator[tuple[Run, dict[str, Any]]]
Execute = Callable[[Sequence[Run], str], Outcomes]


@contextmanager
def _executor(
    serial: bool, workers: int | None, scheduler: str | None
) -> Iterator[tuple[str, str | None, Execute]]:
    """Where runs happen: (a description, the dashboard's link, a function running them)."""
    if serial:
        yield "in this process", None, _in_process
        return
    with dask_client(workers, scheduler) as client:
        count = len(client.nthreads())
        workers = f"{count} worker{'s' if count != 1 else ''}"
        where = (
            f"on the Dask scheduler at {scheduler} ({workers})"
            if scheduler
            else f"on a local Dask cluster of {workers}"
        )
        yield where, client.dashboard_link, lambda runs, backend: _on_dask(client, runs, backend)


def _in_process(runs: Sequence[Run], backend: str) -> Outcomes:
    for run in runs:
        yield run, execute_run(run.scenario, backend)


@contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A Dask client of the scheduler at ``scheduler``, or of an embedded LocalCluster."""
    from distributed import Client

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError) as exc:
            raise PeerlabError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    with local_cluster(workers or os.cpu_count() or 1) as cluster, Client(cluster) as client:
        yield client


@contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A Dask LocalCluster of ``workers`` processes of one thread each, on loopback with its
    dashboard on a free port, as a campaign starts one."""
    from distributed import LocalCluster

    with _started_deaf_to_ctrl_c():
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # a run holds the GIL: one per process
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    with cluster:
        yield cluster


@contextmanager
def _started_deaf_to_ctrl_c() -> Iterator[None]:
    """Processes started within ignore SIGINT (an ignored signal stays ignored across exec).
    The terminal's Ctrl-C goes to its whole process group; it is this process's to handle, by
    closing the cluster, not each worker's, with a traceback each."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _on_dask(client: Any, runs: Sequence[Run], backend: str) -> Outcomes:
    """Each run as a task; a task whose worker died is run again elsewhere by the scheduler
    (up to its ``allowed-failures``), after which the run is recorded as failed."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    by_key = {f"peerlab-run-{run.key}": run for run in runs}
    futures = [
        client.submit(execute_run, run.scenario, backend, key=key, pure=False)
        for key, run in by_key.items()
    ]
    for future in as_completed(futures):
        run = by_key[future.key]
        try:
            outcome = future.result()
        except KilledWorker as exc:
            outcome = {
                "ok": False,
                "error": f"workers kept dying: {exc}",
                "failed": [],
                "metrics": {},
            }
        except CancelledError:
            raise PeerlabError(
                "lost the Dask cluster; the runs done so far are stored: run again to finish"
            ) from None
        future.release()
        yield run, outcome
