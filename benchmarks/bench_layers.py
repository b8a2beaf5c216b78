"""Where a StyleGAN2 synthesis spends its time, layer by layer, against the multiplies each layer's shipped algorithm
does and this CPU's dense rate: the profile behind docs/BENCHMARKS.md's "what would close it".

    python benchmarks/bench_layers.py [--resolution 1024] [--repeats 5] [--threads 2]

Builds config F at the resolution (random weights), times every synthesis layer of the float32 path (forward
hooks, median over the repeats; freed memory kept, as the explorer runs), and prints for each: its algorithm as
kernels/modulated_conv.py dispatches it, the multiplies that algorithm does (Winograd's transforms not counted),
the time, the rate and the share of the dense rate. The totals say how long those multiplies take at the dense
rate: no float32 implementation of the same algorithms runs faster than that on this CPU.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_stylegan3 import dense_conv_gflops  # noqa: E402
from explorer.memory import keep_freed_memory  # noqa: E402
from explorer.networks.stylegan2 import Generator, SynthesisLayer, ToRGBLayer, config_f  # noqa: E402
from kernels.modulated_conv import (use_matrix, use_polyphase, use_polyphase_winograd,  # noqa: E402
                                    use_transposed_winograd, use_winograd)
from kernels.few_outputs import MOST_OUTPUTS  # noqa: E402
from kernels.native import library  # noqa: E402
from kernels.winograd import UP_OUT, UP_VALUES, network_tile  # noqa: E402

TAPS = 9                      # a 3x3 kernel's multiplies per output and channel pair


class LayerWork(NamedTuple):
    algorithm: str
    macs: int                 # multiply-adds of the algorithm's products


def layer_work(layer: torch.nn.Module, x_shape: torch.Size) -> LayerWork:
    """The algorithm the float32 CPU path runs for `layer` on an input of `x_shape`, and its multiplies."""
    x = torch.empty(x_shape)
    side = x_shape[-1]
    out_channels, in_channels = layer.weight.shape[:2]
    pairs = in_channels * out_channels
    if isinstance(layer, ToRGBLayer):
        compiled = out_channels <= MOST_OUTPUTS and library("few_outputs") is not None
        return LayerWork("1x1, few outputs (compiled)" if compiled else "1x1 (oneDNN)", side * side * pairs)
    if use_matrix(x, layer.weight, layer.up, torch.float32, layer.padding, layer.resample_filter, layer.up == 1):
        return LayerWork("one matrix product (stored weight)", side * side * TAPS * pairs)
    tile = network_tile(side * getattr(layer, "up", 1))
    span = tile + 2               # F(tile x tile, 3x3): span^2 products per tile x tile outputs
    if layer.up == 1:
        if use_winograd(x, layer.weight, 1, torch.float32, tile):
            tiles = math.ceil(side / tile) ** 2
            return LayerWork(f"Winograd F({tile}x{tile}, 3x3)", tiles * span ** 2 * pairs)
        return LayerWork("direct 3x3 (oneDNN)", side * side * TAPS * pairs)
    if use_polyphase(x, layer.up, torch.float32):
        polyphase = layer.polyphase.get(layer.weight, layer.resample_filter, up=layer.up, padding=layer.padding,
                                        flip_weight=False, in_size=side)
        phases = layer.up ** 2
        if use_polyphase_winograd(polyphase, torch.float32):
            tiles = math.ceil(side / tile) ** 2
            return LayerWork(f"polyphase, Winograd F({tile}x{tile}, 3x3)", tiles * span ** 2 * phases * pairs)
        return LayerWork("polyphase, direct", side * side * TAPS * phases * pairs)
    if use_transposed_winograd(x, layer.weight, layer.up, torch.float32, layer.padding, layer.resample_filter):
        tiles = math.ceil((2 * side + 1) / UP_OUT) ** 2
        return LayerWork("transposed, Winograd F(4, 2)", tiles * UP_VALUES * pairs)
    return LayerWork("transposed (oneDNN)", side * side * TAPS * pairs)


def shipped_macs(synthesis) -> int:
    """Multiply-adds of a StyleGAN2 synthesis network's convolutions (3x3 layers and ToRGB) as this project's
    float32 CPU path runs them (`layer_work`), batch 1."""
    total = 0
    for resolution in synthesis.block_resolutions:
        block = getattr(synthesis, f"b{resolution}")
        for layer in (getattr(block, "conv0", None), block.conv1, getattr(block, "torgb", None)):
            if layer is not None:
                side = resolution // getattr(layer, "up", 1)
                total += layer_work(layer, torch.Size([1, layer.weight.shape[1], side, side])).macs
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    torch.manual_seed(0)
    G = Generator(**config_f(args.resolution)).eval().requires_grad_(False)
    ws = G.mapping(torch.randn([1, G.z_dim]), None)

    layers = {name: module for name, module in G.synthesis.named_modules()
              if isinstance(module, (SynthesisLayer, ToRGBLayer))}
    inputs: dict[str, torch.Size] = {}
    times: dict[str, list[float]] = {name: [] for name in layers}
    started: dict[str, float] = {}

    def before(name):
        def hook(module, hook_inputs):
            inputs[name] = hook_inputs[0].shape
            started[name] = time.perf_counter()
        return hook

    def after(name):
        def hook(module, hook_inputs, output):
            times[name].append(time.perf_counter() - started[name])
        return hook

    for name, module in layers.items():
        module.register_forward_pre_hook(before(name))
        module.register_forward_hook(after(name))
    wholes = []
    with torch.no_grad():
        G.synthesis(ws)                                       # warm-up: builds the prepared kernels
        for values in times.values():
            values.clear()
        for _ in range(args.repeats):
            start = time.perf_counter()
            G.synthesis(ws)
            wholes.append(time.perf_counter() - start)
    dense = dense_conv_gflops() / 2                           # GMAC/s

    print(f"torch {torch.__version__}, {args.threads} threads, config F {args.resolution} px, median of "
          f"{args.repeats}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; this CPU's dense 3x3 rate "
          f"{dense:.0f} GMAC/s")
    print(f"{'layer':<14} {'algorithm':<36} {'GMAC':>6} {'ms':>7} {'GMAC/s':>7} {'of dense':>8}")
    total_macs = total_time = 0.0
    for name, module in layers.items():
        work = layer_work(module, inputs[name])
        seconds = statistics.median(times[name])
        total_macs += work.macs
        total_time += seconds
        print(f"{name:<14} {work.algorithm:<36} {work.macs / 1e9:6.2f} {seconds * 1e3:7.1f} "
              f"{work.macs / 1e9 / seconds:7.1f} {work.macs / 1e9 / seconds / dense:7.0%}")
    whole = statistics.median(wholes)
    at_dense = total_macs / 1e9 / dense
    print(f"layers {total_time:.3f} s of a {whole:.3f} s synthesis; their {total_macs / 1e9:.1f} GMAC at the dense "
          f"rate take {at_dense:.3f} s ({at_dense / whole:.0%} of the synthesis); the rest of the synthesis "
          f"(mapping of the styles, image sums, copies) {whole - total_time:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
