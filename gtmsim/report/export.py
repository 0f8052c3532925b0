"""Writing results out: JSON-ready values, parquet files, and report figures as PNG files,
for slides.

plotly's static exporter, kaleido (1.0 or later, the `png` extra), draws each figure in a
Chrome or Chromium installed on the machine: Debian's `chromium` package on PATH, or the
browser that $BROWSER_PATH names. `png_unavailable()` says, before any work, why PNGs cannot
be written here; `write_pngs()` writes them.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

def jsonable(value: Any) -> Any:
    """JSON-ready, as summary.json and comparison.json hold numbers: NaN and infinities as
    null, tuples as lists, numpy scalars as Python numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value


def plain(name: Any) -> str:
    """A name as plotly text: its own characters, never markup. plotly reads tags and
    entities in a figure's text (a team 's<i>d</i>r' drew as 'sdr' with d in italics,
    'p<br>q' on two lines); escaped, they are drawn as written."""
    return html.escape(str(name), quote=False)


def script_json(value: Any) -> str:
    """JSON to embed in a page's <script> element: every "<" is written "\\u003c", the same
    JSON string, so a name holding "</script>" cannot end the element early, nor one holding
    "<!--<script" (which an HTML parser reads as an escaped script) keep it from ending."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c")


def write_parquet(frame, path: Path) -> None:
    """`frame.write_parquet(path)`, a full disk an OSError as `write_csv`'s is: polars reports
    its parquet writer's IO errors as a ComputeError ('... (os error 28)', or only 'Invalid
    thrift: transport error'), so the file is made in memory and written by Python."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    Path(path).write_bytes(buffer.getbuffer())


def counted(n: int, noun: str) -> str:
    """'1 replication', '2 replications': `noun` is the plural; one is said in the singular."""
    return f"{n:,} {noun.removesuffix('s') if n == 1 else noun}"


def days(n: float) -> str:
    """'1 day', '0.5 days', '30 days': a run's window or warm-up in words."""
    return f"{n:g} {'day' if n == 1 else 'days'}"


PNG_WIDTH = 1200  # layout pixels; the files are PNG_SCALE times that
PNG_SCALE = 2
DEFAULT_HEIGHT = 500
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome")


def find_browser() -> str | None:
    """The Chrome or Chromium kaleido will drive: $BROWSER_PATH, else one on PATH, else one
    kaleido downloaded itself (`kaleido_get_chrome`)."""
    named = os.environ.get("BROWSER_PATH")
    if named:  # a folder is "executable" to os.access, but no browser
        return named if os.path.isfile(named) and os.access(named, os.X_OK) else None
    for name in BROWSER_NAMES:
        if path := shutil.which(name):
            return path
    try:
        from choreographer.browsers.chromium import Chromium

        return Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 (an internal of kaleido's; absent is simply "none")
        return None


def png_unavailable() -> str | None:
    """Why PNGs cannot be written on this machine, in a few words; None when they can."""
    try:
        version = metadata.version("kaleido")
    except metadata.PackageNotFoundError:
        return "needs plotly's static exporter: pip install 'gtmsim[png]' (kaleido>=1)"
    if int(version.split(".")[0]) < 1:
        return f"needs kaleido>=1 (installed: {version}): pip install -U 'kaleido>=1'"
    if find_browser() is None:
        if os.environ.get("BROWSER_PATH"):
            return f"BROWSER_PATH={os.environ['BROWSER_PATH']} is not an executable browser"
        return ("needs Chrome or Chromium for kaleido: apt-get install chromium, or set "
                "BROWSER_PATH to a Chrome")
    return None


def write_pngs(figures: dict[str, go.Figure], folder: str | Path,
               width: int = PNG_WIDTH, scale: float = PNG_SCALE) -> list[Path]:
    """Write each figure as `folder/<name>.png` (each at its own layout height), in one
    browser session; returns the paths, in the order of `figures`."""
    import plotly.io as pio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png" for name in figures]
    if not paths:
        return paths
    heights = [int(f.layout.height or DEFAULT_HEIGHT) for f in figures.values()]
    pio.write_images(list(figures.values()), paths, format="png", width=width,
                     height=heights, scale=scale)
    return paths


def change(x: float) -> str:
    """A relative change as a signed percentage, whole from 1%, else to two significant
    digits, so a small loss reads -0.3%, never -0% beside a loss of thousands."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0%"
    if abs(x) >= 0.0095:
        return f"{x:+.0%}"
    if abs(x) < 0.0001:
        return f"{'+' if x > 0 else '-'}<0.01%"
    return f"{x * 100:+.2g}%"
