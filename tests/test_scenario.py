from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerlab.cli import main
from peerlab.errors import ScenarioError
from peerlab.runner import run
from peerlab.scenario import (
    EVENTS,
    TOPOLOGY_EVENTS,
    load_scenario,
    member_config,
    payload_limit,
    read_document,
)
from peerlab.scenario.convert import Problems
from peerlab.scenario.events import markdown_table
from peerlab.scenario.schema import parse
from peerlab.units import parse_bandwidth, parse_duration

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad_scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_scenario_gets_its_own_message_and_exit_2(path, capsys):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert expected in str(info.value)
    assert len(info.value.problems) == 1  # one mistake, one message: nothing follows from it
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert str(path) in err


FIVE_MISTAKES = """\
name: five
colour: blue
defaults: {latency: fast, bandwidth: 100Mbps}
members: [a, b, c, a]
topology:
  links: [[a, b], [b, c]]
events:
  - {at: 1s, crash: b}
  - {at: soon, restart: b}
  - {at: 3s, send: {from: a, to: z, payload: hi}}
expect: {routes: shortest}
"""


def test_a_file_with_five_mistakes_gets_five_messages_in_one_run_and_exit_2(tmp_path, capsys):
    path = tmp_path / "five.yaml"
    path.write_text(FIVE_MISTAKES)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    expected = [
        (2, "colour", "unknown key 'colour' (expected one of: name, description, seed,"),
        (3, "defaults.latency", "expected a duration like 5ms, 2s or 0.5, got 'fast'"),
        (4, "members[3]", "duplicate member name 'a'"),
        (9, "events[1].at", "expected a duration like 5ms, 2s or 0.5, got 'soon'"),
        (10, "events[2].send.to", "unknown member 'z' (members: a, b, c)"),
    ]
    problems = [(p.line, p.path, p.reason) for p in info.value.problems]
    assert len(problems) == len(expected)
    for (line, key, reason), (want_line, want_key, want_reason) in zip(
        problems, expected, strict=True
    ):
        assert (line, key) == (want_line, want_key) and reason.startswith(want_reason)
    assert main(["check", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"peerlab: error: {path}:2: colour: ")
    assert [line.removeprefix("peerlab: error: ") for line in lines] == str(info.value).split("\n")
    assert all(line.startswith(f"{path}:") for line in str(info.value).split("\n"))


def test_a_bad_part_is_left_out_of_the_checks_that_need_it():
    text = """\
members: [a, b, '']
topology: {links: [[a, b], [a, q]]}
events:
  - {at: 1s, crsh: a}
  - {at: 2s, join: {member: [x], connect: []}}
"""
    with pytest.raises(ScenarioError) as info:
        load_scenario("x.yaml", text=text)
    # the members are not known, so no link or event names an unknown one; the events whose
    # action is misspelled or malformed are not also said to have no action
    assert [(p.line, p.path) for p in info.value.problems] == [
        (1, "members[2]"),
        (4, "events[0].crsh"),
        (5, "events[1].join.member"),
    ]


def test_parsing_reads_nothing_but_the_scenario_and_the_build_reads_its_topology_file():
    document = read_document("s.yaml", text="topology: {file: nowhere.gml}\n")
    problems = Problems(document)
    assert parse(document.data, problems) is not None and len(problems) == 0
    with pytest.raises(ScenarioError, match=r"topology\.file: cannot read topology file"):
        load_scenario("s.yaml", text="topology: {file: nowhere.gml}\n")


def test_the_readme_event_table_is_the_event_kind_table():
    readme = (HERE.parent / "scenarios" / "README.md").read_text()
    assert markdown_table() in readme
    assert set(EVENTS) - {"send", "traffic", "set_link"} == TOPOLOGY_EVENTS


def test_every_event_kind_loads_and_is_labelled():
    values = {
        "send": "{from: a, to: c}",
        "traffic": "{count: 3}",
        "link_down": "[a, b]",
        "link_cut": "[b, c]",
        "link_up": "[a, b]",
        "crash": "c",
        "power_off": "b",
        "restart": "c",
        "join": "{member: d, connect: [a, b]}",
        "leave": "d",
        "pause": "a",
        "resume": "a",
        "partition": "{groups: [[a], [b, c]], one_way: true}",
        "heal": "true",
        "set_link": "{between: [a, c], latency: 20ms, loss: 0.01}",
    }
    assert list(values) == list(EVENTS)
    events = "".join(f"  - {{at: {i}s, {k}: {v}}}\n" for i, (k, v) in enumerate(values.items()))
    text = f"members: [a, b, c]\ntopology: {{generator: {{kind: ring}}}}\nevents:\n{events}"
    scenario = load_scenario("all.yaml", text=text)
    assert [e.describe() for e in scenario.events] == [
        "send a->c",
        "traffic x3",
        "link_down a-b",
        "link_cut b-c",
        "link_up a-b",
        "crash c",
        "power_off b",
        "restart c",
        "join d -> a,b",
        "leave d",
        "pause a",
        "resume a",
        "partition a -/-> b,c",
        "heal",
        "set_link a-c",
    ]
    assert scenario.events[0].args == {"from": "a", "to": "c", "payload": "", "reliable": False}
    assert scenario.events[1].args == {"count": 3, "size": 100, "reliable": False}
    assert scenario.events[2].args == ("a", "b")
    assert scenario.events[12].args == {"groups": [["a"], ["b", "c"]], "one_way": True}
    assert all(type(name) is str for e in scenario.events[2:4] for name in e.args)


def test_every_bad_scenario_has_a_distinct_message():
    messages = {p.read_text().splitlines()[0] for p in BAD}
    assert len(messages) == len(BAD) >= 12


def test_missing_scenario_file_is_bad_input(capsys):
    assert main(["run", "no/such/file.yaml"]) == 2
    assert "cannot read scenario" in capsys.readouterr().err


def test_a_payload_at_the_limit_crosses_the_longest_path_and_one_byte_more_is_refused(tmp_path):
    names = ["a", "bb", "c" * 100]
    text = (
        f"members: {names}\n"
        "topology: {generator: {kind: line}}\n"
        "events:\n"
        f"  - {{at: 1s, send: {{from: a, to: {names[2]}, payload: PAYLOAD}}}}\n"
        "expect: {delivered: all}\n"
    )
    path = tmp_path / "limit.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    limit = payload_limit(scenario.members, member_config(scenario))
    path.write_text(text.replace("PAYLOAD", "x" * limit))
    result = run(path, "sim")
    assert [m["path"] for m in result.messages] == [names]
    assert all(e["ok"] for e in result.expectations)
    path.write_text(text.replace("PAYLOAD", "x" * (limit + 1)))
    with pytest.raises(ScenarioError, match=rf"events\[0\]\.send\.payload: a {limit + 1:,}-byte"):
        load_scenario(path)


def test_links_too_slow_for_the_keepalive_are_a_warning_not_an_error(tmp_path, capsys):
    path = tmp_path / "slow.yaml"
    text = "members: [a, b, c]\ntopology: {generator: {kind: line}}\ndefaults: {latency: 400ms}\n"
    path.write_text(text)
    (warning,) = load_scenario(path).warnings
    assert warning.startswith(
        "2 link(s) (a-b, b-c) have a one-way latency with jitter of up to 0.4s"
    )
    assert warning.endswith("set member.dead_timeout above 0.8s")
    assert main(["check", str(path)]) == 0
    assert f"peerlab: warning: {path}: {warning}" in capsys.readouterr().err
    assert main(["check", str(path), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert warning in run(path, "sim").warnings
    path.write_text(text + "member: {dead_timeout: 0.9s}\n")
    assert load_scenario(path).warnings == ()
    path.write_text(text.replace("400ms", "250ms"))
    assert load_scenario(path).warnings == ()


def test_member_count_and_generators():
    s = load_scenario(
        "x.yaml",
        text="""
members: {count: 12, prefix: n}
topology: {generator: {kind: watts_strogatz, k: 4, p: 0.1}}
""",
    )
    assert s.members[0] == "n00" and len(s.members) == 12
    assert len(s.links) == 24
    again = load_scenario(
        "x.yaml",
        text="""
members: {count: 12, prefix: n}
topology: {generator: {kind: watts_strogatz, k: 4, p: 0.1}}
""",
    )
    assert again.links == s.links  # seeded


def test_per_link_parameters_and_defaults():
    s = load_scenario(HERE.parent / "scenarios" / "ring-failover.yaml")
    assert s.link_params("d", "c").latency == pytest.approx(0.020)
    assert s.link_params("a", "b").latency == pytest.approx(0.005)
    assert s.defaults.bandwidth == 100e6
    assert s.expect.delivered == 1.0 and s.expect.converged_within == 2.0


def test_topology_files_load_with_edge_latency(tmp_path):
    (tmp_path / "t.gml").write_text("""graph [
  node [ id 0 label "x" ]
  node [ id 1 label "y" ]
  node [ id 2 label "z" ]
  edge [ source 0 target 1 latency "12ms" ]
  edge [ source 1 target 2 ]
]""")
    (tmp_path / "t.edges").write_text("x y 7ms\ny z 1ms\n")
    (tmp_path / "t.graphml").write_text("""<?xml version="1.0"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
 <key id="lat" for="edge" attr.name="latency" attr.type="string"/>
 <graph edgedefault="undirected">
  <node id="x"/><node id="y"/><node id="z"/>
  <edge source="x" target="y"><data key="lat">3ms</data></edge>
  <edge source="y" target="z"/>
 </graph>
</graphml>""")
    latencies = {}
    for name in ("t.gml", "t.edges", "t.graphml"):
        (tmp_path / "s.yaml").write_text(f"members: [x, y, z]\ntopology: {{file: {name}}}\n")
        s = load_scenario(tmp_path / "s.yaml")
        assert {link.pair for link in s.links} == {("x", "y"), ("y", "z")}
        latencies[name] = s.link_params("x", "y").latency
    assert latencies == pytest.approx({"t.gml": 0.012, "t.edges": 0.007, "t.graphml": 0.003})


@given(st.floats(0, 1e6, allow_nan=False), st.sampled_from(["us", "ms", "s", ""]))
def test_durations_parse(value, unit):
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0}[unit]
    assert parse_duration(f"{value!r}{unit}") == pytest.approx(value * scale)


def test_units_reject_nonsense():
    for bad in ("fast", "-1s", "5 parsecs", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_bandwidth("100Mbps") == 100e6 and parse_bandwidth("1.5Gbps") == 1.5e9
    assert parse_bandwidth("512kbps") == 512e3 and parse_bandwidth(1000) == 1000.0


def test_topology_zoo_style_gml_names_the_members(tmp_path):
    (tmp_path / "zoo.gml").write_text("""graph [
  node [ id 0 label "Vienna" Latitude 48.2 Longitude 16.4 ]
  node [ id 1 label "None" ]
  node [ id 2 label "None" ]
  node [ id 3 label "Graz" ]
  edge [ source 0 target 1 LinkSpeed "10" ]
  edge [ source 1 target 2 ]
  edge [ source 2 target 3 latency "7ms" ]
  edge [ source 3 target 0 ]
]""")
    (tmp_path / "s.yaml").write_text("topology: {file: zoo.gml}\n")
    s = load_scenario(tmp_path / "s.yaml")
    assert sorted(s.members) == ["Graz", "None-1", "None-2", "Vienna"]
    assert len(s.links) == 4
    assert s.link_params("None-2", "Graz").latency == pytest.approx(0.007)
