"""Paths timed alternately in one process, so that a shared machine's load falls on all of them alike: what the
layer benchmarks share."""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, TypeVar

import torch

from explorer.memory import keep_freed_memory
from kernels.native import library

Result = TypeVar("Result")


def alternate(paths: dict[str, Callable[[], Result]], repeats: int) -> tuple[dict[str, float], dict[str, Result]]:
    """Every path once to warm up, then `repeats` rounds of one call of each, without gradients. Returns each
    path's median wall time in seconds and its last result."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    results: dict[str, Result] = {}
    with torch.no_grad():
        for repeat in range(repeats + 1):
            for name, run in paths.items():
                start = time.perf_counter()
                results[name] = run()
                if repeat:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}, results


def layer_arguments(description: str, default_layers: list[str]) -> argparse.ArgumentParser:
    """The options of a benchmark of single layers: --layers, --repeats, --threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--layers", nargs="+", default=default_layers)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    return parser


def compiled_winograd_ready(threads: int) -> bool:
    """Whether the compiled Winograd kernels are here (else says why not); sets the thread count and keeps freed
    memory for reuse, as the explorer runs."""
    if library("winograd") is None:
        print("the compiled Winograd kernels are unavailable here (no C compiler, or STYLEGAN_EXPLORER_NATIVE=0)")
        return False
    torch.set_num_threads(threads)
    keep_freed_memory()     # freed buffers reused, not faulted in again
    return True
