"""Sheets that show what a trained model makes: a grid of seeds, and samples beside their nearest training
image (pixel distance), which shows whether the model makes new images or copies the data.

    python -m explorer.training.sheets --pkl assets/default.safetensors --data data/emoji64.npz --outdir docs
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..formats import load_network
from ..latents import z_from_seed

GAP = 2   # pixels between tiles


def render_seeds(G, seeds, psi=1.0) -> np.ndarray:
    """uint8 [N, H, W, 3] images for seeds."""
    with torch.no_grad():
        z = torch.cat([z_from_seed(seed, G.z_dim) for seed in seeds])
        ws = G.mapping(z, None, truncation_psi=psi)
        images = G.synthesis(ws, noise_mode="const").image
    return (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def tile(images, columns) -> np.ndarray:
    n, h, w, c = images.shape
    rows = -(-n // columns)
    sheet = np.full([rows * (h + GAP) - GAP, columns * (w + GAP) - GAP, c], 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        sheet[r * (h + GAP):r * (h + GAP) + h, col * (w + GAP):col * (w + GAP) + w] = image
    return sheet


def nearest(samples: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Index into data of each sample's nearest image (Euclidean distance over all pixels)."""
    flat = data.reshape(len(data), -1).astype(np.float32)
    norms = (flat ** 2).sum(1)
    out = []
    for sample in samples.reshape(len(samples), -1).astype(np.float32):
        out.append(int(np.argmin(norms - 2 * flat @ sample)))
    return np.array(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pkl", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--psi", type=float, default=1.0)
    parser.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling of the sheets")
    args = parser.parse_args(argv)
    G = load_network(args.pkl).generator
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    samples = render_seeds(G, range(32), args.psi)
    Image.fromarray(tile(samples, 8)).resize(
        [s * args.scale for s in Image.fromarray(tile(samples, 8)).size], Image.NEAREST).save(outdir / "samples.png")
    with np.load(args.data) as data:
        images = data["images"]
    picks = samples[:8]
    matches = images[nearest(picks, images)]
    pairs = np.stack([picks, matches], axis=1).reshape(16, *picks.shape[1:])
    sheet = Image.fromarray(tile(pairs, 2))   # each row: a sample, then its nearest training image
    sheet.resize([s * args.scale for s in sheet.size], Image.NEAREST).save(outdir / "nearest.png")
    print(f"wrote {outdir / 'samples.png'} and {outdir / 'nearest.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
