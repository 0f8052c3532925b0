"""The plotly.js a report page embeds, and the page's figures as HTML.

The whole plotly.js is 4.8 MB; a browser spends about two seconds reading and starting it
before it draws a figure. The reports draw six trace types, so they embed a bundle of
plotly.js with only those (`plotly-gtmsim.min.js`, 1.4 MB, built by
scripts/plotly_bundle/build.sh), which starts in about half the time. The whole plotly.js of
the installed plotly is embedded instead when the bundle cannot draw the figures: when it is
built from another major version of plotly.js than the installed plotly writes figures for, or
when a figure has a trace type the bundle lacks. So a page always draws; it is only slower.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

BUNDLE = Path(__file__).with_name("plotly-gtmsim.min.js")
_BANNER = re.compile(r"/\* plotly\.js v(?P<version>[\w.\-]+), traces: (?P<traces>[a-z0-9 ]+)\.")


@functools.cache
def bundle() -> tuple[str, frozenset[str], str] | None:
    """The bundle's plotly.js version, its trace types and its text; None if it is missing or
    has no banner (build.sh writes one)."""
    try:
        text = BUNDLE.read_text(encoding="utf-8")
    except OSError:
        return None
    m = _BANNER.match(text)
    if m is None:
        return None
    return m["version"], frozenset(m["traces"].split()), text


def installed_plotlyjs_version() -> str:
    """The plotly.js version the installed plotly writes figures for."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def _major(version: str) -> str:
    return version.split(".")[0]


def bundle_draws(types: Iterable[str]) -> bool:
    """Whether the bundle can draw figures of these trace types, written by the installed
    plotly: it exists, has them all, and is built from the same major version of plotly.js."""
    b = bundle()
    return (b is not None and _major(b[0]) == _major(installed_plotlyjs_version())
            and set(types) <= b[1])


def trace_types(figures: Iterable[go.Figure]) -> set[str]:
    """The trace types the figures draw (plotly's default type is scatter)."""
    return {t.type or "scatter" for f in figures for t in f.data}


def plotly_js(types: Iterable[str]) -> str:
    """The JavaScript to embed for figures of these trace types: the bundle if it can draw
    them, else the whole plotly.js of the installed plotly."""
    if bundle_draws(types):
        return bundle()[2]  # type: ignore[index]
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def figures_html(figures: Iterable[go.Figure]) -> list[str]:
    """Each figure as an HTML fragment, the first carrying plotly.js (once for the page)."""
    figures = list(figures)
    if not figures:
        return []
    script = ("<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
              f"<script>{plotly_js(trace_types(figures))}</script>")
    parts = [f.to_html(full_html=False, include_plotlyjs=False) for f in figures]
    parts[0] = script + parts[0]
    return parts
