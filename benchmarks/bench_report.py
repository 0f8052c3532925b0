"""How long the report of a 1,000-replication run takes to open in headless Chromium: the page
as gtmsim writes it (its plotly.js bundle, gtmsim/report/plotlyjs.py) against the same page
with the whole plotly.js, in one run.

Run: /work/venv/bin/python -m pytest benchmarks/bench_report.py --benchmark-only -s

'Opens' is what tests/test_browser.py measures: on the page's own clock, from navigation start
to the last figure's SVG in the document, each page in a fresh browser with an empty profile.
The two pages take turns, round after round, so a host that slows down moves both alike; the
figures are medians over the rounds. Issue 6's bar (under 3 seconds) is reported as a warning
when missed, never hidden behind a lowered assertion.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import Chromium, find_chromium  # noqa: E402

from gtmsim.report.plotlyjs import bundle  # noqa: E402

TARGET_SECONDS = 3.0
ROUNDS = 7


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """The run's report.html, and a copy of it with the whole plotly.js for the bundle."""
    if find_chromium() is None:
        pytest.skip("Chromium not installed (apt-get install chromium, or set $CHROMIUM)")
    from plotly.offline import get_plotlyjs

    out = tmp_path_factory.mktemp("report") / "out"
    res = subprocess.run([sys.executable, "-m", "gtmsim", "run", "--replications", "1000",
                          "--engine", "numba", "--out", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count(bundle()[2]) == 1  # the report embeds the bundle, once
    whole = out / "report_whole_plotlyjs.html"
    whole.write_text(page.replace(bundle()[2], get_plotlyjs()), encoding="utf-8")
    return {"bundle": out / "report.html", "whole": whole}


def test_report_opens_bundle_vs_whole_plotlyjs(benchmark, pages):
    def rounds() -> dict[str, list[float]]:
        seconds: dict[str, list[float]] = {name: [] for name in pages}
        figures = set()
        for j in range(ROUNDS):
            for name in sorted(pages, reverse=bool(j % 2)):
                with Chromium() as browser:
                    result = browser.open_report(pages[name])
                assert result.ok, result.problems()
                figures.add(result.figures)
                seconds[name].append(result.seconds)
        assert len(figures) == 1  # both pages draw the same figures
        return seconds

    seconds = benchmark.pedantic(rounds, rounds=1, iterations=1)
    t = {name: np.array(s) for name, s in seconds.items()}
    size = {name: p.stat().st_size for name, p in pages.items()}
    assert size["whole"] > 3 * size["bundle"]
    ratio = float(np.median(t["whole"] / t["bundle"]))
    bundle_s, whole_s = float(np.median(t["bundle"])), float(np.median(t["whole"]))
    benchmark.extra_info.update(bundle_s=bundle_s, whole_s=whole_s, ratio=ratio,
                                bundle_rounds=t["bundle"].tolist(),
                                whole_rounds=t["whole"].tolist(), bytes=size)
    print(f"\nopens in {bundle_s:.2f} s with the bundle ({size['bundle'] / 2**20:.2f} MiB), "
          f"{whole_s:.2f} s with the whole plotly.js ({size['whole'] / 2**20:.2f} MiB): "
          f"{ratio:.2f}x; rounds (bundle/whole): "
          + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(t["bundle"], t["whole"], strict=True)))
    if bundle_s >= TARGET_SECONDS:
        warnings.warn(f"the report opens in {bundle_s:.2f} s (target under "
                      f"{TARGET_SECONDS:.0f} s)", stacklevel=1)
