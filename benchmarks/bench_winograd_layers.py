"""One modulated 3x3 layer (float32, CPU) three ways, in the same run: Winograd's fused pass (the compiled
transforms and products of a few tiles at a time, kernels/native/winograd.c), Winograd in separate passes (compiled
transforms around PyTorch's products), and oneDNN's direct channels-last convolution followed by the three in-place
passes for the noise, leaky ReLU and clamp. Each with the styles, demodulation and bias of a StyleGAN2 layer.

    python benchmarks/bench_winograd_layers.py [--layers 32:32:1024 64:64:512 ...] [--repeats 5] [--threads 2]

A layer is IN:OUT:SIDE (input channels, output channels, input side), or IN:OUTxPHASES:SIDE for an upsampling
layer's polyphase kernels (OUT * PHASES product channels, the output pixel-shuffled to twice the side; no direct
column; always F(4x4, 3x3), as the explorer runs them). Prints the median of each path, the ratios to the separate passes and to the direct convolution, the
largest difference between the paths, and which path the shipped thresholds choose.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kernels.winograd as winograd  # noqa: E402
from benchmarks.alternate import alternate, compiled_winograd_ready, layer_arguments  # noqa: E402
from kernels.modulated_conv import use_winograd  # noqa: E402

# StyleGAN2 config F's 3x3 layers from 64 px up, an upsampling layer's polyphase kernels at 512 px, and two where the
# fused pass loses (few tiles; 512 channels).
DEFAULT_LAYERS = ["512:512:64", "256:256:128", "128:128:256", "64:64:512", "32:32:1024", "64:32x4:512",
                  "64:64:64", "128:128:32", "512:512:32"]
SLOPE, CLAMP = 0.2, 256.0


def parse_layer(text: str) -> tuple[int, int, int, int]:
    """IN:OUT:SIDE or IN:OUTxPHASES:SIDE -> (in, out, side, shuffle)."""
    in_channels, out, side = text.split(":")
    out_channels, _, phases = out.partition("x")
    shuffle = int(round(int(phases) ** 0.5)) if phases else 1
    if phases and shuffle * shuffle != int(phases):
        raise SystemExit(f"{text}: the phases must be a square (4 for 2x upsampling)")
    return int(in_channels), int(out_channels), int(side), shuffle


def direct(x, weight, in_scale, out_scale, bias, noise):
    """oneDNN's convolution of the scaled input, then the output scale and bias, the noise, leaky ReLU, clamp."""
    y = F.conv2d(x * in_scale[:, :, None, None], weight, padding=1)
    y.mul_(out_scale[:, :, None, None]).add_(bias[None, :, None, None]).add_(noise)
    F.leaky_relu_(y, SLOPE)
    return y.clamp_(-CLAMP, CLAMP)


def main() -> int:
    parser = layer_arguments(__doc__.split("\n\n")[0], DEFAULT_LAYERS)
    parser.add_argument("--tile", type=int, choices=[4, 6], default=4)
    args = parser.parse_args()
    if not compiled_winograd_ready(args.threads):
        return 2
    shipped = (winograd.FUSED_MIN_TILES, winograd.FUSED_MAX_KERNEL_BYTES)
    print(f"torch {torch.__version__}, {args.threads} threads, F({args.tile}x{args.tile}, 3x3), median of "
          f"{args.repeats}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for text in args.layers:
        in_channels, out_channels, side, shuffle = parse_layer(text)
        g = torch.Generator().manual_seed(0)
        product_channels = out_channels * shuffle * shuffle
        x = torch.randn([1, in_channels, side, side], generator=g).contiguous(memory_format=torch.channels_last)
        weight = torch.randn([product_channels, in_channels, 3, 3], generator=g) / (9 * in_channels) ** 0.5
        in_scale = torch.rand([1, in_channels], generator=g) + 0.5
        out_scale = torch.rand([1, out_channels], generator=g) + 0.5
        bias = torch.randn([out_channels], generator=g)
        noise = torch.randn([1, 1, side * shuffle, side * shuffle], generator=g)
        tile = 4 if shuffle > 1 else args.tile        # polyphase kernels are made for F(4x4, 3x3)
        kernels = (winograd.polyphase_winograd_kernels(weight, shuffle) if shuffle > 1
                   else winograd.winograd_kernels(weight, tile))
        tiles = math.ceil(side / tile) ** 2
        chosen = "fused" if winograd.use_fused(in_channels, product_channels, tiles, tile) else "separate"
        if shuffle == 1 and not use_winograd(x, weight, 1, torch.float32, tile):
            chosen = "direct"

        def by_winograd(fused: bool):
            winograd.FUSED_MIN_TILES, winograd.FUSED_MAX_KERNEL_BYTES = (0, 1 << 62) if fused else (1 << 62, 0)
            return winograd.winograd_conv3x3(x, kernels, in_scale, out_scale, bias, padding=1, noise=noise,
                                             slope=SLOPE, clamp=CLAMP, shuffle=shuffle)

        paths = {"fused": lambda: by_winograd(True), "separate": lambda: by_winograd(False)}
        if shuffle == 1:
            paths["direct"] = lambda: direct(x, weight, in_scale, out_scale, bias, noise)
        median, outputs = alternate(paths, args.repeats)
        winograd.FUSED_MIN_TILES, winograd.FUSED_MAX_KERNEL_BYTES = shipped
        difference = max(float((outputs[name] - outputs["fused"]).abs().max()) for name in paths)
        line = (f"{text:>14}: fused {median['fused'] * 1e3:8.1f} ms   separate {median['separate'] * 1e3:8.1f} ms "
                f"({median['separate'] / median['fused']:.2f}x)")
        if "direct" in median:
            line += f"   direct {median['direct'] * 1e3:8.1f} ms ({median['direct'] / median['fused']:.2f}x)"
        print(f"{line}   max |difference| {difference:.1e}   shipped: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
