"""`peerlab conformance` against live implementations: it passes against `peerlab member`,
reports a JSON file, and says clearly when the target address is bad."""

import json
import subprocess
import sys

import pytest
from peerproc import LiveMember, free_port

from peerlab.cli import main
from peerlab.conformance import CASE_NAMES, SECURE_CASES

SECURE_CASE_NAMES = [name for name, _, _ in SECURE_CASES]

#: The cases that wait out the target's timeouts (about 4 and 5 seconds).
TIMEOUT_CASES = ("dead-timeout", "handshake-timeout")
QUICK = [name for name in CASE_NAMES if name not in TIMEOUT_CASES]


def conformance(target: str, *flags: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "peerlab", "conformance", target, *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def member():
    m = LiveMember("target")
    m.wait_for("listening on")
    yield m
    m.close()


def test_peerlab_member_passes_the_quick_cases(member, tmp_path):
    report_path = tmp_path / "report.json"
    done = conformance(member.address, "--cases", ",".join(QUICK), "--json", str(report_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(QUICK)}/{len(QUICK)} cases passed" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["passed"] is True
    assert report["target"] == member.address
    assert [c["name"] for c in report["cases"]] == QUICK
    assert all(c["passed"] for c in report["cases"])
    assert member.proc.poll() is None  # the member went on through every bad input


def test_a_secure_peerlab_member_passes_the_secure_cases(tmp_path):
    keys = tmp_path / "keys"
    assert main(["-q", "keys", "init-network", str(keys)]) == 0
    assert main(["-q", "keys", "issue", str(keys), "--id", "target"]) == 0
    member = LiveMember("target", (), "--keys", str(keys))
    try:
        member.wait_for("listening on")
        done = conformance(member.address, "--keys", str(keys), "--json", "-")
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert [c["name"] for c in report["cases"]] == SECURE_CASE_NAMES
        assert report["mode"] == "secure" and report["passed"]
        assert "(secure mode)" in done.stderr
        # the open cases fail against it at once, by name: it admits certified members only
        opened = conformance(member.address, "--cases", "database-exchange")
        assert opened.returncode == 1 and "failed: database-exchange" in opened.stdout
    finally:
        member.close()


@pytest.mark.slow
def test_peerlab_member_passes_every_case(member):
    done = conformance(member.address, "--json", "-")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [c["name"] for c in report["cases"]] == CASE_NAMES
    assert report["passed"] is True


@pytest.mark.parametrize(
    "target, error",
    [
        ("nonsense", "is not HOST:PORT"),
        ("127.0.0.1:70000", "port 70000 is not in 1..65535"),
        (f"127.0.0.1:{free_port()}", "cannot connect to"),
    ],
)
def test_a_bad_target_is_a_clear_error(target, error, capsys):
    assert main(["conformance", target]) == 2
    assert error in capsys.readouterr().err


def test_an_unknown_case_is_a_clear_error(capsys):
    assert main(["conformance", "127.0.0.1:9", "--cases", "hello,nope"]) == 2
    assert "unknown case(s) nope" in capsys.readouterr().err
