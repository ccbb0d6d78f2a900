"""The sans-IO seam: core modules must not import I/O, threads, clocks, SimPy or plotting."""

import ast
from pathlib import Path

import pytest

CORE = ["wire", "linkstate", "routing", "transport", "member", "trace", "errors"]
FORBIDDEN = {
    "socket",
    "selectors",
    "threading",
    "time",
    "simpy",
    "networkx",
    "matplotlib",
    "asyncio",
    "sim",
    "realnet",
}
ROOT = Path(__file__).resolve().parent.parent


def _top(module: str) -> str:
    """The package a module belongs to, the backends counted as packages of their own."""
    parts = module.split(".")
    if parts[0] == "peerlab" and len(parts) > 1 and parts[1] in BACKENDS:
        return parts[1]
    return parts[0]


BACKENDS = {"sim", "realnet"}


def imported_modules(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_top(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(_top(node.module))
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_nothing_forbidden(module):
    source = (ROOT / "peerlab" / f"{module}.py").read_text()
    assert imported_modules(source) & FORBIDDEN == set()


def test_checker_catches_a_forbidden_import():
    assert imported_modules("import socket\nfrom time import monotonic\n") == {"socket", "time"}
    assert imported_modules("from peerlab.sim import SimNetwork\n") == {"sim"}


def test_no_simpy_outside_sim():
    for path in ROOT.glob("peerlab/**/*.py"):
        assert "simpy" not in imported_modules(path.read_text()), path
    for path in ROOT.glob("realnet/**/*.py"):
        assert "simpy" not in imported_modules(path.read_text()), path
