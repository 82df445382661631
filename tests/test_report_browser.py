"""The report page in real headless Chromium from file://: charts render, table sorts, nothing executes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_records import HOSTILE, hostile_record, small_record

from autolr.report import write_report
from autolr.report.html import RANKING_ROWS
from autolr.report.rank import rank

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI; scripts/test installs Debian's chromium.")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package).")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=CHROMIUM, args=ARGS,
            headless=True, viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def open_report(browser, out_dir: Path):
    """Open the page; return it with the console errors, page errors and dialogs it produced."""
    page = browser.new_page()
    problems: dict[str, list[str]] = {"console": [], "dialogs": []}
    page.on("console", lambda message: message.type == "error" and problems["console"].append(message.text))
    page.on("pageerror", lambda error: problems["console"].append(str(error)))

    def dismiss(dialog):
        problems["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.goto((out_dir / "index.html").as_uri())
    page.wait_for_function(
        "document.querySelectorAll('[data-chart]').length > 0 && Array.from("
        "document.querySelectorAll('[data-chart]')).every(e => e.classList.contains('js-plotly-plot'))",
        timeout=20_000,
    )
    return page, problems


CHART_POINTS = """Array.from(document.querySelectorAll('[data-chart]')).map(e => [
    e.dataset.chart, e.data.length,
    e.data.reduce((n, t) => n + ((t.x || t.q1 || []).filter(v => v !== null).length), 0),
    e.querySelectorAll('g.trace, g.boxlayer path, g.barlayer path').length])"""


def test_report_renders_every_chart_offline(browser, tmp_path):
    record = small_record()
    write_report(record, tmp_path)
    page, problems = open_report(browser, tmp_path)
    charts = page.evaluate(CHART_POINTS)
    names = {name for name, *_ in charts}
    assert names == {"range_test", "lr_curves", "learning_curves", "families", "gains", "importance"}
    for name, traces, points, drawn in charts:
        assert traces > 0 and points > 0 and drawn > 0, name
    rows = page.locator("#ranking-table tbody tr")
    assert rows.count() == min(RANKING_ROWS, len(rank(record).table))
    assert rows.first.locator("td").nth(1).inner_text() == "1"  # trial 1 is best by the rule

    page.locator("#ranking-table th", has_text="validation").click()  # ascending: worst first
    assert page.locator("#ranking-table tbody tr").first.locator("td").nth(1).inner_text() == "6"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert problems == {"console": [], "dialogs": []}


def test_hostile_strings_show_as_text_and_never_run(browser, tmp_path):
    write_report(hostile_record(), tmp_path)
    page, problems = open_report(browser, tmp_path)
    assert page.locator("h1 .study").inner_text() == HOSTILE
    assert page.title() == f"autolr report: {HOSTILE}"
    assert page.evaluate("document.querySelectorAll('img, b[onmouseover]').length") == 0
    assert problems == {"console": [], "dialogs": []}


def test_page_without_plotly_asset_says_so(browser, tmp_path):
    write_report(small_record(), tmp_path)
    shutil.rmtree(tmp_path / "assets")
    page = browser.new_page()
    page.goto((tmp_path / "index.html").as_uri())
    assert "plotly.min.js" in page.locator("#chart-lr_curves").inner_text()
