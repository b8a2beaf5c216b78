"""One StyleGAN3-T synthesis (256 px, channel_base 32768, channel_max 512, random weights) with the fast
filtered_lrelu against the plain reference composition, in the same run.

    python benchmarks/bench_stylegan3.py [--resolution 256] [--repeats 2] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.networks import stylegan3  # noqa: E402
from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference  # noqa: E402


def timed(G, ws, repeats):
    times = []
    with torch.no_grad():
        G.synthesis(ws)
        for _ in range(repeats):
            start = time.perf_counter()
            image = G.synthesis(ws).image
            times.append(time.perf_counter() - start)
    return statistics.median(times), image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.resolution, img_channels=3).eval()
    ws = G.mapping(torch.randn([1, 512]), None)
    fast, a = timed(G, ws, args.repeats)
    stylegan3.filtered_lrelu = filtered_lrelu_reference
    try:
        reference, b = timed(G, ws, args.repeats)
    finally:
        stylegan3.filtered_lrelu = filtered_lrelu
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, StyleGAN3-T {args.resolution} px")
    print(f"fast {fast:.2f} s   reference {reference:.2f} s   reference/fast {reference / fast:.2f}x   "
          f"max |difference| {(a - b).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
