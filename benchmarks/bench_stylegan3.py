"""One StyleGAN3 synthesis (default: T at 256 px, channel_base 32768, channel_max 512, random weights) with the
fast filtered_lrelu against the plain reference composition, in the same run, and how the fast run's time splits
between the modulated convolutions and the filtered leaky ReLUs.

    python benchmarks/bench_stylegan3.py [--resolution 256] [--config t|r] [--repeats 1] [--threads N]

Wall time is what a user waits; CPU time (this process, all threads) is steadier on a shared machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.networks import stylegan3  # noqa: E402
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


def _timed_op(fn, name, parts):
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[name] = parts.get(name, 0.0) + time.process_time() - start
    return wrapper


def time_synthesis(G, ws, flrelu, repeats, warmup) -> tuple[Timing, torch.Tensor]:
    """The fastest of `repeats` runs, with the network's filtered_lrelu replaced by `flrelu`."""
    best = Timing()
    saved = stylegan3.filtered_lrelu, stylegan3.modulated_conv2d
    try:
        with torch.no_grad():
            for run in range(warmup + repeats):
                parts: dict = {}
                stylegan3.filtered_lrelu = _timed_op(flrelu, "filtered_lrelu", parts)
                stylegan3.modulated_conv2d = _timed_op(saved[1], "modulated_conv2d", parts)
                wall, cpu = time.perf_counter(), time.process_time()
                image = G.synthesis(ws).image
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if run >= warmup and cpu < best.cpu:
                    best = Timing(wall, cpu, parts)
    finally:
        stylegan3.filtered_lrelu, stylegan3.modulated_conv2d = saved
    return best, image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="t")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.resolution, img_channels=3,
                            **CONFIGS[args.config]).eval()
    ws = G.mapping(torch.randn([1, 512]), None)
    fast, a = time_synthesis(G, ws, filtered_lrelu, args.repeats, warmup=1)
    reference, b = time_synthesis(G, ws, filtered_lrelu_reference, args.repeats, warmup=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, StyleGAN3-{args.config.upper()} "
          f"{args.resolution} px, {CONFIGS[args.config]}")
    for label, t in (("fast", fast), ("reference", reference)):
        split = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(t.parts.items()))
        print(f"{label:>9}: wall {t.wall:6.2f} s   cpu {t.cpu:6.2f} s   (cpu in {split})")
    print(f"reference/fast: wall {reference.wall / fast.wall:.2f}x   cpu {reference.cpu / fast.cpu:.2f}x   "
          f"filtered_lrelu alone (cpu) {reference.parts['filtered_lrelu'] / fast.parts['filtered_lrelu']:.2f}x   "
          f"max |image difference| {(a - b).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
