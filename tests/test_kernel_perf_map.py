"""scripts/kernel_perf_map.py names the kernel's functions for perf: the map it writes covers
every function of the kernel, once, at the place the cached object was loaded (the script
checks the code in memory against the object before it writes a line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kernel_perf_map.py"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="perf maps and /proc/self/maps are Linux's")


@pytest.fixture(scope="module")
def listed():
    """(address, size, name) of each line the script prints with --check."""
    run = subprocess.run([sys.executable, str(SCRIPT), "--map-only", "--check"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = []
    for line in run.stdout.splitlines():
        a, size, name = line.split()
        rows.append((int(a, 16), int(size), name))
    map_line = run.stderr.strip().splitlines()[-1]
    path = Path(map_line.split(":")[0])
    assert f"{len(rows)} functions" in map_line
    lines = path.read_text().splitlines()
    path.unlink()
    assert [tuple(x.split()) for x in lines] == [(f"{a:x}", f"{s:x}", n) for a, s, n in rows]
    return rows


@pytest.mark.slow
def test_the_map_names_the_kernels_functions(listed):
    names = {n for _, _, n in listed}
    for hot in ("engine.run_one", "engine.run_worker", "heap._schedule", "heap._next_window",
                "rng._draw", "flow._enter", "calendar._work_done_at"):
        assert hot in names
    assert len(listed) >= 50


@pytest.mark.slow
def test_the_maps_functions_do_not_overlap(listed):
    for (a, size, name), (b, _, nxt) in zip(listed, listed[1:], strict=False):
        assert size > 0
        assert a + size <= b, (name, nxt)


@pytest.mark.parametrize("args", [["/nonexistent.toml"], ["-n", "0"], ["--profile", "nope"],
                                  ["--bogus"]])
def test_bad_input_is_one_line_and_exit_status_2(args):
    run = subprocess.run([sys.executable, str(SCRIPT), *args, "--map-only"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("kernel_perf_map: error: ")
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
