"""The HTML report in a real browser: headless Chromium loads report.html, plotly draws
its SVG with every point, and no script error is raised (a collector injected first in
<head> records window errors, unhandled rejections and console.error)."""
from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from nas_prune.results.report import ReportData, html_report
from nas_prune.results.report.data import complete_rows, numbers, plottable
from nas_prune.results.report.insights import Importances, Insights, budget_wins
from tests.results.test_report import DENSE_PARAMS, _full_data

REQUIRED = os.environ.get("NAS_PRUNE_REQUIRE_SERVERS") == "1"  # CI: fail, never skip
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Runs before any other script of the page; writes what it sees onto <html> attributes,
# which --dump-dom prints.
PROBE = """<script>(function(){var errs=[],root=document.documentElement;
function note(m){errs.push(String(m));root.setAttribute('data-js-errors',JSON.stringify(errs));}
window.addEventListener('error',function(e){note(e.message||e);});
window.addEventListener('unhandledrejection',function(e){note('unhandled rejection: '+e.reason);});
var ce=console.error;console.error=function(){note([].join.call(arguments,' '));
ce.apply(console,arguments);};
window.addEventListener('load',function(){root.setAttribute('data-loaded','1');});})();</script>"""


@dataclass(frozen=True)
class Page:
    loaded: bool
    errors: list[str]
    svgs: int  # plotly's <svg class="main-svg"> elements
    points: int  # drawn markers
    legend: list[str]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        why = "headless Chromium not installed (Debian: apt-get install chromium)"
        if REQUIRED:
            pytest.fail(f"{why}; NAS_PRUNE_REQUIRE_SERVERS=1 requires it")
        pytest.skip(why)
    return found


def _open(chromium: str, page: str, tmp: Path) -> Page:
    path = tmp / "page.html"
    path.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000",
           "--dump-dom", path.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    top = re.search(r"<html[^>]*>", dom)
    assert top is not None, dom[:500]
    errors = re.search(r'data-js-errors="([^"]*)"', top.group(0))
    return Page(loaded='data-loaded="1"' in top.group(0),
                errors=json.loads(html.unescape(errors.group(1))) if errors else [],
                svgs=dom.count('class="main-svg"'), points=dom.count('class="point"'),
                legend=re.findall(r'class="legendtext"[^>]*data-unformatted="([^"]*)"', dom))


def _data() -> ReportData:
    data = _full_data()
    insights = Insights(wins=budget_wins(data.front, DENSE_PARAMS), return_col="reeval_mean",
                        importances=[Importances("return_mean", "PED-ANOVA", {"x": 0.7,
                                                                              "y": 0.3})],
                        reuse=["nas-prune trial best.yaml"])
    return dataclasses.replace(data, insights=insights)


def _markers(data: ReportData) -> int:
    """Markers the page draws: the main scatter's trials, baseline, dense, front and its
    re-evaluation; then the cost plot's trials and baseline (return against env steps)."""
    front = len(plottable(data.front))
    main = (len(plottable(complete_rows(data.trials))) + len(plottable(data.baseline))
            + len(plottable(data.dense)) + 2 * front)
    cost = sum(int((numbers(df, "env_steps").notna() & numbers(df, "return_mean").notna()).sum())
               for df in (complete_rows(data.trials), data.baseline) if "env_steps" in df)
    return main + cost


def test_report_renders_in_chromium_without_script_errors(chromium: str,
                                                          tmp_path: Path) -> None:
    data = _data()
    page = _open(chromium, html_report(data), tmp_path)
    assert page.loaded
    assert page.errors == []
    assert page.svgs >= 1
    assert page.points == _markers(data) > 0
    assert {"trials (complete)", "Pareto front", "dense reference"} <= set(page.legend)
    assert "cubic" in page.legend  # the cost plot: one series per schedule


@pytest.mark.parametrize(("breakage", "needle"), [
    # a script that throws after the plot
    (("</body>", "<script>notDefined()</script></body>"), "notDefined"),
    # the plot call itself fails: no figure, and the error is caught
    (("Plotly.newPlot(", "Plotly.newPlott("), "newPlott"),
])
def test_a_broken_page_is_caught(chromium: str, tmp_path: Path,
                                 breakage: tuple[str, str], needle: str) -> None:
    page_text = html_report(_data())
    assert breakage[0] in page_text
    # every occurrence: each plot's call fails
    page = _open(chromium, page_text.replace(*breakage), tmp_path)
    assert page.loaded
    assert any(needle in e for e in page.errors), page.errors
    if needle == "newPlott":
        assert page.svgs == 0 and page.points == 0
