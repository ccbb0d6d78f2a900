"""Scenario files read as YAML, with the line each key path starts on, and the scenarios
packaged with peerlab. Reading parses the text only: nothing it names is opened yet."""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from peerlab.errors import Problem, ScenarioError

#: yaml.safe_load's loader, in C when PyYAML was built with libyaml: the document is composed
#: once, for its line map, and its data constructed from that
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: A key path into a document: mapping keys and list indexes, outermost first.
KeyPath = tuple[Any, ...]


class LineMap:
    """The line each key path of a YAML document starts on."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[KeyPath, int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: KeyPath) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    self.lines[(*path, key.value)] = key.start_mark.line + 1
                    self._walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing path the document has."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)


def key_path(path: KeyPath) -> str:
    """A key path as messages write it: ``events[3].link_down[1]``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass(frozen=True)
class Document:
    """A file parsed as YAML but not yet validated: its ``data``, the ``source`` label and
    line map that errors name, and the folder its relative paths start from."""

    data: Any
    source: str
    lines: LineMap
    base_dir: Path

    def problem(self, path: KeyPath, reason: str) -> Problem:
        """A problem at ``path`` of this document."""
        return Problem(reason, self.source, self.lines.of(path), key_path(path) or None)

    def fail(self, path: KeyPath, reason: str) -> ScenarioError:
        """An error for one problem at ``path`` of this document."""
        return ScenarioError(problems=[self.problem(path, reason)])


def packaged_names() -> list[str]:
    """The names of the reference scenarios installed with peerlab (``quickstart``, ...)."""
    root = importlib.resources.files("peerlab.scenarios")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def packaged(name: str) -> Path:
    """The file of the reference scenario ``name`` (``quickstart`` or ``quickstart.yaml``)
    installed with peerlab; :class:`ScenarioError` naming the others if there is none."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if stem not in packaged_names():
        raise ScenarioError(
            f"no such file, and no packaged scenario {stem!r} "
            f"(packaged: {', '.join(packaged_names())})",
            file=name,
        )
    return Path(str(importlib.resources.files("peerlab.scenarios") / f"{stem}.yaml"))


def read_document(source: str | Path, text: str | None = None) -> Document:
    """Read and parse a scenario file (or ``text``, labelled ``source`` in messages) without
    validating it. A bare name that is not a file (``quickstart``) names a packaged scenario."""
    path = Path(source)
    if text is None and not path.exists() and path.parent == Path("."):
        path = packaged(path.name)
    label = str(source)
    if text is None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario: {exc.strerror}", file=label) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            f"invalid YAML: {problem}", file=label, line=mark.line + 1 if mark else None
        ) from None
    finally:
        loader.dispose()
    return Document(data, label, LineMap(node), path.parent)
