"""The kernel's numba cache is dropped when a source it is built from changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gtmsim.engines.kernel import cache


def test_a_stamp_that_does_not_match_drops_the_kernels_cached_files(tmp_path):
    kernel = tmp_path / "engine.run_one-146.py311.nbi"
    other = tmp_path / "mine.f-3.py311.nbi"  # not the kernel's: kept
    for f in (kernel, other, tmp_path / "flow._enter-366.py311.2.nbc"):
        f.write_bytes(b"x")
    (tmp_path / cache.STAMP).write_text("built from other sources")
    assert cache.drop_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.STAMP, other.name]
    assert (tmp_path / cache.STAMP).read_text() == cache.fingerprint()
    kernel.write_bytes(b"x")  # compiled again from these sources: kept
    assert not cache.drop_stale(tmp_path) and kernel.exists()


def test_the_stamp_covers_what_the_kernel_reads_from_outside_its_folder():
    """A constant of gtmsim.outcomes (a tally index) compiled into flow.py left flow's cache
    stale when only outcomes.py changed: the win rate read 100%."""
    names = {p.name for p in cache.sources()}
    assert {"outcomes.py", "spec.py", "calendar.py", "engine.py", "flow.py"} <= names


def test_the_stamp_covers_numbas_compile_settings(tmp_path, monkeypatch):
    """numba keys a cached function on its source, never on NUMBA_BOUNDSCHECK: a kernel cached
    by a plain run was loaded under NUMBA_BOUNDSCHECK=1 and ran unchecked (an index past a
    table's end read garbage where an IndexError was asked for). A changed setting drops the
    kernel's cached files, as a changed source does."""
    import numba

    monkeypatch.setattr(numba.config, "BOUNDSCHECK", None)
    plain = cache.fingerprint()
    assert not cache.drop_stale(tmp_path)  # stamped under the plain settings
    (tmp_path / "engine.run_one-146.py311.nbi").write_bytes(b"x")  # an unchecked kernel
    monkeypatch.setattr(numba.config, "BOUNDSCHECK", 1)
    assert cache.fingerprint() != plain
    assert cache.drop_stale(tmp_path)
    assert not (tmp_path / "engine.run_one-146.py311.nbi").exists()
    monkeypatch.setattr(numba.config, "BOUNDSCHECK", None)
    monkeypatch.setattr(numba.config, "OPT", numba.config._OptLevel(2))
    assert cache.fingerprint() != plain


def test_the_kernels_cache_folder_holds_a_stamp_of_these_sources():
    import gtmsim.engines.kernel as kernel

    if kernel._folder is None:
        pytest.skip("this numba does not say where it keeps its cache")
    assert (kernel._folder / cache.STAMP).read_text() == cache.fingerprint()


def test_a_cache_folder_not_made_yet_is_stamped(tmp_path):
    """On a fresh install numba's cache folder does not exist before the first compile; it
    was left unstamped, so the next start dropped the cache that compile wrote (a second
    minute-long compile)."""
    folder = tmp_path / "__pycache__"
    assert not cache.drop_stale(folder)
    assert (folder / cache.STAMP).read_text() == cache.fingerprint()
    (folder / "engine.run_one-146.py311.nbi").write_bytes(b"x")  # the first compile's
    assert not cache.drop_stale(folder) and (folder / "engine.run_one-146.py311.nbi").exists()


def test_the_stamp_covers_every_gtmsim_module_the_kernel_imports():
    """rng.py compiles gtmsim.distributions' kind codes (FIXED .. EMPIRICAL) into `draw`, but
    distributions.py was not in the stamp: renumbering the kinds left the cached sampler
    drawing one distribution's parameters as another's, without a word."""
    import ast

    names = {p.name for p in cache.sources()}
    for source in cache.sources():
        if source.parent != cache._KERNEL or source.name in ("__init__.py", "cache.py"):
            continue  # not compiled: the package's entry point and this stamp
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "gtmsim":
                imported = {f"{a.name}.py" for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gtmsim."):
                if node.module.startswith("gtmsim.engines.kernel"):
                    continue
                imported = {node.module.split(".")[1] + ".py"}
            else:
                continue
            assert imported <= names, f"{source.name} imports {imported - names}"


@pytest.mark.slow  # it compiles the batch kernel again: minutes on 2 cores
def test_a_damaged_cache_file_is_dropped_and_compiled_again(tmp_path):
    """A cache file of the batch kernel cut short (a full disk, a copy that stopped) was an
    UnpicklingError traceback on every run until the file was found and deleted by hand; it
    is dropped and the kernel compiled again, in one line, to the same numbers."""
    import subprocess
    import sys

    import numpy as np
    from numba.core.caching import _CacheLocator

    import gtmsim.engines.kernel as kernel
    from gtmsim import compile_spec, load_config
    from gtmsim.engines.kernel import view

    if kernel._folder is None:
        pytest.skip("this numba does not say where it keeps its cache")
    want, _ = kernel.tallies(compile_spec(load_config(None)), 5, 2)  # cached here, if not yet
    copy = tmp_path / _CacheLocator.get_suitable_cache_subpath(view.__file__)
    shutil.copytree(kernel._folder, copy)  # where a process with NUMBA_CACHE_DIR=tmp_path looks
    (batch,) = copy.glob("engine.run_batch-*.nbc")
    batch.write_bytes(batch.read_bytes()[:1000])
    code = ("import sys; import numpy as np; from gtmsim import compile_spec, load_config; "
            "from gtmsim.engines.kernel import tallies; "
            "np.save(sys.argv[1], tallies(compile_spec(load_config(None)), 5, 2)[0])")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "got.npy")], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(res.stderr.splitlines()) == 1 and "damaged" in res.stderr, res.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), want)


def test_with_no_folder_to_cache_in_the_kernel_still_imports(tmp_path):
    """Installed read-only, with NUMBA_CACHE_DIR and the user's cache folder not writable
    either, importing the kernel was numba's 'cannot cache function: no locator available'
    RuntimeError traceback; it compiles into a temporary folder of the process instead (gone
    when it exits), and the compile notice says every run compiles."""
    import subprocess
    import sys
    import tempfile

    import gtmsim

    site = tmp_path / "site"
    shutil.copytree(Path(gtmsim.__file__).parent, site / "gtmsim",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [site / "gtmsim", *(site / "gtmsim").rglob("*")]:
        if folder.is_dir():
            (folder / "__pycache__").write_text("")  # a file: no cache folder next to sources
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # nothing can be made under a file, even by root
    env = {**os.environ, "PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(blocker / "numba"),
           "XDG_CACHE_HOME": str(blocker / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    code = ("import gtmsim, gtmsim.engines.kernel as k; from gtmsim.engines.kernel import cache; "
            "from gtmsim.simulate import kernel_is_cached; "
            "print(gtmsim.__file__, k._folder, cache.in_process_folder(), kernel_is_cached())")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)  # not the checkout's gtmsim, first on the path
    assert res.returncode == 0 and res.stderr == "", res.stderr[-2000:]
    source, folder, in_process, cached = res.stdout.split()
    assert Path(source).is_relative_to(site)
    assert Path(folder).is_relative_to(tempfile.gettempdir())
    assert (in_process, cached) == ("True", "False")
    assert not Path(folder).exists()  # removed at exit
