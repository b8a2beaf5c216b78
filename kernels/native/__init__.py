"""Compiled CPU kernels: C sources beside this file, built by the system's C compiler the first time a process
needs them and loaded with ctypes.

Why C and not PyTorch ops: the passes that remain slow on the CPU (docs/BENCHMARKS.md) are chains of cheap steps
over large images, where eager ops write and re-read every intermediate; a loop that keeps a few rows in cache
does the same arithmetic once. Why built here and not shipped: the sources are compiled for this CPU
(`-march=native`), and a plain C compiler is all they need (no PyTorch headers, a build takes about a second).

Builds are kept in a cache folder, one file per source, compiler, flags and CPU, written under a temporary name
and renamed, so that processes starting together never load half a file. Where no compiler is found, or a
build fails, `library()` returns None and says why once in the log; every caller then runs its eager path,
which computes the same numbers. `STYLEGAN_EXPLORER_NATIVE=0` turns the kernels off (the benchmarks' baseline).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).resolve().parent
# No -ffast-math: the kernels' sums need no reordering to vectorise (each lane is its own channel), and NaNs and
# infinities must come out as PyTorch's ops give them.
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno")
# With OpenMP the kernels split their work over the threads of the OpenMP runtime that PyTorch has loaded already
# (its libgomp.so.1: the library's dependency of that name resolves to the one in the process), so they neither
# start threads of their own nor compete with PyTorch's threads, which spin for a while after each op (measured:
# StyleGAN3-T 256 10-25% slower with the kernels' work on Python threads beside them). Where the compiler has no
# OpenMP, the kernels are built without it and `parallel` splits their work over Python threads instead.
OPENMP_FLAGS = ("-fopenmp",)
BUILD_TIMEOUT_S = 120
ENVIRONMENT_SWITCH = "STYLEGAN_EXPLORER_NATIVE"

FLOAT_P = ctypes.POINTER(ctypes.c_float)

_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL | None] = {}
_declared: dict[str, object] = {}         # by the library's file: a rebuilt library is declared again
_reasons: dict[str, str] = {}
_openmp: dict[str, bool] = {}             # by the library's file
_pool: ThreadPoolExecutor | None = None


def enabled() -> bool:
    """False when the environment turns the compiled kernels off."""
    return os.environ.get(ENVIRONMENT_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    override = os.environ.get("STYLEGAN_EXPLORER_CACHE")
    if override:
        return Path(override) / "native"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stylegan-explorer" / "native"


def compiler() -> str | None:
    """The C compiler: $CC, else cc, gcc or clang, whichever is found first."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_identity() -> str:
    """The CPU's model and feature flags (-march=native builds for exactly these)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        import platform
        return platform.processor() + platform.machine()


def _build(name: str, cc: str) -> Path:
    """The library of `name`.c, built with OpenMP if the compiler can, else without; kept in the cache."""
    source = SOURCE_DIR / f"{name}.c"
    # The headers beside the sources are part of every build (vectors.h).
    text = source.read_text() + "".join(h.read_text() for h in sorted(source.parent.glob("*.h")))
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    errors = []
    for flags in (FLAGS + OPENMP_FLAGS, FLAGS):
        key = hashlib.sha256(b"\0".join(part.encode() for part in
                                        (text, version, " ".join(flags), _cpu_identity()))).hexdigest()
        target = cache_dir() / f"{name}-{key[:16]}.so"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=target.parent)
        os.close(handle)
        try:
            result = subprocess.run([cc, *flags, "-o", partial, str(source)], capture_output=True, text=True,
                                    timeout=BUILD_TIMEOUT_S)
            if result.returncode == 0:
                os.replace(partial, target)
                return target
            errors.append(result.stderr.strip()[-600:])
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    raise RuntimeError(f"{Path(cc).name} failed on {source.name}: {errors[-1]}")


def library(name: str) -> ctypes.CDLL | None:
    """The compiled kernels of `name`.c, built on first use; None (and the reason in `unavailable_reason`)
    where they cannot be had."""
    if not enabled():
        return None
    with _lock:
        if name in _libraries:
            return _libraries[name]
        cc = compiler()
        lib = None
        try:
            if cc is None:
                raise RuntimeError("no C compiler found (set CC, or install gcc)")
            lib = ctypes.CDLL(str(_build(name, cc)))
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            _reasons[name] = str(error)
            log.warning("compiled kernels '%s' unavailable, using the eager path: %s", name, error)
        _libraries[name] = lib
        return lib


def declared(name: str, declare):
    """declare(lib): the library's functions with their argument types set, done once per loaded library; None
    where the library is unavailable."""
    lib = library(name)
    if lib is None:
        return None
    if lib._name not in _declared:
        _declared[lib._name] = declare(lib)
    return _declared[lib._name]


def pointer(t):
    """A float pointer to a tensor's data for a C function (None for None)."""
    return None if t is None else ctypes.cast(t.data_ptr(), FLOAT_P)


def noise_map(noise, batch_size: int, height: int, width: int):
    """(noise, floats between samples) as the kernels read it: one contiguous [1 or N, 1, height, width] map, the
    stride 0 where one map serves every sample; None where the noise is not one map per sample or one for all,
    broadcast over the channels ([H, W] or [1 or N, 1, H, W]), and the caller's eager path must take it."""
    noise = noise.float().reshape((1,) * (4 - noise.ndim) + tuple(noise.shape))
    if noise.shape[0] not in (1, batch_size) or noise.shape[1] != 1:
        return None
    noise = noise.expand(-1, 1, height, width).contiguous()
    return noise, (height * width if noise.shape[0] > 1 else 0)


def unavailable_reason(name: str) -> str | None:
    if not enabled():
        return f"turned off by {ENVIRONMENT_SWITCH}"
    return _reasons.get(name)


def status() -> str:
    """One line on the compiled kernels in this process, for the Performance panel: which are loaded, or why the
    eager paths run. Never builds anything (a panel asks every frame)."""
    if not enabled():
        return f"off ({ENVIRONMENT_SWITCH}=0): eager paths"
    with _lock:
        loaded = sorted(name for name, lib in _libraries.items() if lib is not None)
        failed = sorted((name, _reasons[name]) for name, lib in _libraries.items() if lib is None and name in _reasons)
        openmp = any(uses_openmp(lib) for lib in _libraries.values() if lib is not None)
    if failed:
        name, reason = failed[0]
        return f"eager paths: {name} did not build ({reason.splitlines()[0][:160]})"
    if loaded:
        return f"compiled: {', '.join(loaded)}" + (" (OpenMP)" if openmp else " (Python threads)")
    if compiler() is None:
        return "eager paths: no C compiler found (install gcc for the compiled kernels)"
    return "compiled on first use (none needed yet)"


def threads() -> int:
    import torch
    return max(1, torch.get_num_threads())


def uses_openmp(lib: ctypes.CDLL) -> bool:
    """Whether `lib` was built with OpenMP (each source says so through `openmp_enabled`); asked once a library."""
    if lib._name not in _openmp:
        function = lib.openmp_enabled
        function.restype = ctypes.c_int
        _openmp[lib._name] = bool(function())
    return _openmp[lib._name]


def parallel(lib: ctypes.CDLL, task, count: int, block: int) -> list:
    """task(begin, end, threads) over [0, count): one call that spreads its work over `threads()` OpenMP threads
    where `lib` has OpenMP, else one call per Python thread on disjoint ranges cut at multiples of `block`, each
    with threads=1. Returns the calls' results."""
    if uses_openmp(lib):
        return [task(0, count, threads())]
    return run_split(lambda begin, end: task(begin, end, 1), count, block)


def run_split(task, count: int, block: int) -> list:
    """task(begin, end) on disjoint ranges of [0, count), cut at multiples of `block`, one range per thread (ctypes
    calls release the GIL, so the ranges run at once). Returns the tasks' results in order."""
    global _pool
    if count <= 0:
        return []                          # nothing to run (an empty image)
    blocks = -(-count // block)
    parts = min(threads(), blocks)
    bounds = [min(count, block * (blocks * i // parts)) for i in range(parts + 1)]
    ranges = [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i] < bounds[i + 1]]
    if len(ranges) == 1:
        return [task(*ranges[0])]
    with _lock:
        if _pool is None or _pool._max_workers < len(ranges) - 1:
            _pool = ThreadPoolExecutor(max_workers=len(ranges) - 1, thread_name_prefix="native-kernels")
        pool = _pool
    # The caller's thread takes the first range itself.
    futures = [pool.submit(task, *r) for r in ranges[1:]]
    first = task(*ranges[0])
    return [first] + [f.result() for f in futures]
