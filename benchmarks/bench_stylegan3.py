"""One StyleGAN3 synthesis (default: T at 256 px, channel_base 32768, channel_max 512, random weights) with the
fast filtered_lrelu against the plain reference composition, in the same run, and how the fast run's time splits
between the modulated convolutions and the filtered leaky ReLUs. It also prints how far the convolutions are from
this CPU's own limit: their multiply-adds against a dense 3x3 convolution (512 channels, 64x64, channels-last,
float32) timed in the same run, which bounds what any float32 path, this project's or NVlabs', can reach.

    python benchmarks/bench_stylegan3.py [--resolution 256] [--config t|r] [--repeats 1] [--threads N]
                                         [--skip-reference] [--down-passes]

Wall time is what a user waits; CPU time (this process, all threads) is steadier on a shared machine. Freed
memory is kept for reuse, as the explorer keeps it (explorer/memory.py). --down-passes times each layer's compiled
filtered leaky ReLU on the layer's own input, with its downsampling filter as the kernel runs it (R's radial
filters as folded sums of separable terms) against the same filter as one 2-D pass, alternating in this run.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.alternate import alternate  # noqa: E402
from explorer.memory import keep_freed_memory  # noqa: E402
from explorer.networks import stylegan3  # noqa: E402
import kernels.filtered_lrelu as filtered_lrelu_module  # noqa: E402
from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference  # noqa: E402

# NVlabs' published configurations (train.py): R doubles the channels and uses 1x1 convolutions.
CONFIGS = {
    "t": dict(channel_base=32768, channel_max=512),
    "r": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}


@dataclass
class Timing:
    wall: float = float("inf")
    cpu: float = float("inf")
    parts: dict = field(default_factory=dict)   # op name -> CPU seconds in the fastest run
    walls: dict = field(default_factory=dict)   # op name -> wall seconds in the fastest run
    conv_macs: int = 0                          # multiply-adds of the modulated convolutions in one synthesis


PEAK_SHAPE = dict(channels=512, size=64)        # a dense layer oneDNN runs near this CPU's float32 peak
PEAK_REPEATS = 5


def conv_macs(weight: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-adds of a convolution from its weight [out, in, kh, kw] and output."""
    _, in_channels, kh, kw = weight.shape
    return out.numel() * in_channels * kh * kw


def dense_conv_gflops() -> float:
    """float32 GFLOP/s of the best of PEAK_REPEATS dense 3x3 convolutions (PEAK_SHAPE, batch 1, channels-last)."""
    c, n = PEAK_SHAPE["channels"], PEAK_SHAPE["size"]
    x = torch.randn([1, c, n, n]).to(memory_format=torch.channels_last)
    w = torch.randn([c, c, 3, 3]).to(memory_format=torch.channels_last)
    best = float("inf")
    with torch.no_grad():
        for _ in range(PEAK_REPEATS + 1):
            start = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - start)
    return 2 * c * c * 9 * n * n / best / 1e9


def _timed_op(fn, name, parts, walls, macs=None):
    def wrapper(*args, **kwargs):
        start, wall = time.process_time(), time.perf_counter()
        try:
            out = fn(*args, **kwargs)
            if macs is not None:
                macs.append(conv_macs(args[1], out))
            return out
        finally:
            parts[name] = parts.get(name, 0.0) + time.process_time() - start
            walls[name] = walls.get(name, 0.0) + time.perf_counter() - wall
    return wrapper


def time_synthesis(G, ws, flrelu, repeats, warmup) -> tuple[Timing, torch.Tensor]:
    """The fastest of `repeats` runs, with the network's filtered_lrelu replaced by `flrelu`."""
    best = Timing()
    saved = stylegan3.filtered_lrelu, stylegan3.modulated_conv2d
    try:
        with torch.no_grad():
            for run in range(warmup + repeats):
                parts, walls, macs = {}, {}, []
                stylegan3.filtered_lrelu = _timed_op(flrelu, "filtered_lrelu", parts, walls)
                stylegan3.modulated_conv2d = _timed_op(saved[1], "modulated_conv2d", parts, walls, macs)
                wall, cpu = time.perf_counter(), time.process_time()
                image = G.synthesis(ws).image
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if run >= warmup and cpu < best.cpu:
                    best = Timing(wall, cpu, parts, walls, sum(macs))
    finally:
        stylegan3.filtered_lrelu, stylegan3.modulated_conv2d = saved
    return best, image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="t")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-reference", action="store_true",
                        help="time only the fast path (the reference composition takes minutes)")
    parser.add_argument("--down-passes", action="store_true",
                        help="each layer's downsampling as shipped against one 2-D pass, on the layer's input")
    args = parser.parse_args()
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.resolution, img_channels=3,
                            **CONFIGS[args.config]).eval()
    ws = G.mapping(torch.randn([1, 512]), None)
    if args.down_passes:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, StyleGAN3-{args.config.upper()} "
              f"{args.resolution} px, {CONFIGS[args.config]}: median of {max(args.repeats, 5)} per path")
        down_passes(G, ws, max(args.repeats, 5))
        return
    fast, a = time_synthesis(G, ws, filtered_lrelu, args.repeats, warmup=1)
    peak = dense_conv_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, StyleGAN3-{args.config.upper()} "
          f"{args.resolution} px, {CONFIGS[args.config]}")
    timings = [("fast", fast)]
    if not args.skip_reference:
        reference, b = time_synthesis(G, ws, filtered_lrelu_reference, args.repeats, warmup=0)
        timings.append(("reference", reference))
    for label, t in timings:
        split = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(t.parts.items()))
        walls = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(t.walls.items()))
        print(f"{label:>9}: wall {t.wall:6.2f} s   cpu {t.cpu:6.2f} s   (cpu in {split}; wall in {walls})")
    if not args.skip_reference:
        print(f"reference/fast: wall {reference.wall / fast.wall:.2f}x   cpu {reference.cpu / fast.cpu:.2f}x   "
              f"filtered_lrelu alone (cpu) {reference.parts['filtered_lrelu'] / fast.parts['filtered_lrelu']:.2f}x   "
              f"max |image difference| {(a - b).abs().max().item():.1e}")
    flops = 2 * fast.conv_macs
    conv_wall = fast.walls["modulated_conv2d"]
    print(f"convolutions: {fast.conv_macs / 1e9:.1f} GMAC ({flops / 1e9:.0f} GFLOP) in {conv_wall:.2f} s wall: "
          f"{flops / conv_wall / 1e9:.0f} GFLOP/s, against {peak:.0f} GFLOP/s for a dense 3x3 convolution "
          f"({PEAK_SHAPE['channels']} channels, {PEAK_SHAPE['size']}x{PEAK_SHAPE['size']}, channels-last) in this run "
          f"({flops / conv_wall / 1e9 / peak:.0%}); at that rate the convolutions alone would take "
          f"{flops / peak / 1e9:.2f} s, the rest of the synthesis took {fast.wall - conv_wall:.2f} s")


def layer_calls(G, ws) -> list[tuple[str, tuple, dict]]:
    """(layer name, args, kwargs) of every filtered leaky ReLU in one synthesis, in order."""
    calls, original = [], stylegan3.filtered_lrelu

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    stylegan3.filtered_lrelu = recording
    try:
        with torch.no_grad():
            G.synthesis(ws)
    finally:
        stylegan3.filtered_lrelu = original
    names = [name for name in G.synthesis.synthesis_layer_names if getattr(G.synthesis, name).down_filter is not None]
    return [(name, args, kwargs) for name, (args, kwargs) in zip(names, calls)]


def down_passes(G, ws, repeats: int) -> None:
    """Each layer's filtered leaky ReLU with the shipped downsampling pass against the 2-D pass, alternating."""
    low_rank_kept = filtered_lrelu_module._low_rank_kept
    as_2d = lambda *args: None        # noqa: E731  (no separable terms: the kernel's 2-D pass)
    totals = [0.0, 0.0]
    print(f"{'layer':<14} {'shipped pass':<30} {'shipped':>9} {'2-D pass':>9} {'ratio':>6}  max |difference|")
    for name, args, kwargs in layer_calls(G, ws):
        kind = filtered_lrelu_module.down_pass(kwargs["fd"], kwargs["down"])

        def run(low_rank, args=args, kwargs=kwargs):
            filtered_lrelu_module._low_rank_kept = low_rank
            return filtered_lrelu(*args, **kwargs)

        try:
            medians, outputs = alternate({"shipped": lambda: run(low_rank_kept), "2-D": lambda: run(as_2d)}, repeats)
        finally:
            filtered_lrelu_module._low_rank_kept = low_rank_kept
        shipped, flat = medians["shipped"], medians["2-D"]
        totals[0] += shipped
        totals[1] += flat
        print(f"{name:<14} {kind or 'eager':<30} {shipped * 1e3:7.1f} ms {flat * 1e3:6.1f} ms {flat / shipped:5.2f}x"
              f"  {(outputs['shipped'] - outputs['2-D']).abs().max().item():.1e}")
    print(f"{'all':<14} {'':<30} {totals[0] * 1e3:7.1f} ms {totals[1] * 1e3:6.1f} ms {totals[1] / totals[0]:5.2f}x")


if __name__ == "__main__":
    main()
