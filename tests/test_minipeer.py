"""examples/minipeer.py, a second implementation written from docs/protocol.md with only the
msgpack library: it passes `peerlab conformance`, relays, sends and receives in a live overlay
of `peerlab member` processes; its deliberately broken variant fails a named case."""

import ast
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from peerproc import LiveMember, ask, free_port, next_line, read_until, spawn, stop
from test_conformance_cli import QUICK, conformance

from peerlab.conformance import CASE_NAMES

MINIPEER = Path(__file__).resolve().parent.parent / "examples" / "minipeer.py"


def start_minipeer(member_id: str, *flags: str) -> tuple[subprocess.Popen, str]:
    address = f"127.0.0.1:{free_port()}"
    proc = spawn([sys.executable, str(MINIPEER), "--id", member_id, "--listen", address, *flags])
    read_until(proc, "listening on")
    return proc, address


@pytest.fixture
def minis():
    started: list[subprocess.Popen] = []
    yield started
    stop(started)


@pytest.fixture
def members():
    started: list[LiveMember] = []
    yield started
    for m in started:
        m.close()


def test_minipeer_imports_nothing_of_peerlab():
    tree = ast.parse(MINIPEER.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert "peerlab" not in imported
    assert "msgpack" in imported


def test_minipeer_passes_the_quick_conformance_cases(minis, tmp_path):
    proc, address = start_minipeer("mini")
    minis.append(proc)
    done = conformance(address, "--cases", ",".join(QUICK), "--json", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True


@pytest.mark.slow
def test_minipeer_passes_every_conformance_case(minis):
    proc, address = start_minipeer("mini")
    minis.append(proc)
    done = conformance(address, "--json", "-")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [c["name"] for c in json.loads(done.stdout)["cases"]] == CASE_NAMES


def test_a_minipeer_that_never_fights_back_fails_the_fight_back_case(minis):
    proc, address = start_minipeer("broken", "--no-fight-back")
    minis.append(proc)
    done = conformance(address, "--cases", "hello,relay,fight-back", "--json", "-")
    assert done.returncode == 1
    verdicts = {c["name"]: c["passed"] for c in json.loads(done.stdout)["cases"]}
    assert verdicts == {"hello": True, "relay": True, "fight-back": False}
    assert "failed: fight-back" in done.stderr  # the table goes to stderr with --json -
    assert "re-originating above a newer advert of itself" in done.stderr


def mini_route(proc: subprocess.Popen, dst: str, via: str, timeout: float = 15.0) -> None:
    """Ask the minipeer for its routes until it routes to ``dst`` via ``via``."""
    deadline = time.monotonic() + timeout
    while True:
        ask(proc, "routes")
        window = min(deadline, time.monotonic() + 0.5)
        while (line := next_line(proc, window)) != "":
            if line.split() == [dst, "via", via]:
                return
        assert time.monotonic() < deadline, f"minipeer: no route to {dst} via {via}"


def test_minipeer_relays_sends_and_receives_among_peerlab_members(minis, members):
    # a - m - b - c: peerlab members a and c reach each other only through the minipeer m
    b = LiveMember("b")
    members.append(b)
    m, m_address = start_minipeer("m", "--join", b.address)
    minis.append(m)
    a = LiveMember("a", [m_address])
    c = LiveMember("c", [b.address])
    members += [a, c]
    a.wait_for_route("c", "m", timeout=20)
    a.ask("send c across a second implementation")
    c.wait_for("<a> across a second implementation   (path a -> m -> b -> c)")
    mini_route(m, "c", "b")
    ask(m, "send c from the minipeer")
    c.wait_for("<m> from the minipeer   (path m -> b -> c)")
    c.ask("send m to the minipeer")
    read_until(m, "<c> to the minipeer   (path c -> b -> m)")
    ask(m, "quit")
    assert m.wait(timeout=10) == 0
    a.wait_for("disconnect peer=m")
    b.wait_for("reason=peer left: leaving")


def _minipeer_module():
    spec = importlib.util.spec_from_file_location("minipeer", MINIPEER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VECTORS = json.loads((MINIPEER.parent.parent / "docs" / "vectors" / "messages.json").read_text())


def test_minipeer_reads_and_writes_every_vector_as_peerlab_does():
    mini = _minipeer_module()
    for vector in VECTORS["valid"] + VECTORS["accepted"]:
        tag, fields = mini.decode(bytes.fromhex(vector["hex"]))
        assert tag == vector["message"]["type"], vector["name"]
        frame = mini.frame(fields)
        assert frame[4:].hex() == vector.get("canonical_hex", vector["hex"]), vector["name"]
    for vector in VECTORS["invalid"]:
        body = bytes.fromhex(vector["hex"])
        with pytest.raises(mini.Refused):
            if vector["level"] == "advert":
                mini.check_advert(msgpack.unpackb(body, raw=False))
            else:
                mini.decode(body)
