"""The run report: self-contained, its numbers those of summary.json, small enough."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    res = subprocess.run([sys.executable, "-m", "gtmsim", "run", "--replications", "1000",
                          "--engine", "numba", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


def test_report_numbers_equal_summary_json(run_folder):
    page = (run_folder / "report.html").read_text(encoding="utf-8")
    embedded = json.loads(re.search(
        r"<script type='application/json' id='gtmsim-summary'>(.*?)</script>", page).group(1))
    summary = {r["outcome"]: r for r in json.loads(
        (run_folder / "summary.json").read_text())["summary"]}
    assert set(embedded) == set(summary)
    for name, row in summary.items():
        for key in ("mean", "ci_low", "ci_high"):
            assert embedded[name][key] == row[key], (name, key)
    # the headline the page shows is the summary's bookings
    assert f"Bookings {summary['bookings']['mean']:,.0f} per replication" in page


def test_report_is_self_contained_and_small(run_folder):
    page = (run_folder / "report.html").read_text(encoding="utf-8")
    assert (run_folder / "report.html").stat().st_size < 10 * 1024 * 1024  # 1,000 replications
    # opens offline: plotly.js is inside the page, nothing is fetched from the network
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']https?://", page)
    assert page.count("Plotly.newPlot") == 6  # flow, distributions, KPIs, trust, WIP, utilisation
    for title in ("Where leads end up", "KPI against its target", "Trust per handoff"):
        assert title in page
