"""numba's on-disk cache of the kernel, dropped when any source the kernel is built from
changes.

numba keys a cached function on its own file's time stamp only: a change to a function it
inlines or calls from another module, or to a constant it reads from `gtmsim.outcomes`,
`gtmsim.spec` or `gtmsim.distributions`, leaves it stale, and a stale kernel gives wrong
numbers without a word. The kernel's cache folder therefore holds a stamp, a hash of every
such source and of numba's version; on import, a stamp that does not match drops the
kernel's cached files, so the next call compiles afresh.

A damaged cache file (cut short: numba raised UnpicklingError on every run) is dropped by
``tallies`` before it compiles again.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import sys
from pathlib import Path

import numba

import gtmsim

STAMP = "gtmsim-kernel.sha256"
_PACKAGE = Path(gtmsim.__file__).parent
_KERNEL = Path(__file__).parent


def sources() -> list[Path]:
    """Every file whose change can change the compiled kernel."""
    return sorted(_KERNEL.glob("*.py")) + [
        _PACKAGE / n for n in ("outcomes.py", "spec.py", "calendar.py", "distributions.py")]


def fingerprint() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for p in sources():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def drop_stale(folder: Path) -> bool:
    """Remove the kernel's cached files in `folder` unless its stamp matches the sources;
    True when it removed them. Errors (a read-only folder) leave the cache as it is."""
    stamp = folder / STAMP
    want = fingerprint()
    with contextlib.suppress(OSError):
        if stamp.read_text() == want:
            return False
    dropped = False
    with contextlib.suppress(OSError):
        # before the first compile the folder is not there yet: make it and stamp it, or
        # the stampless cache of that compile would be dropped on the next start
        folder.mkdir(parents=True, exist_ok=True)
        dropped = drop(folder)
        stamp.write_text(want)
    return dropped


def drop(folder: Path) -> bool:
    """Remove the kernel's cached files in `folder` (its modules' names begin them); True
    when there were any. Other numba code cached there is kept."""
    modules = {p.stem for p in _KERNEL.glob("*.py")}
    dropped = False
    with contextlib.suppress(OSError):
        for f in folder.iterdir():
            if f.suffix in (".nbi", ".nbc") and f.name.split(".")[0] in modules:
                f.unlink(missing_ok=True)
                dropped = True
    return dropped


def damaged(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from, is numba failing to read a cache file
    (cut short: a full disk, a copy or download that stopped)."""
    while error is not None:
        if isinstance(error, EOFError | pickle.UnpicklingError):
            return True
        error = error.__cause__ or error.__context__
    return False


def recover(folders: list[Path | None]) -> None:
    """Drop the kernel's cached files in `folders` after `damaged`, saying so in one line."""
    where = ", ".join(str(f) for f in folders if f is not None)
    print(f"gtmsim: the numba engine's cache in {where} was damaged; dropped it, compiling the "
          f"engine again (about a minute)", file=sys.stderr, flush=True)
    for folder in folders:
        if folder is not None:
            drop(folder)


def folder_of(dispatcher) -> Path | None:
    """Where numba keeps `dispatcher`'s cache (None if this numba hides it)."""
    try:
        return Path(dispatcher._cache._cache_file._index_path).parent
    except AttributeError:
        return None

