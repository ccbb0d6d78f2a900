"""Key paths into a scenario document, as a campaign's grid names them."""

import pytest

from peerlab.campaign.keypath import format_key_path, parse_key_path, set_key_path


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("members.count", ("members", "count")),
        ("events[2].traffic.count", ("events", 2, "traffic", "count")),
        ("settle", ("settle",)),
        ("topology.links[0][1]", ("topology", "links", 0, 1)),
    ],
)
def test_a_key_path_reads_as_scenario_errors_write_it(text, steps):
    assert parse_key_path(text) == steps
    assert format_key_path(steps) == text


@pytest.mark.parametrize("text", ["", ".a", "a.", "a..b", "[0]", "a b", "a.[0]", "a[x]", "a[-1]"])
def test_anything_else_is_not_a_key_path(text):
    with pytest.raises(ValueError, match="is not a key path"):
        parse_key_path(text)


def test_setting_a_key_path_makes_missing_mappings_and_says_which():
    doc = {"members": {"count": 3}, "events": [{"at": 1}]}
    assert set_key_path(doc, ("defaults", "latency"), "5ms") == ["defaults"]
    assert set_key_path(doc, ("events", 0, "at"), 2) == []
    assert doc == {"members": {"count": 3}, "events": [{"at": 2}], "defaults": {"latency": "5ms"}}


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (("members", "count", "x"), "members.count is not a mapping, so it has no key 'x'"),
        (("events", 3, "at"), "events has 1 item(s), so no item [3]"),
        (("members", 0), "members is not a list, so it has no item [0]"),
    ],
)
def test_a_key_path_through_something_else_says_what_it_met(steps, problem):
    doc = {"members": {"count": 3}, "events": [{"at": 1}]}
    with pytest.raises(ValueError) as caught:
        set_key_path(doc, steps, 1)
    assert str(caught.value) == problem
