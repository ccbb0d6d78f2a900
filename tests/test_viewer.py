"""The run viewer: one offline HTML page, checked as text and in a real headless browser."""

import io
import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from peerlab import viewer
from peerlab.cli import main
from peerlab.runner import run

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,900",
]


@pytest.fixture(scope="module")
def ring():
    return run(ROOT / "scenarios" / "ring-failover.yaml", "sim")


@pytest.fixture(scope="module")
def ring_page(ring, tmp_path_factory):
    path = tmp_path_factory.mktemp("viewer") / "ring.html"
    viewer.write(ring, path)
    return path


def embedded(page: str) -> dict:
    data = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', page, re.S)
    assert data is not None
    return json.loads(data.group(1))


def test_the_page_is_self_contained(ring_page):
    page = ring_page.read_text()
    # nothing to fetch: no external script, style, image or font; the one URL is SVG's namespace
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", page)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert page.count("<script") == 2 and len(page) < 60_000


def test_the_page_holds_the_timeline_of_the_run(ring, ring_page):
    data = embedded(ring_page.read_text())
    names = data["names"]
    assert data["scenario"] == "ring-failover" and data["duration"] == ring.duration
    assert len(data["pos"]) == len(names) and all(
        0 <= x <= 1 and 0 <= y <= 1 for x, y in data["pos"]
    )
    rows = [(t, names[a], names[b], up) for t, a, b, up in data["linkRows"]]
    assert rows == [tuple(row[:4]) for row in ring.timeline["links"]]
    assert len(data["messages"]) == len(ring.messages)


def test_a_name_cannot_close_the_data_script(ring):
    other = type(ring).from_dict(ring.to_dict())
    other.scenario = "</script><script>alert(1)</script>"
    page = viewer.page(other)
    assert page.count("</script>") == 2 and embedded(page)["scenario"] == other.scenario


def test_the_notebook_form_is_an_iframe_of_the_page(ring):
    html = ring._repr_html_()
    assert html.startswith("<iframe srcdoc=") and "&lt;script" in html and "<script" not in html


def test_view_command_writes_the_page_and_refuses_old_results(ring, tmp_path, capsys):
    results = tmp_path / "r.json"
    ring.write(results)
    out = tmp_path / "run.html"
    assert main(["view", str(results), "-o", str(out)]) == 0
    assert "viewer written to" in capsys.readouterr().out
    assert embedded(out.read_text())["names"] == ring.timeline["names"]
    old = json.loads(results.read_text())
    old["schema"] = 1
    results.write_text(json.dumps(old))
    assert main(["view", str(results), "-o", str(tmp_path / "old.html")]) == 2
    assert "results with schema version 1; this peerlab reads version" in capsys.readouterr().err
    assert not (tmp_path / "old.html").exists()


# --- in a real browser ---------------------------------------------------------------------


def _browser_paths() -> tuple[str, str] | str:
    """(chromium, chromedriver), or why a browser cannot be had."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        return "no chromium and chromedriver (apt-get install chromium chromium-driver)"
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    paths = _browser_paths()
    if isinstance(paths, str):
        pytest.skip(paths)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    with tempfile.TemporaryDirectory(prefix="peerlab-chromium-") as profile:
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
        try:
            yield driver
        finally:
            driver.quit()


def at(driver, t: float) -> None:
    """Move the page's slider to scenario time ``t`` as a user would (an input event)."""
    driver.execute_script(
        "const s = document.getElementById('slider'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));",
        t,
    )


def link_state(driver, a: str, b: str) -> str:
    return driver.find_element("css selector", f'[data-link="{a}|{b}"]').get_attribute("data-state")


def test_in_a_browser_links_follow_the_partition_and_a_member_shows_its_table(
    browser, ring, ring_page
):
    browser.get(ring_page.as_uri())
    assert browser.find_element("id", "time").text  # the script ran
    at(browser, 9.8)  # inside the partition [a, b, f] | [c, d], after keepalive noticed
    assert browser.find_element("id", "time").text == "9.800s"
    assert link_state(browser, "b", "c") == link_state(browser, "c", "f") == "down"
    assert link_state(browser, "a", "b") == "up"
    browser.find_element("css selector", '[data-member="a"] circle').click()
    rows = [
        [cell.text for cell in row.find_elements("tag name", "td")]
        for row in browser.find_elements("css selector", "#routes tbody tr")
    ]
    expected = ring.table_at("a", 9.8)
    assert rows == [[d, r["next_hop"], str(r["hops"])] for d, r in expected.items()]
    assert "c" not in expected and rows  # c is across the partition
    summary = browser.find_element("id", "view-summary").text
    view, links = ring.view_at("a", 9.8), set(ring.links_at(9.8))
    assert summary.startswith(
        f"view: {len(view & links)} known, {len(view - links)} stale, {len(links - view)} unheard"
    )
    at(browser, 10.5)  # healed
    assert link_state(browser, "b", "c") == link_state(browser, "c", "f") == "up"
    rows = browser.find_elements("css selector", '#routes tr[data-dst="c"] td')
    assert [cell.text for cell in rows] == ["c", *map(str, ring.table_at("a", 10.5)["c"].values())]
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 16)
    assert shot.size[0] >= 1000 and (colours is None or len(colours) > 20)  # not a blank page
    assert shot.getextrema() != ((255, 255), (255, 255), (255, 255))
