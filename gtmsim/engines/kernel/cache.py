"""numba's on-disk cache of the kernel, dropped when any source the kernel is built from
changes.

numba keys a cached function on its own file's time stamp only: a change to a function it
inlines or calls from another module, or to a constant it reads from `gtmsim.outcomes`,
`gtmsim.spec` or `gtmsim.distributions`, leaves it stale, and a stale kernel gives wrong
numbers without a word. The kernel's cache folder therefore holds a stamp, a hash of every
such source, of numba's version and of the settings that change what numba compiles
(NUMBA_BOUNDSCHECK, NUMBA_OPT: numba's own key ignores them, so a kernel cached without
bounds checking ran unchecked under NUMBA_BOUNDSCHECK=1); on import, a stamp that does not
match drops the kernel's cached files, so the next call compiles afresh.

Two ways the cache can fail a user are handled here too: no folder numba may cache in
(NUMBA_CACHE_DIR, next to the source, the user's cache folder: numba raised RuntimeError on
import), where the kernel compiles into a folder of this process's instead, on every run; and
a damaged cache file (cut short: numba raised UnpicklingError on every run), which
``tallies`` drops before compiling again.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import numba
from numba.core import caching

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
    # compile settings numba reads from the environment but leaves out of its cache's key
    h.update(repr((numba.config.BOUNDSCHECK, numba.config.OPT)).encode())
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


class ProcessFolder(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """numba's last resort for gtmsim's sources: a temporary folder of this process, removed
    when it exits, where no folder numba looks in takes writes (a read-only install with a
    read-only home). The kernel then compiles on every run instead of failing to import."""

    path: str | None = None  # made for the first function that needs it

    def __init__(self, py_func, py_file) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        if ProcessFolder.path is None:
            ProcessFolder.path = tempfile.mkdtemp(prefix="gtmsim-numba-")
            atexit.register(shutil.rmtree, ProcessFolder.path, True)
        self._cache_path = os.path.join(ProcessFolder.path,
                                        self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path

    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(_PACKAGE.resolve()):
            return None  # numba code outside gtmsim fails (or caches) as numba decides
        try:
            return super().from_function(py_func, py_file)
        except OSError:  # no temporary folder either: numba's RuntimeError stands
            return None


def in_process_folder() -> bool:
    """Whether the kernel compiles into this process's temporary folder (`ProcessFolder`)."""
    return ProcessFolder.path is not None


_impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
if ProcessFolder not in _impl._locator_classes:
    _impl._locator_classes.append(ProcessFolder)
