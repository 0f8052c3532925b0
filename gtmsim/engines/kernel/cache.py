"""numba's on-disk cache of the kernel, dropped when any source the kernel is built from
changes.

numba keys a cached function on its own file's time stamp only: a change to a function it
inlines or calls from another module, or to a constant it reads from `gtmsim.outcomes`,
`gtmsim.spec` or `gtmsim.distributions`, leaves it stale, and a stale kernel gives wrong
numbers without a word. The kernel's cache folder therefore holds a stamp, a hash of every
such source and of numba's version; on import, a stamp that does not match drops the
kernel's cached files, so the next call compiles afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
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
    modules = {p.stem for p in _KERNEL.glob("*.py")}
    dropped = False
    with contextlib.suppress(OSError):
        # before the first compile the folder is not there yet: make it and stamp it, or
        # the stampless cache of that compile would be dropped on the next start
        folder.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            if f.suffix in (".nbi", ".nbc") and f.name.split(".")[0] in modules:
                f.unlink(missing_ok=True)
                dropped = True
        stamp.write_text(want)
    return dropped


def folder_of(dispatcher) -> Path | None:
    """Where numba keeps `dispatcher`'s cache (None if this numba hides it)."""
    try:
        return Path(dispatcher._cache._cache_file._index_path).parent
    except AttributeError:
        return None
