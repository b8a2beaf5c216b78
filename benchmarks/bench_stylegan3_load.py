"""Does StyleGAN3's chunked filtered leaky ReLU collapse when another process holds a core? One StyleGAN3-T
synthesis (random weights, NVlabs' T configuration) with the channel-chunked path (kernels.filtered_lrelu's
CHUNK_ELEMENTS) against the whole layer in one op, interleaved, on an idle machine and with a busy-loop process
started beside it. Prints each pair and the ratio chunked / whole-layer (< 1: chunking is faster).

    python benchmarks/bench_stylegan3_load.py [--resolution 256] [--repeats 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kernels.filtered_lrelu as filtered_lrelu_module  # noqa: E402
from explorer.networks import stylegan3  # noqa: E402

WHOLE_LAYER = 10 ** 12           # more elements than any layer has: one chunk
BUSY_LOOP = "while True: pass"   # holds one core, as another program would


def synthesis_seconds(G, ws, chunk_elements: int) -> tuple[float, torch.Tensor]:
    filtered_lrelu_module.CHUNK_ELEMENTS = chunk_elements
    with torch.no_grad():
        start = time.perf_counter()
        image = G.synthesis(ws).image
        return time.perf_counter() - start, image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.resolution, img_channels=3,
                            channel_base=32768, channel_max=512).eval()
    ws = G.mapping(torch.randn(1, 512), None)
    chunked = filtered_lrelu_module.CHUNK_ELEMENTS
    _, reference = synthesis_seconds(G, ws, chunked)                      # also warms up both paths
    _, whole = synthesis_seconds(G, ws, WHOLE_LAYER)
    print(f"outputs agree: max |difference| {float((reference - whole).abs().max()):.2e}")
    for busy in (False, True):
        process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
        try:
            for _ in range(args.repeats):
                a, _ = synthesis_seconds(G, ws, chunked)
                b, _ = synthesis_seconds(G, ws, WHOLE_LAYER)
                print(f"{'busy core beside' if busy else 'idle':16s} chunked {a:6.2f} s   whole layer {b:6.2f} s   "
                      f"ratio {a / b:.2f}", flush=True)
        finally:
            if process is not None:
                process.kill()
    filtered_lrelu_module.CHUNK_ELEMENTS = chunked
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
