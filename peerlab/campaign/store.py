"""The campaign folder: what the campaign is (``campaign.json``) and one record per run
(``runs/KEY.json``), each run keyed by a hash of its scenario, seed, backend and peerlab version,
so a run done once is never done again."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from peerlab.errors import CampaignError
from peerlab.scenario import Scenario

MANIFEST = "campaign.json"
RUNS = "runs"


def run_key(scenario: Scenario, backend: str) -> str:
    """The key of running ``scenario`` (with its seed) on ``backend`` with this peerlab: the
    same for the same validated content wherever its file lies, different for any change."""
    from peerlab import __version__

    content = dataclasses.asdict(scenario)
    # where it was read from, and what follows from the rest: a moved or reformatted file
    # keeps its runs
    del content["source"], content["warnings"]
    for event in content["events"]:
        del event["line"]
    text = json.dumps(
        {"scenario": content, "backend": backend, "peerlab": __version__},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CampaignFolder:
    """A campaign's folder on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.runs = self.path / RUNS

    def create(self, manifest: dict[str, Any]) -> None:
        """Make the folder if needed and write the campaign's manifest."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CampaignError(f"cannot make {str(self.runs)!r}: {exc.strerror}") from None
        _write_json(self.path / MANIFEST, manifest)

    def manifest(self) -> dict[str, Any]:
        """The manifest; :class:`CampaignError` if this is not a campaign folder."""
        file = self.path / MANIFEST
        try:
            data = json.loads(file.read_text())
        except FileNotFoundError:
            raise CampaignError(
                f"{str(self.path)!r} is not a campaign folder (it has no {MANIFEST}; "
                "peerlab campaign run makes one)"
            ) from None
        except (OSError, ValueError) as exc:
            raise CampaignError(f"cannot read {MANIFEST}: {exc}", file=str(file)) from None
        return data

    def record(self, key: str) -> dict[str, Any] | None:
        """The stored record of run ``key``, or None if it has none (or an unreadable one,
        which running the campaign again replaces)."""
        try:
            return json.loads((self.runs / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None

    def store(self, record: dict[str, Any]) -> None:
        """Store a run's record under its key, whole or not at all."""
        _write_json(self.runs / f"{record['key']}.json", record)


def _write_json(path: Path, data: Any) -> None:
    # written beside and renamed over: a campaign stopped mid-write leaves no torn record
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(part, path)
