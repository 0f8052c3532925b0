"""Profile the numba kernel with Linux perf, by name: run replications under a perf map.

    perf record -F 2000 -o perf.data python scripts/kernel_perf_map.py [CONFIG] [-n 50] [-r 4]
    perf report -i perf.data --no-children --sort symbol

perf sees compiled numba code as anonymous memory ("[JIT] tid ..."). perf reads names for such
code from /tmp/perf-PID.map ("start size name" per line), which this script writes for every
function of the kernel before it runs the batch: `engine.run_one` (with the handlers numba
inlined into it), `heap._schedule`, `rng._draw` and so on.

The kernel must come from numba's on-disk cache (the usual case after a first run): numba then
loads one object file per entry point, which holds every function the entry point calls.
Each object's function symbols are read from its ELF symbol table, and the place the object
was loaded at is found by looking for a stretch of its code (bytes that no relocation
changed) in this process's executable memory. With a cold cache the script compiles the
kernel, then starts itself again to load it from the cache.

`--map-only` writes the map and exits (no batch); `--check` also prints a line per function.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import struct
import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numba.core import codegen  # noqa: E402

OBJECTS: list[bytes] = []  # object files numba loaded from its cache, in load order
_set_compiled_object = codegen.CPUCodeLibrary._set_compiled_object


def _keep_object(self, value):
    OBJECTS.append(value)
    return _set_compiled_object(self, value)


codegen.CPUCodeLibrary._set_compiled_object = _keep_object  # before the kernel is loaded

from gtmsim import load_config  # noqa: E402
from gtmsim.engines.kernel import tallies  # noqa: E402
from gtmsim.errors import GtmsimError  # noqa: E402
from gtmsim.spec import compile_spec  # noqa: E402

SHT_SYMTAB, SHT_RELA, STT_FUNC = 2, 4, 2
WINDOW = 64  # bytes of code searched for


def elf_sections(obj: bytes) -> list[dict]:
    """An ELF64 (little-endian) object's section headers, with their names."""
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF object")
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", obj, 0x3A)
    secs = []
    for i in range(shnum):
        name, kind, _flags, _addr, offset, size, link, info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", obj, shoff + i * shentsize)
        secs.append(dict(name=name, kind=kind, offset=offset, size=size, link=link, info=info,
                         entsize=entsize))
    names = secs[shstrndx]
    for s in secs:
        s["name"] = _cstr(obj, names["offset"] + s["name"])
    return secs


def _cstr(obj: bytes, at: int) -> str:
    return obj[at:obj.index(b"\0", at)].decode()


def functions(obj: bytes) -> tuple[bytes, list[tuple[int, int, str]], list[int]]:
    """(the code section's bytes, its functions as (offset, size, symbol), the offsets its
    relocations patch). numba puts all of a kernel's code in one section."""
    secs = elf_sections(obj)
    symtab = next(s for s in secs if s["kind"] == SHT_SYMTAB)
    strtab = secs[symtab["link"]]
    found: dict[int, list[tuple[int, int, str]]] = {}
    for k in range(symtab["size"] // symtab["entsize"]):
        name, info, _other, shndx, value, size = struct.unpack_from(
            "<IBBHQQ", obj, symtab["offset"] + k * symtab["entsize"])
        if info & 0xF == STT_FUNC and size > 0:
            found.setdefault(shndx, []).append(
                (value, size, _cstr(obj, strtab["offset"] + name)))
    index = max(found, key=lambda i: secs[i]["size"])
    code = secs[index]
    relocs = []
    for s in secs:
        if s["kind"] == SHT_RELA and s["info"] == index:
            for k in range(s["size"] // s["entsize"]):
                relocs.append(struct.unpack_from("<Q", obj, s["offset"] + k * s["entsize"])[0])
    data = obj[code["offset"]:code["offset"] + code["size"]]
    return data, sorted(found[index]), sorted(relocs)


def loaded_at(code: bytes, relocs: list[int]) -> int | None:
    """Where `code` lies in this process's executable memory: a window of it that no
    relocation touches, searched for in each executable mapping."""
    at = min(len(code) // 2, 0x2000)
    while at + WINDOW <= len(code) and any(at - 8 < r < at + WINDOW for r in relocs):
        at += 16
    if at + WINDOW > len(code):
        return None
    needle = code[at:at + WINDOW]
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        # anonymous, readable and executable: not a library's file, not [vsyscall] (which
        # cannot be read)
        if not fields[1].startswith("r") or "x" not in fields[1] or len(fields) > 5 \
                or hi - lo > 256 << 20:
            continue
        i = ctypes.string_at(lo, hi - lo).find(needle)
        base = lo + i - at
        # the whole code must lie inside this mapping: reading past it could fault
        if i >= 0 and lo <= base and base + len(code) <= hi and _same_code(base, code, relocs):
            return base
    return None


def _same_code(base: int, code: bytes, relocs: list[int]) -> bool:
    """Whether the memory at `base` holds `code`, but for the bytes relocations patched."""
    mem = bytearray(ctypes.string_at(base, len(code)))
    want = bytearray(code)
    for r in relocs:
        mem[r:r + 8] = want[r:r + 8] = bytes(min(8, len(code) - r))
    return mem == want


def short_name(symbol: str) -> str:
    """`module.function` of a numba symbol (_ZN6gtmsim7engines6kernel4heap9_scheduleB...)."""
    prefix = "cfunc." if symbol.startswith("cfunc.") else ""
    s = symbol.removeprefix("cfunc.")
    if not s.startswith("_ZN"):  # numba's helpers: "_Dtor.numba.StateType((...))"
        return symbol.split("(")[0].replace(" ", "_")
    parts, i = [], 3
    while i < len(s) and s[i].isdigit():
        j = i
        while s[j].isdigit():
            j += 1
        n = int(s[i:j])
        parts.append(s[j:j + n])
        i = j + n
    wrapper = "cpython." if parts and parts[0] == "cpython" else ""
    return prefix + wrapper + ".".join(parts[-2:])


def perf_map() -> list[tuple[int, int, str]]:
    """(address, size, name) of every function in the objects numba loaded and runs (an
    object loaded only to be linked into a function compiled afresh is not in executable
    memory, and is left out)."""
    rows = []
    for obj in OBJECTS:
        code, funcs, relocs = functions(obj)
        base = loaded_at(code, relocs)
        if base is not None:
            rows += [(base + off, size, short_name(sym)) for off, size, sym in funcs]
    return sorted(rows)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage dump) and exit status 2, as in gtmsim."""

    def error(self, message: str) -> NoReturn:
        print(f"kernel_perf_map: error: {message.removeprefix('argument ')}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: at least 1")
    return n


def main() -> None:
    ap = _Parser(description=__doc__.split("\n")[0])
    ap.add_argument("config", nargs="?", help="a config file (default: the embedded one)")
    ap.add_argument("-n", "--replications", type=_positive, default=50)
    ap.add_argument("-r", "--rounds", type=_positive, default=4, help="batches run under perf")
    ap.add_argument("--profile", help="a human-model profile (ideal, realistic, stressed)")
    ap.add_argument("--map-only", action="store_true", help="write the map, run no batch")
    ap.add_argument("--check", action="store_true", help="print the map's functions")
    args = ap.parse_args()
    try:
        spec = compile_spec(load_config(args.config, profile=args.profile))
    except GtmsimError as exc:  # a bad config or profile: one line, exit status 2
        print(f"kernel_perf_map: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    tallies(spec, 1, 1, parallel=False)  # load the kernel (or compile it)
    rows = perf_map()
    if not any(name == "engine.run_one" for _, _, name in rows):  # compiled, not loaded
        if os.environ.get("GTMSIM_PERF_MAP_AGAIN"):
            raise SystemExit("kernel_perf_map: the kernel did not load from numba's cache")
        print("kernel_perf_map: compiled the kernel; starting again to load it from the cache",
              file=sys.stderr)
        os.environ["GTMSIM_PERF_MAP_AGAIN"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    path = Path(f"/tmp/perf-{os.getpid()}.map")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{a:x} {size:x} {name}\n" for a, size, name in rows))
    tmp.replace(path)
    print(f"{path}: {len(rows)} functions", file=sys.stderr)
    if args.check:
        for a, size, name in rows:
            print(f"{a:x} {size:6d} {name}")
    if args.map_only:
        return
    t0 = time.process_time()
    for _ in range(args.rounds):
        tallies(spec, 1, args.replications, parallel=False)
    per = (time.process_time() - t0) / (args.rounds * args.replications)
    print(f"{per * 1e3:.2f} ms per replication (CPU time, one thread)", file=sys.stderr)


if __name__ == "__main__":
    main()
