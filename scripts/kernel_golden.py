"""Golden outputs of the numba kernel: record them, then check that a change moved no number.

    python scripts/kernel_golden.py            # record into /tmp/kernel-golden/
    python scripts/kernel_golden.py --check    # compare; exit 1 naming the first difference

Record at the commit before a change, check after it: outputs recorded earlier (another
session's, other columns) differ for reasons not the change's. The folder notes the commit
it was recorded at.

Cases: the embedded default config under the ideal, realistic and stressed profiles, and
configs/product_led.toml and configs/enterprise_partners.toml, ~20 replications each with a
fixed seed. Saved per case: the replications and weekly frames of
``simulate(..., engine="numba")`` (parquet; compared with ``DataFrame.equals``) and the raw
tally array of the kernel (compared byte for byte, so NaNs and -0.0 count too).

numba's on-disk cache does not track callees in other files; the kernel drops its cache by
itself when any of its sources changed (gtmsim/engines/kernel/cache.py), so a check after an
edit runs the edited kernel.

A change that adds outputs (a new column, a counter appended to a Tally array) fails --check,
as any difference does; with --allow-new it is listed instead, and every recorded number is
still compared: the recorded columns, and each Tally array of the raw tallies cut back to its
recorded shape (saved as <case>.shapes.json at recording).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gtmsim import load_config  # noqa: E402
from gtmsim.engines.kernel import TallyLayout, tallies  # noqa: E402
from gtmsim.simulate import simulate  # noqa: E402
from gtmsim.spec import compile_spec  # noqa: E402

CASES = {  # name: (config path, profile, replications, seed, first replication)
    "default-ideal": (None, "ideal", 20, 11, 0),
    "default-realistic": (None, "realistic", 20, 12, 0),
    "default-stressed": (None, "stressed", 20, 13, 5),
    "product_led": (ROOT / "configs/product_led.toml", None, 20, 14, 0),
    "enterprise_partners": (ROOT / "configs/enterprise_partners.toml", None, 20, 15, 0),
}


def outputs(name: str) -> tuple[dict[str, pl.DataFrame | np.ndarray], list[list[int]]]:
    """The case's frames and raw tallies, and the shapes of the Tally arrays in a raw row."""
    path, profile, n, seed, first = CASES[name]
    spec = compile_spec(load_config(path, profile=profile))
    res = simulate(spec, n, seed, engine="numba", first=first)
    raw, layout = tallies(spec, seed, n, first, parallel=False)
    shapes = [list(s) for s in layout.shapes]
    return {"replications": res.replications, "weekly": res.weekly, "raw": raw}, shapes


def old_columns(want: pl.DataFrame, got: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """`got` cut to the recorded columns, and its new ones, where it kept every recorded
    column in its order; else `got` as it is."""
    kept = [c for c in got.columns if c in want.columns]
    if kept != want.columns:
        return got, []
    return got.select(kept), [c for c in got.columns if c not in want.columns]


def old_raw(raw: np.ndarray, shapes: list[list[int]], recorded: list[list[int]],
            ) -> tuple[np.ndarray, list[str]] | None:
    """The raw tallies cut back to the recorded layout (each Tally array to its recorded
    shape: counters appended last along its last axis are left out), with a note per array
    that grew; None where an array shrank or changed otherwise."""
    if len(shapes) != len(recorded):
        return None
    parts, grown = [], []
    offset = 0
    for name, shape, old in zip(TallyLayout.NAMES, shapes, recorded, strict=True):
        size = int(np.prod(shape))
        block = raw[:, offset:offset + size].reshape(raw.shape[0], *shape)
        offset += size
        if shape != old:
            if len(shape) != len(old) or shape[:-1] != old[:-1] or shape[-1] < old[-1]:
                return None
            grown.append(f"{name} {old} -> {shape}")
            block = block[..., :old[-1]]
        parts.append(block.reshape(raw.shape[0], -1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1)), grown


def periods_mismatches() -> int:
    """The kernel's fmod-free ``periods(t, w)`` against Python's ``(int(t // w), t % w)``, bit
    for bit, on random times and on every edge near a multiple of w (and -0.0, NaN, t < 0)."""
    from numba import njit

    from gtmsim.engines.kernel.calendar import periods

    @njit
    def run(ts, w, n, r):
        for i in range(ts.shape[0]):
            n[i], r[i] = periods(ts[i], w)

    rng = np.random.default_rng(0)
    bad = 0
    for w in (24.0, 168.0, 13 * 168.0):
        base = np.arange(0, 400) * w
        below = np.nextafter(base, -np.inf)
        ts = np.concatenate([rng.uniform(0, 1e5, 100_000), rng.exponential(1.0, 1000), base,
                             below, np.nextafter(below, -np.inf), np.nextafter(base, np.inf),
                             [0.0, -0.0, 1e-300, -5.0, -w, -1e-9, np.nan]])
        n, r = np.empty(ts.size, dtype=np.int64), np.empty(ts.size)
        run(ts, w, n, r)
        for t, a, b in zip(ts.tolist(), n.tolist(), r.tolist(), strict=True):
            if t != t:
                continue  # NaN: int(nan // w) raises in Python; the kernel never sees one
            if a != int(t // w) or np.float64(b).tobytes() != np.float64(t % w).tobytes():
                bad += 1
    return bad


def first_difference(a: pl.DataFrame, b: pl.DataFrame) -> str:
    if a.columns != b.columns:
        gone = [c for c in a.columns if c not in b.columns]
        new = [c for c in b.columns if c not in a.columns]
        if not gone and not new:
            return "the same columns in another order"
        return "columns " + "; ".join(part for part in (
            f"missing now: {_some(gone)}" if gone else "",
            f"new: {_some(new)}" if new else "") if part)
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    for col in a.columns:
        if not a[col].equals(b[col]):
            return f"first differing column {col!r}"
    return "dtypes or values differ"


def _some(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _recorded_at() -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "gtmsim"],
                           capture_output=True, text=True).stdout.strip()
    commit = done.stdout.strip() or "an unknown commit"
    return commit + (" with changes to gtmsim/" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the saved outputs")
    ap.add_argument("--dir", default="/tmp/kernel-golden", type=Path)
    ap.add_argument("--allow-new", action="store_true",
                    help="with --check: list new columns and counters appended to a Tally "
                         "array instead of failing on them (recorded numbers still compared)")
    args = ap.parse_args()
    stamp = args.dir / "RECORDED_AT"
    if args.check:
        missing = [name for name in CASES if not (args.dir / f"{name}.raw.npy").is_file()]
        if missing:
            print(f"kernel_golden.py: error: --dir {args.dir}: nothing recorded for "
                  f"{', '.join(missing)}; record first, without --check, at the commit before "
                  "your change", file=sys.stderr)
            return 2
        if stamp.is_file():
            print(f"checking against outputs recorded at {stamp.read_text().strip()}")
    else:
        args.dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(_recorded_at() + "\n")
    bad = 0
    for name in CASES:
        got, shapes = outputs(name)
        layout_file = args.dir / f"{name}.shapes.json"
        if not args.check:
            layout_file.write_text(json.dumps(shapes) + "\n")
        for frame, value in got.items():
            ext = "npy" if frame == "raw" else "parquet"
            f = args.dir / f"{name}.{frame}.{ext}"
            if not args.check:
                if frame == "raw":
                    np.save(f, value)
                else:
                    value.write_parquet(f)
                continue
            if frame == "raw":
                want = np.load(f)
                if args.allow_new and want.shape != value.shape and layout_file.is_file():
                    cut = old_raw(value, shapes, json.loads(layout_file.read_text()))
                    if cut is not None:
                        value, grown = cut
                        print(f"new {name} raw counters (not compared): {'; '.join(grown)}")
                same = want.shape == value.shape and want.dtype == value.dtype and \
                    want.tobytes() == value.tobytes()
                why = "" if same else f"raw tallies differ ({int((want != value).sum())} "\
                    "cells, NaN-aware byte compare)" if want.shape == value.shape else \
                    f"raw shape {want.shape} vs {value.shape}"
                if not same and args.allow_new and not layout_file.is_file():
                    # recorded by a script before --allow-new: no layout to cut back to
                    why += (f" (no {layout_file.name}: --allow-new needs outputs recorded by "
                            "this script; record again at the commit before the change)")
            else:
                want = pl.read_parquet(f)
                if args.allow_new:
                    value, new = old_columns(want, value)
                    if new:
                        print(f"new {name} {frame} columns (not compared): {_some(new)}")
                same = want.equals(value)
                why = "" if same else first_difference(want, value)
            if not same:
                bad += 1
                print(f"DIFF {name} {frame}: {why}")
        print(f"{name}: {'checked' if args.check else 'recorded'} "
              f"({got['replications'].height} replications, {got['weekly'].height} weekly rows)")
    if args.check:
        wrong = periods_mismatches()
        print(f"periods(): {wrong} mismatches with Python's // and %")
        bad += wrong > 0
        print("golden check: " + ("OK, identical" if not bad else f"{bad} frame(s) differ "
                                  "(outputs recorded before another change differ too: "
                                  "record afresh at the commit before yours)"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
