"""GIF frames: Pillow's default quantiser against the fast octree the recorder uses, on the same frames.

    python benchmarks/bench_gif.py [--frames 100] [--size 256]
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image


def frames(count, size):
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        t = i / count * 2 * np.pi
        rgb = np.stack([np.sin(6 * x + t), np.cos(5 * y - t), np.sin(4 * (x + y) + 2 * t)], axis=2)
        yield ((rgb + 1) * 127.5).astype(np.uint8)


def encode(images, method):
    start = time.perf_counter()
    for image in images:
        quantised = Image.fromarray(image).quantize(256, method=method) if method is not None else \
            Image.fromarray(image).convert("P")   # what Image.save(format='GIF') does by default
        quantised.save(io.BytesIO(), format="GIF")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    images = list(frames(args.frames, args.size))
    default = encode(images, Image.Quantize.MEDIANCUT)
    fast = encode(images, Image.Quantize.FASTOCTREE)
    print(f"{args.frames} frames of {args.size}x{args.size}: median cut {default:.2f} s, fast octree {fast:.2f} s, "
          f"ratio {default / fast:.1f}x")


if __name__ == "__main__":
    main()
