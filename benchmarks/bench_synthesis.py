"""One StyleGAN2 synthesis (config F shape: channel_base 32768, channel_max 512, 8 mapping layers, random
weights) at 256 and 1024 px: the plain reference kernels, the fast float32 path and the bfloat16 preview, timed
round-robin in the same run (wall and process CPU time; the machine may be shared).

    python benchmarks/bench_synthesis.py [--resolutions 256 1024] [--repeats 3] [--threads N]

Prints the median time of each path, the ratios to the reference, and the differences to the reference.
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
from explorer.networks.common import bfloat16_is_fast_on_cpu  # noqa: E402
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
    swaps = {"inference_only": lambda *tensors: False,
             "modulated_conv2d": _reference_modulated_conv2d, "bias_act": kernels.bias_act_reference,
             "upsample2d": _reference_upsample2d, "conv2d_resample": kernels.conv2d_resample_reference}
    saved = {name: getattr(stylegan2, name) for name in swaps}
    for name, fn in swaps.items():
        setattr(stylegan2, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(stylegan2, name, fn)


def _timed(function, walls, cpus):
    wall, cpu = time.perf_counter(), time.process_time()
    image = function()
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
    return image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preview = torch.bfloat16 if bfloat16_is_fast_on_cpu() else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; preview precision "
          f"{'bfloat16' if preview else 'none (no native bfloat16 on this CPU)'}")

    def reference(G, ws):
        with reference_kernels():
            return G.synthesis(ws, noise_mode="const").image

    for resolution in args.resolutions:
        torch.manual_seed(0)
        G = Generator(**config_f(resolution)).eval().requires_grad_(False)
        ws = G.mapping(torch.randn([1, G.z_dim]), None)
        paths = {"reference": lambda: reference(G, ws), "fast float32": lambda: G.synthesis(ws).image}
        if preview is not None:
            paths["bfloat16 preview"] = lambda: G.synthesis(ws, compute_dtype=preview).image
        walls = {name: [] for name in paths}
        cpus = {name: [] for name in paths}
        with torch.no_grad():
            images = {name: path() for name, path in paths.items()}        # warm-up
            for _ in range(args.repeats):
                for name, path in paths.items():
                    _timed(path, walls[name], cpus[name])
        base_wall, base_cpu = statistics.median(walls["reference"]), statistics.median(cpus["reference"])
        for name in paths:
            wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
            difference = (images[name] - images["reference"]).abs().max().item()
            print(f"{resolution:>5} px  {name:<17} wall {wall:7.3f} s  cpu {cpu:7.3f} s   reference / this: wall "
                  f"{base_wall / wall:5.2f}x  cpu {base_cpu / cpu:5.2f}x   max |difference| {difference:.1e}")


if __name__ == "__main__":
    main()
