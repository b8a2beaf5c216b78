"""Freed memory kept for the next frame.

A frame of a 1024 px network allocates and frees the same large activations (up to 128 MB each) every time. glibc's
malloc hands blocks that large to mmap and back to the system when they are freed, and takes blocks freed at the
top of its heap back as well, so every frame first-touches hundreds of megabytes of fresh pages again: measured
on the 2-core AMD EPYC (docs/BENCHMARKS.md), config F 1024 rendered in a worker thread in 2.29-2.55 s that way,
1.79-2.00 s with freed memory kept (tcmalloc, which keeps it too, 1.71-2.18 s), for 200-500 MB more resident
memory at the peak. `keep_freed_memory` tells glibc to keep it: one arena for every thread (a thread's own arena
cannot hold blocks over 64 MB and would mmap them anyway), no mmap for large blocks, no trimming.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
NEVER_TRIM = 2 ** 31 - 1      # mallopt takes an int


def keep_freed_memory() -> bool:
    """Has glibc keep freed memory for reuse (see the module's docstring); True when it took every setting.
    Elsewhere (macOS, Windows, musl) nothing changes and it returns False: their allocators are left as they are.
    Call it at the start of a process, before the large allocations."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM))
    return all([mallopt(parameter, value) == 1 for parameter, value in settings])
