"""The command line as a whole: --version, -q and -v, ``-`` for standard output, one line for
any bad input, and a clean end on SIGINT and SIGTERM with no worker left behind."""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import peerlab
from peerlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = str(ROOT / "scenarios" / "quickstart.yaml")
SLOW_LINKS = "members: [a, b, c]\ntopology: {generator: {kind: line}}\ndefaults: {latency: 400ms}\n"


def peerlab_command(*args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peerlab", *args],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        **options,
    )


def test_version_from_the_command_and_from_python_m():
    for command in (["peerlab", "--version"], [sys.executable, "-m", "peerlab", "--version"]):
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=_with_venv_on_path()
        )
        assert out.returncode == 0
        assert out.stdout == f"peerlab {peerlab.__version__}\n"


def _with_venv_on_path() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def test_quiet_shows_no_progress_and_no_warning_and_verbose_each_event(tmp_path, capsys):
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW_LINKS)
    assert main(["run", str(slow)]) == 0
    err = capsys.readouterr().err
    assert "peerlab: warning: slow on sim: 2 link(s) (a-b, b-c)" in err
    assert re.search(r"^slow on sim: 2/2s, .* elapsed, ETA -$", err, re.M)  # off a terminal
    for quiet in (["-q", "run", str(slow)], ["run", str(slow), "--quiet"]):
        assert main(quiet) == 0
        out, err = capsys.readouterr()
        assert err == "" and "scenario slow on sim" in out
    assert main(["-v", "run", QUICKSTART]) == 0
    debug = [line for line in capsys.readouterr().err.splitlines() if ": debug: " in line]
    applied = [line.split(": ", 4)[-1] for line in debug]
    assert applied == ["send a->d", "link_down c-d", "send a->d", "traffic x20"]


def test_out_dash_writes_results_to_stdout_and_the_report_to_stderr(capsys):
    assert main(["run", QUICKSTART, "--out", "-", "-q"]) == 0
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert results["scenario"] == "quickstart" and results["backend"] == "sim"
    assert "scenario quickstart on sim" in err and "written" not in err
    assert main(["run", QUICKSTART, "--trace", "-", "-q"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events and {"connect", "deliver"} <= {e["kind"] for e in events}
    assert main(["run", QUICKSTART, "--out", "-", "--trace", "-"]) == 2
    assert capsys.readouterr().err == (
        "peerlab: error: --out and --trace: only one output can be standard output\n"
    )


def test_compare_out_dash_writes_json_to_stdout_and_a_table_that_lines_up(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "line", "--out", "-", "-q"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["agree"] is True
    assert not list(tmp_path.iterdir())  # no file written
    lines = err.splitlines()
    assert lines[-3:-1] == ["AGREE: identical routing tables in sim and real", ""]
    assert lines[-1].startswith(("timing: real latency median", "NO TIMING VERDICT"))
    heading = next(line for line in lines if line.split() == ["sim", "real"])
    ends = [heading.index("sim") + 3, len(heading)]
    row = next(line for line in lines if line.startswith("delivered / sent"))
    assert [m.end() for m in re.finditer(r"\d+/\d+", row)] == ends  # right-aligned numbers
    rows = lines[lines.index(heading) + 2 : lines.index(heading) + 9]
    assert all(len(r) == len(heading) for r in rows), rows


def test_view_plot_and_campaign_table_to_stdout(tmp_path):
    page = peerlab_command("view", "line", "-o", "-", "-q")
    assert page.returncode == 0 and page.stdout.startswith(b"<!DOCTYPE html>")
    picture = peerlab_command("plot", "line", "-o", "-", "-q")
    assert picture.returncode == 0 and picture.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    svg = peerlab_command("plot", "line", "-o", "-", "--format", "svg", "-q")
    assert svg.returncode == 0 and b"<svg" in svg.stdout[:1000]
    folder = tmp_path / "sweep"
    assert main(["sweep", "line", "--seeds", "1-2", "--serial", "--out", str(folder), "-q"]) == 0
    table = peerlab_command("campaign", "table", str(folder), "-o", "-")
    rows = list(csv.DictReader(io.StringIO(table.stdout.decode())))
    assert [row["seed"] for row in rows] == ["1", "2"]


BAD_INPUT = [
    [],
    ["frobnicate"],
    ["--frobnicate"],
    ["run"],
    ["run", "nowhere.yaml"],
    ["run", "quickstart", "--backend", "ns3"],
    ["run", "quickstart", "--time-scale", "0"],
    ["run", "quickstart", "--time-scale", "nan"],
    ["run", "quickstart", "--seed", "x"],
    ["run", "quickstart", "--member-class", "nosuch:Thing"],
    ["run", "quickstart", "--member-class", "peerlab.member"],
    ["run", "quickstart", "--member-class", "peerlab.member:MemberConfig"],
    ["run", "TMP"],
    ["run", "PICTURE"],
    ["run", "quickstart", "--out", "TMP"],
    ["check"],
    ["check", "BAD_YAML"],
    ["compare", "nowhere.yaml"],
    ["compare", "quickstart", "--time-scale", "x"],
    ["plot", "nowhere.json", "-o", "OUT.png"],
    ["plot", "PICTURE", "-o", "OUT.png"],
    ["plot", "NOT_JSON", "-o", "OUT.png"],
    ["plot", "line", "-o", "OUT.png", "--kind", "nope"],
    ["plot", "line", "-o", "OUT.png", "--dpi", "0"],
    ["plot", "line", "-o", "OUT.png", "--at", "-1"],
    ["plot", "line", "-o", "OUT.png", "--animate", "-"],
    ["plot", "line", "-o", "OUT.jpg"],
    ["plot", "line", "-o", "OUT.png", "--kind", "table", "--page", "9"],
    ["view", "NOT_JSON", "-o", "OUT.html"],
    ["explore", "quickstart", "--seeds", "x"],
    ["explore", "quickstart", "--faults", "teleport"],
    ["explore", "quickstart", "--events", "0"],
    ["explore", "nowhere.yaml"],
    ["explore", "quickstart", "--out", "-"],
    ["explore", "quickstart", "--bound", "-1"],
    ["campaign"],
    ["campaign", "run", "nowhere.yaml"],
    ["campaign", "run", "PICTURE"],
    ["campaign", "table", "nowhere"],
    ["campaign", "plot", "nowhere", "--x", "a", "--y", "b"],
    ["campaign", "run", "CAMPAIGN", "--out", "-"],
    ["campaign", "run", "CAMPAIGN", "--workers", "0"],
    ["sweep", "quickstart", "--seeds", "5-1"],
    ["sweep", "quickstart", "--out", "-"],
    ["member", "--id", "x", "--listen", "127.0.0.1:99999"],
    ["member", "--id", "x", "--listen", "127.0.0.1:0", "--join", "127.0.0.1:70000"],
    ["member", "--id", "x", "--listen", "127.0.0.1:0", "--script", "nowhere.txt"],
    ["member", "--id", "x", "--listen", "127.0.0.1:0", "--run-for", "-1"],
    ["member", "--id", "x", "--listen", "127.0.0.1:0", "--redial", "0"],
    ["demo", "--time-scale", "-1"],
]


@pytest.mark.parametrize("command", BAD_INPUT, ids=" ".join)
def test_bad_input_exits_2_with_one_line(command, tmp_path, capsys):
    (tmp_path / "not.json").write_text("a\n")
    names = {
        "TMP": str(tmp_path),
        "PICTURE": str(ROOT / "scenarios" / "quickstart.png"),
        "NOT_JSON": str(tmp_path / "not.json"),
        "OUT": str(tmp_path / "out"),
        "CAMPAIGN": str(ROOT / "tests" / "campaigns" / "grid.yaml"),
        "BAD_YAML": str(ROOT / "tests" / "bad_scenarios" / "bad_yaml.yaml"),
    }
    for name, value in names.items():
        command = [word.replace(name, value) for word in command]
    try:
        code = main(["-q", *command])
    except SystemExit as exc:  # argparse's way out
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("peerlab") and ": error: " in err


def interrupt_when(command: list[str], said: str, signum: int) -> tuple[int, str, list[int]]:
    """Start ``peerlab COMMAND`` in a process group of its own, as a shell does, and send the
    group ``signum`` once it has said ``said`` on stderr, as the terminal's Ctrl-C does.
    Returns its exit status, its stderr and the pids of every process it had started."""
    run = subprocess.Popen(
        [sys.executable, "-m", "peerlab", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        seen = ""
        for line in run.stderr:
            seen += line
            if said in line:
                break
        started = psutil.Process(run.pid).children(recursive=True)
        os.killpg(run.pid, signum)
        _, rest = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    return run.returncode, seen + rest, [p.pid for p in started]


def still_running(pids: list[int], within: float = 10.0) -> list[int]:
    """Those of ``pids`` still running after ``within`` seconds (polled)."""
    deadline = time.monotonic() + within
    while (left := [p for p in pids if psutil.pid_exists(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_proc_run_ends_cleanly_and_leaves_no_worker(signum, status):
    command = ["-v", "run", "crash-restart", "--backend", "proc"]
    # the debug lines say how far it got: c is powered off (stopped) from then on
    code, err, started = interrupt_when(command, ": power_off c", signum)
    assert code == status
    assert len(started) == 6  # five workers and the fork server they were forked from
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "peerlab: warning: interrupted"
    assert not still_running(started, within=0), "a worker was left behind"


def test_an_interrupted_campaign_ends_cleanly_with_no_worker_traceback(tmp_path):
    campaign = tmp_path / "long.yaml"
    campaign.write_text(f"scenario: {ROOT / 'tests' / 'campaigns' / 'small.yaml'}\nseeds: 1-500\n")
    command = ["campaign", "run", str(campaign), "--workers", "1", "--out", str(tmp_path / "c")]
    code, err, started = interrupt_when(command, "dashboard:", signal.SIGINT)
    assert code == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not still_running(started)


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_runs_from_anywhere(tmp_path):
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, ROOT], check=True, timeout=600)
    (wheel,) = wheels.glob("peerlab-*.whl")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([python, *pip[1:], "install", wheel], check=True, timeout=1200)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"

    def installed(*command: str) -> str:
        out = subprocess.run(
            command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert installed("peerlab", "--version") == f"peerlab {peerlab.__version__}\n"
    assert "quickstart: ok (6 members" in installed(
        "python", "-m", "peerlab", "check", "quickstart"
    )
    assert "AGREE" in installed("peerlab", "demo", "-q")
    assert (elsewhere / "out" / "quickstart.png").stat().st_size > 10_000
    where = installed(
        "python",
        "-c",
        "import peerlab, sysconfig; print(peerlab.__file__); "
        "print(sysconfig.get_paths()['purelib'])",
    ).split()
    package, site = Path(where[0]).parent, Path(where[1])
    assert package == site / "peerlab"  # not the checkout
    assert (package / "py.typed").exists() and (package / "scenarios" / "topologies").is_dir()
    assert not (site / "sim").exists() and not (site / "realnet").exists()
    metadata = installed(
        "python",
        "-c",
        "import importlib.metadata as m; print(m.metadata('peerlab')['License-Expression'])",
    )
    assert metadata == "MIT\n"
