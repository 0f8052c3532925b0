"""Is the `realistic` profile realistic? Measure the published facts inside the simulator.

Runs the default B2B SaaS config under the `realistic` profile and prints each fact that
docs/model.md cites beside its published figure and the band we accept (the bands live in
`gtmsim.calibration.BANDS`). Exit status 1 if a measurement falls outside its band.

    python scripts/calibrate.py                      # 24 replications, a worker per CPU
    python scripts/calibrate.py --replications 64 --workers 8
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gtmsim.calibration import BANDS, measure
from gtmsim.errors import GtmsimError
from gtmsim.report.export import counted
from gtmsim.simulate import usable_cores


def fmt(x: float, unit: str = "") -> str:
    if not math.isfinite(x):
        return "n/a"
    if unit == "x":  # two figures below 10: a ratio under 1 must not read 1x or 0x
        return f"{x:.0f}x" if abs(x) >= 10 else f"{x:.2g}x"
    if unit == "days":
        return f"{x:.1f}"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage dump) and exit status 2, as in gtmsim."""

    def error(self, message: str) -> NoReturn:
        print(f"calibrate: error: {message.removeprefix('argument ')}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=24)
    ap.add_argument("--workers", type=int, default=None,
                    help="processes (default: the CPUs this process may use)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--profile", default="realistic")
    ap.add_argument("--config", default=None, help="a config file (default: the embedded one)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    try:
        m = measure(args.replications, usable_cores() if args.workers is None else args.workers,
                    args.seed, args.profile, args.config,
                    tuple(args.overrides))
    except GtmsimError as exc:  # a bad config, profile or --set: one line, exit status 2
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 2
    table = Table(title=f"gtmsim calibration: profile {escape(repr(args.profile))}, "
                        f"{counted(args.replications, 'replications')} "
                        f"({time.perf_counter() - t0:.0f} s)")
    for col in ("fact", "simulated", "95% interval", "published", "accepted band", "ok",
                "source"):
        table.add_column(col, overflow="fold")
    bad = []
    for key, b in BANDS.items():
        x = m.values[key]
        ok = m.holds(key)
        if not ok:
            bad.append(key)
        iv = m.intervals.get(key)
        table.add_row(b.label, fmt(x, b.unit),
                      f"{fmt(iv[0], b.unit)} - {fmt(iv[1], b.unit)}" if iv else "",
                      b.published, f"{fmt(b.low, b.unit)} - {fmt(b.high, b.unit)}",
                      "yes" if ok else "NO", b.source)
    console = Console(width=max(Console().width, 160))
    console.print(table)
    for key, note in m.notes.items():
        console.print(f"[dim]{key}: {note}[/dim]")
    if bad:
        console.print(f"[bold red]outside the band:[/bold red] {', '.join(bad)}")
        return 1
    console.print("every measured fact lies inside its band")
    return 0


if __name__ == "__main__":
    sys.exit(main())
