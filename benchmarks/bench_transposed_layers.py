"""One StyleGAN2 upsampling layer (float32, CPU) three ways, in the same run: its stride-2 transposed convolution by
Winograd's algorithm in the fused pass and in separate passes (kernels/native/winograd_transposed.h), and by
oneDNN with the per-frame modulated weight; each followed by the same FIR filter, bias, noise, leaky ReLU and
clamp (kernels/modulated_conv.py's upsampling layer as the explorer runs it).

    python benchmarks/bench_transposed_layers.py [--layers 128:64:256 ...] [--repeats 5] [--threads 2]

A layer is IN:OUT:SIDE (input channels, output channels, input side; the output is twice the side). Prints the
median of each path, the ratios of the other two to the fused pass, the largest difference between the paths, and
which path the shipped rules choose.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kernels.modulated_conv as modulated_conv  # noqa: E402
from benchmarks.alternate import alternate, compiled_winograd_ready, layer_arguments  # noqa: E402
import kernels.winograd as winograd  # noqa: E402
from kernels import setup_filter  # noqa: E402

# StyleGAN2 config F's upsampling layers from 32 px input up (the 512 px one runs as polyphase kernels when shipped).
DEFAULT_LAYERS = ["512:512:32", "512:256:64", "256:128:128", "128:64:256", "64:32:512"]


def main() -> int:
    parser = layer_arguments(__doc__.split("\n\n")[0], DEFAULT_LAYERS)
    args = parser.parse_args()
    if not compiled_winograd_ready(args.threads):
        return 2
    f = setup_filter([1, 3, 3, 1])
    shipped = winograd.use_fused_transposed
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for text in args.layers:
        in_channels, out_channels, side = (int(part) for part in text.split(":"))
        g = torch.Generator().manual_seed(0)
        x = torch.randn([1, in_channels, side, side], generator=g).contiguous(memory_format=torch.channels_last)
        weight = torch.randn([out_channels, in_channels, 3, 3], generator=g)
        styles = torch.randn([1, in_channels], generator=g) + 1
        bias = torch.randn([out_channels], generator=g)
        noise = torch.randn([1, 1, 2 * side, 2 * side], generator=g)
        energy = modulated_conv.prepare_weight(weight).energy
        by_winograd = modulated_conv.PreparedWeight(
            energy, transposed_winograd=winograd.transposed_winograd_kernels(weight, False))
        by_onednn = modulated_conv.PreparedWeight(energy)
        tiles = math.ceil((2 * side + 1) / winograd.UP_OUT) ** 2
        chosen = "fused" if shipped(in_channels, out_channels, tiles) else "separate"
        if not modulated_conv.use_transposed_winograd(x, weight, 2, torch.float32, 1, f):
            chosen = "polyphase" if modulated_conv.use_polyphase(x, 2, torch.float32) else "oneDNN"

        def layer(prepared, fused=None):
            winograd.use_fused_transposed = shipped if fused is None else (lambda *_: fused)
            polyphase_side = modulated_conv.POLYPHASE_MIN_SIDE
            modulated_conv.POLYPHASE_MIN_SIDE = 1 << 20         # this benchmark's paths, not the polyphase kernels
            try:
                return modulated_conv.modulated_conv2d_bias_act(
                    x, weight, styles, bias, noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False,
                    act="lrelu", clamp=256.0, prepared=prepared)
            finally:
                modulated_conv.POLYPHASE_MIN_SIDE = polyphase_side
                winograd.use_fused_transposed = shipped

        paths = {"fused": lambda: layer(by_winograd, True), "separate": lambda: layer(by_winograd, False),
                 "oneDNN": lambda: layer(by_onednn)}
        median, outputs = alternate(paths, args.repeats)
        difference = max(float((outputs[name] - outputs["oneDNN"]).abs().max()) for name in paths)
        print(f"{text:>12}: fused {median['fused'] * 1e3:7.1f} ms   separate {median['separate'] * 1e3:7.1f} ms "
              f"({median['separate'] / median['fused']:.2f}x)   oneDNN {median['oneDNN'] * 1e3:7.1f} ms "
              f"({median['oneDNN'] / median['fused']:.2f}x)   max |difference| {difference:.1e}   shipped: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
