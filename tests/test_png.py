"""`--png` (run, optimize, sweep, compare): the report's figures as PNG files where plotly's
static exporter (kaleido>=1 and a Chrome/Chromium) is available, and a one-line error before
any simulating where not."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import in_ci

from gtmsim.report import export

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def _need_exporter() -> None:
    why = export.png_unavailable()
    if why:
        if in_ci():
            pytest.fail(f"PNG export unavailable under CI: {why}")
        pytest.skip(f"PNG export unavailable: {why}")


def _run(args: list[str], command: str = "run", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gtmsim", command, *args],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **env})


def _check_figures(out: Path) -> list[str]:
    """One valid PNG per figure of report.html, and nothing left half-written."""
    pngs = sorted(p.name for p in (out / "figures").iterdir())
    assert pngs and all(name.endswith(".png") for name in pngs), pngs
    assert (out / "report.html").read_text(encoding="utf-8").count("Plotly.newPlot") == len(pngs)
    for name in pngs:
        width, height = _png_size(out / "figures" / name)
        assert width == export.PNG_WIDTH * export.PNG_SCALE and height > 300, name
        assert (out / "figures" / name).stat().st_size > 10_000, name  # drawn, not blank
    assert not list(out.glob(".*partial*")) and not list(out.glob(".*.old"))
    return pngs


@pytest.mark.slow
def test_run_png_writes_every_report_figure(tmp_path):
    _need_exporter()
    out = tmp_path / "out"
    res = _run(["--replications", "20", "--engine", "numba", "--png", "--out", str(out)])
    assert res.returncode == 0, res.stderr
    pngs = sorted(p.name for p in (out / "figures").iterdir())
    assert pngs == sorted(f"{name}.png" for name in (
        "flow", "distributions", "kpis", "mechanism_costs", "trust", "wip", "utilisation",
        "staffed"))
    assert (out / "report.html").read_text(encoding="utf-8").count("Plotly.newPlot") == 8
    for name in pngs:
        width, height = _png_size(out / "figures" / name)
        assert width == export.PNG_WIDTH * export.PNG_SCALE and height > 300, name
        assert (out / "figures" / name).stat().st_size > 20_000, name  # drawn, not blank


SHORT = ["--set", "run.horizon_days=30", "--set", "run.warmup_days=7"]


@pytest.mark.slow
def test_optimize_png_writes_every_report_figure(tmp_path):
    _need_exporter()
    out = tmp_path / "out"
    args = ["--trials", "6", "--scenarios", "4", "--replications", "1", "--top", "3",
            "--engine", "numba", *SHORT, "--png", "--out", str(out)]
    res = _run(args, "optimize")
    assert res.returncode == 0, res.stderr
    pngs = _check_figures(out)
    assert {"candidates.png", "history.png", "what_breaks.png"} <= set(pngs), pngs
    # a resumed study (two more trials) replaces the folder of PNGs as a whole
    res = _run([*args, "--trials", "8"], "optimize")
    assert res.returncode == 0, res.stderr
    _check_figures(out)


@pytest.mark.slow
def test_sweep_png_writes_every_report_figure(tmp_path):
    _need_exporter()
    (tmp_path / "grid.toml").write_text('profiles = ["ideal", "realistic"]\n[levers]\n'
                                        'sdr_headcount = [3, 5]\n')
    out = tmp_path / "out"
    res = _run(["--grid", str(tmp_path / "grid.toml"), *SHORT, "--replications", "2",
                "--workers", "0", "--engine", "numba", "--png", "--out", str(out)], "sweep")
    assert res.returncode == 0, res.stderr
    assert _check_figures(out) == ["means.png"]


@pytest.mark.slow
def test_compare_png_writes_every_report_figure(tmp_path):
    _need_exporter()
    out = tmp_path / "out"
    res = _run(["configs/b2b_saas.toml", "configs/product_led.toml", "--profile", "realistic",
                "--profile", "ideal", "--scenarios", "2", "--replications", "1", "--engine",
                "numba", *SHORT, "--png", "--out", str(out)], "compare")
    assert res.returncode == 0, res.stderr
    assert _check_figures(out) == ["profile_ideal.png", "profile_realistic.png"]


def test_write_pngs_takes_any_figures(tmp_path):
    """The function other reports use: a dict of figures, a folder."""
    _need_exporter()
    import plotly.graph_objects as go

    figs = {"bars": go.Figure(go.Bar(x=["a", "b"], y=[1, 2])).update_layout(height=300)}
    paths = export.write_pngs(figs, tmp_path / "pngs", width=400, scale=1)
    assert paths == [tmp_path / "pngs" / "bars.png"]
    assert _png_size(paths[0]) == (400, 300)


@pytest.mark.parametrize("command, args", [
    ("run", ["--replications", "100000"]),
    ("optimize", ["--trials", "1000"]),
    ("sweep", ["--grid", "GRID", "--replications", "100000", "--workers", "0"]),
    ("compare", ["configs/b2b_saas.toml", "configs/product_led.toml", "--scenarios", "1000",
                 "--set", "run.warmup_days=126"]),  # one window for both
])
@pytest.mark.slow
def test_png_without_an_exporter_fails_at_start(tmp_path, command, args):
    out = tmp_path / "out"
    (tmp_path / "grid.toml").write_text("[levers]\nsdr_headcount = [3, 5]\n")
    args = [str(tmp_path / "grid.toml") if a == "GRID" else a for a in args]
    # a browser that is not there: kaleido would have nothing to drive
    res = _run([*args, "--png", "--out", str(out)], command,
               BROWSER_PATH=str(tmp_path / "no-chrome"))
    assert res.returncode == 2
    assert res.stderr.startswith("gtmsim: error: --png: BROWSER_PATH=")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()  # nothing simulated, nothing written


def test_without_kaleido_the_message_says_what_to_install(monkeypatch):
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(export.metadata, "version", missing)
    assert "pip install 'gtmsim[png]'" in export.png_unavailable()
    monkeypatch.setattr(export.metadata, "version", lambda name: "0.2.1")
    assert "kaleido>=1" in export.png_unavailable()


def test_a_browser_path_naming_a_folder_is_refused_at_start(monkeypatch, tmp_path):
    """BROWSER_PATH=/usr/bin (a folder, which os.access calls executable) passed the check:
    `run --png` simulated every replication, then kaleido found no Chrome and the run failed
    with exit 1 and a five-line message, its results thrown away. A folder is no browser."""
    monkeypatch.setattr(export.metadata, "version", lambda name: "1.5.1")
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path))
    assert export.find_browser() is None
    assert export.png_unavailable() == (f"BROWSER_PATH={tmp_path} is not an executable "
                                        "browser")
