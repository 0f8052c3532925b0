"""The plotly.js a report embeds: gtmsim's bundle when it can draw the figures, else the whole
plotly.js of the installed plotly (gtmsim/report/plotlyjs.py). tests/test_browser.py opens each
kind of report with the bundle and checks every trace is drawn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from gtmsim.report import plotlyjs
from gtmsim.report.plotlyjs import BUNDLE, bundle, bundle_draws, figures_html

RECIPE = Path(__file__).resolve().parents[1] / "scripts" / "plotly_bundle"
WHOLE_START = get_plotlyjs()[:200]  # the whole plotly.js opens with its own licence banner


@pytest.fixture
def fresh_bundle():
    """Forget the bundle read so far, before and after a test that moves or changes it."""
    bundle.cache_clear()
    yield
    bundle.cache_clear()


def _bar() -> go.Figure:
    return go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))


def _embeds(page: str) -> str:
    """Which plotly.js a page embeds: 'bundle', 'whole', or 'both'/'neither' (both wrong)."""
    has_bundle, has_whole = BUNDLE.read_text(encoding="utf-8")[:200] in page, WHOLE_START in page
    return {(True, False): "bundle", (False, True): "whole"}.get((has_bundle, has_whole),
                                                                 f"{has_bundle=} {has_whole=}")


def test_the_bundle_is_built_from_its_recipe():
    """The committed bundle says it holds the plotly.js version package.json pins and the trace
    types entry.js registers (scatter comes with plotly.js's core)."""
    version, traces, text = bundle()
    pinned = json.loads((RECIPE / "package.json").read_text())["dependencies"]["plotly.js"]
    register = (RECIPE / "entry.js").read_text().split("Plotly.register(", 1)[1]
    registered = re.findall(r"require\('plotly\.js/lib/(\w+)'\)", register)
    assert version == pinned
    assert traces == {"scatter", *registered}
    assert "</script" not in text.lower()  # it is embedded inside a <script> element
    assert len(text) < len(get_plotlyjs()) / 3  # the point of it


def test_the_installed_plotly_gets_the_bundle_for_every_trace_type_it_has():
    """Fails when the installed plotly writes figures for another major version of plotly.js
    than the bundle's: rebuild it (scripts/plotly_bundle/build.sh) from that version."""
    version, traces, _ = bundle()
    assert bundle_draws(traces), (f"the bundle is plotly.js {version}, the installed plotly "
                                  f"writes for {plotlyjs.installed_plotlyjs_version()}")


def test_plotlyjs_is_embedded_once_before_the_first_figure():
    figures = [_bar(), go.Figure(go.Scatter(y=[1, 3])), go.Figure(go.Sankey())]
    parts = figures_html(figures)
    assert len(parts) == 3 and _embeds(parts[0]) == "bundle"
    assert all("Plotly.newPlot(" in p for p in parts)
    assert all(bundle()[2][:200] not in p and WHOLE_START not in p for p in parts[1:])
    assert parts[0].index(bundle()[2]) < parts[0].index("Plotly.newPlot(")
    assert figures_html([]) == []


def test_a_trace_type_the_bundle_lacks_gets_the_whole_plotlyjs():
    assert _embeds(figures_html([_bar()])[0]) == "bundle"
    assert _embeds(figures_html([_bar(), go.Figure(go.Pie(values=[1, 2]))])[0]) == "whole"


def test_another_major_version_of_plotlyjs_gets_the_whole_plotlyjs(monkeypatch):
    version = bundle()[0]
    major = int(version.split(".")[0])
    for other in (major - 1, major + 1):
        monkeypatch.setattr(plotlyjs, "installed_plotlyjs_version", lambda v=other: f"{v}.0.0")
        assert _embeds(figures_html([_bar()])[0]) == "whole"
    monkeypatch.setattr(plotlyjs, "installed_plotlyjs_version", lambda: f"{major}.99.0")
    assert _embeds(figures_html([_bar()])[0]) == "bundle"


@pytest.mark.parametrize("damage", ["missing", "no banner"])
def test_a_missing_or_unmarked_bundle_gets_the_whole_plotlyjs(damage, monkeypatch, tmp_path,
                                                             fresh_bundle):
    moved = tmp_path / BUNDLE.name
    if damage == "no banner":
        moved.write_text(BUNDLE.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    monkeypatch.setattr(plotlyjs, "BUNDLE", moved)
    assert bundle() is None
    assert WHOLE_START in figures_html([_bar()])[0]
