"""GIF frames: Pillow's default quantiser against the fast octree the recorder uses, on the same frames.

    python benchmarks/bench_gif.py [--frames 100] [--size 256]

Baseline: what `Image.save(format='GIF')` does with an RGB frame by default (convert to an adaptive palette:
median cut). Fast: `quantize(method=FASTOCTREE)` before saving, as explorer.export.gif does. Both encode each
frame to GIF in memory. Then the GifRecorder end to end (quantise, write, fsync, link the frame in), with and
without the per-frame fsync.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.export import open_recorder  # noqa: E402


def frames(count, size):
    """Smooth moving colour fields with a few hundred distinct colours a frame, like generator output."""
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        t = i / count * 2 * np.pi
        rgb = np.stack([np.sin(6 * x + t), np.cos(5 * y - t), np.sin(4 * (x + y) + 2 * t)], axis=2)
        yield ((rgb + 1) * 127.5).astype(np.uint8)


def encode_default(images):
    start = time.perf_counter()
    for image in images:
        Image.fromarray(image).save(io.BytesIO(), format="GIF")   # Pillow converts RGB with median cut
    return time.perf_counter() - start


def encode_fast(images):
    start = time.perf_counter()
    for image in images:
        Image.fromarray(image).quantize(256, method=Image.Quantize.FASTOCTREE).save(io.BytesIO(), format="GIF")
    return time.perf_counter() - start


def mean_error(images, method):
    """Mean absolute error (0-255) of the quantised frames against the originals."""
    errors = []
    for image in images[::10]:
        quantised = np.asarray(Image.fromarray(image).quantize(256, method=method).convert("RGB"))
        errors.append(np.abs(quantised.astype(int) - image.astype(int)).mean())
    return float(np.mean(errors))


def record_gif(images, durable):
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with open_recorder("gif", folder=folder, fps=30, durable=durable) as recorder:
            for image in images:
                assert recorder.write(image), recorder.error
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    images = list(frames(args.frames, args.size))
    default = encode_default(images)
    fast = encode_fast(images)
    recorder = record_gif(images, durable=True)
    no_sync = record_gif(images, durable=False)
    error_default = mean_error(images, Image.Quantize.MEDIANCUT)
    error_fast = mean_error(images, Image.Quantize.FASTOCTREE)
    n, size = args.frames, args.size
    print(f"{n} frames of {size}x{size}")
    print(f"  Pillow default (median cut)  {default:7.2f} s  {1000 * default / n:7.1f} ms/frame  mean error {error_default:.2f}")
    print(f"  fast octree                  {fast:7.2f} s  {1000 * fast / n:7.1f} ms/frame  mean error {error_fast:.2f}")
    print(f"  GifRecorder, fsync per frame {recorder:7.2f} s  {1000 * recorder / n:7.1f} ms/frame")
    print(f"  GifRecorder, no fsync        {no_sync:7.2f} s  {1000 * no_sync / n:7.1f} ms/frame")
    print(f"ratio default / fast octree: {default / fast:.1f}x")


if __name__ == "__main__":
    main()
