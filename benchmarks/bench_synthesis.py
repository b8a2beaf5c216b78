"""One StyleGAN2 synthesis (config F shape: channel_base 32768, channel_max 512, 8 mapping layers, random
weights) at 256 and 1024 px, with the fast kernels against the plain reference kernels, in the same run.

    python benchmarks/bench_synthesis.py [--resolutions 256 1024] [--repeats 3] [--threads N]

Prints the median time of each path and the ratio reference / fast.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kernels  # noqa: E402
from explorer.networks import stylegan2  # noqa: E402
from explorer.networks.stylegan2 import Generator, config_f  # noqa: E402


def _reference_modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                                 demodulate=True, flip_weight=True, fused_modconv=True):
    return kernels.modulated_conv2d_reference(x, weight, styles, noise=noise, up=up, down=down, padding=padding,
                                              resample_filter=resample_filter, demodulate=demodulate,
                                              flip_weight=flip_weight)


def _reference_upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1):
    return kernels.upsample2d(x, f, up=up, padding=padding, flip_filter=flip_filter, gain=gain,
                              impl=kernels.upfirdn2d_reference)


@contextlib.contextmanager
def reference_kernels():
    """Swap the network module's kernels for the plain references for the duration of the block."""
    swaps = {"modulated_conv2d": _reference_modulated_conv2d, "bias_act": kernels.bias_act_reference,
             "upsample2d": _reference_upsample2d, "conv2d_resample": kernels.conv2d_resample_reference}
    saved = {name: getattr(stylegan2, name) for name in swaps}
    for name, fn in swaps.items():
        setattr(stylegan2, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(stylegan2, name, fn)


def time_synthesis(G, ws, repeats):
    times = []
    with torch.no_grad():
        G.synthesis(ws)  # warm-up: allocator and thread pool
        for _ in range(repeats):
            start = time.perf_counter()
            G.synthesis(ws)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for resolution in args.resolutions:
        torch.manual_seed(0)
        G = Generator(**config_f(resolution)).eval()
        ws = G.mapping(torch.randn([1, G.z_dim]), None)
        fast = time_synthesis(G, ws, args.repeats)
        with reference_kernels():
            reference = time_synthesis(G, ws, args.repeats)
            check = G.synthesis(ws, noise_mode="none").image
        difference = (check - G.synthesis(ws, noise_mode="none").image).abs().max().item()
        print(f"{resolution:>5} px  fast {fast:7.3f} s   reference {reference:7.3f} s   "
              f"reference/fast {reference / fast:5.2f}x   max |difference| {difference:.1e}")


if __name__ == "__main__":
    main()
