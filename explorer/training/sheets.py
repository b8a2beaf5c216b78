"""Sheets that show what a trained model makes: a grid of seeds, and samples beside their nearest training
image (pixel distance), which shows whether the model makes new images or copies the data; and a droplet sheet
that puts the feature maps of two models side by side (StyleGAN's AdaIN against StyleGAN2's demodulation).

    python -m explorer.training.sheets --pkl assets/default.safetensors --data data/emoji64.npz --outdir docs
    python -m explorer.training.sheets --droplets assets/default_stylegan_adain.safetensors \
        assets/default.safetensors --outdir docs
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..formats import load_network
from ..latents import z_from_seed
from ..render import LayerViewRequest, RenderCache, RenderRequest, render

GAP = 2          # pixels between tiles
LABEL_LINE = 12  # pixels a line of Pillow's default font takes
FAMILY_NAMES = {"stylegan": "StyleGAN", "stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}


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


@dataclass(frozen=True)
class LayerPeak:
    """One layer of one render: its peak channel (where max |x| of the layer is), shown normalised to its own
    max |x|, and the layer's peak-to-mean ratio (max |x| / mean |x| over all its channels)."""
    layer: str
    peak_channel: int
    peak_to_mean: float
    image: np.ndarray          # uint8 [h, w, 3]


def layer_peaks(G, seed: int, layers: Sequence[str]) -> tuple[np.ndarray, list[LayerPeak]]:
    """The image of `seed` (psi 1, stored noise) and each layer's peak channel, as the explorer's layer view
    computes them (render() with a single-channel view)."""
    cache = RenderCache()
    peaks = []
    image = None
    for layer in layers:
        request = RenderRequest(network_key="sheet", seed_weights=((seed, 1.0),),
                                view=LayerViewRequest(layer=layer, mode="single"))
        found = render(G, request, cache)
        if not found.ok:
            raise ValueError(found.error)
        shown = render(G, replace(request, view=replace(request.view, first_channel=found.stats.peak_channel)),
                       cache)
        image = shown.image
        peaks.append(LayerPeak(layer, found.stats.peak_channel, found.stats.all.peak_to_mean, shown.layer_image))
    return image, peaks


def _upscaled(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.NEAREST))


def droplet_sheet(networks: Sequence[tuple[str, object]], seeds: Sequence[int], layers: Sequence[str],
                  tile_size: int = 128) -> tuple[Image.Image, list[list[list[LayerPeak]]]]:
    """A row per network and seed: the image, then each layer's peak channel (upscaled to tile_size), labelled
    with the layer's peak-to-mean ratio. A droplet is a spike that dominates its map: one bright blob with the
    rest flat grey, and a ratio of tens. Returns the sheet and the peaks ([network][seed][layer])."""
    font = ImageFont.load_default()
    label_height = LABEL_LINE * 2
    columns = 1 + len(layers)
    rows = len(networks) * len(seeds)
    sheet = Image.new("RGB", (columns * (tile_size + GAP) - GAP, rows * (tile_size + label_height + GAP) - GAP),
                      "white")
    draw = ImageDraw.Draw(sheet)
    found = []
    for n, (name, G) in enumerate(networks):
        found.append([])
        for s, seed in enumerate(seeds):
            image, peaks = layer_peaks(G, seed, layers)
            found[-1].append(peaks)
            top = (n * len(seeds) + s) * (tile_size + label_height + GAP)
            tiles = [(image, f"{name}", f"seed {seed}")]
            tiles += [(p.image, f"{p.layer} ch {p.peak_channel}", f"peak/mean {p.peak_to_mean:.1f}") for p in peaks]
            for c, (tile_image, line1, line2) in enumerate(tiles):
                left = c * (tile_size + GAP)
                draw.text((left + 2, top), line1, fill="black", font=font)
                draw.text((left + 2, top + LABEL_LINE), line2, fill="black", font=font)
                sheet.paste(Image.fromarray(_upscaled(tile_image, tile_size)), (left, top + label_height))
    return sheet, found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pkl")
    parser.add_argument("--data")
    parser.add_argument("--droplets", nargs=2, metavar=("FIRST", "SECOND"),
                        help="write droplets.png: the feature maps of two networks side by side")
    parser.add_argument("--layers", default="b16.conv1,b32.conv1,b64.conv1", help="layers of the droplet sheet")
    parser.add_argument("--seeds", default="0,1,2,3", help="seeds of the droplet sheet")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--psi", type=float, default=1.0)
    parser.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling of the sheets")
    parser.add_argument("--suffix", default="", help="added to the sheets' names: samples{suffix}.png, ...")
    args = parser.parse_args(argv)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if args.droplets:
        networks = []
        for path in args.droplets:
            loaded = load_network(path)
            family = loaded.generator.family
            networks.append((FAMILY_NAMES.get(family, family), loaded.generator))
        layers = args.layers.split(",")
        seeds = [int(seed) for seed in args.seeds.split(",")]
        sheet, peaks = droplet_sheet(networks, seeds, layers)
        sheet.save(outdir / "droplets.png")
        print(f"wrote {outdir / 'droplets.png'}; median peak/mean over seeds {args.seeds}:")
        for (name, _), per_seed in zip(networks, peaks):
            medians = [float(np.median([seed_peaks[i].peak_to_mean for seed_peaks in per_seed]))
                       for i in range(len(layers))]
            print(f"  {name:10s} " + "  ".join(f"{layer} {value:6.1f}" for layer, value in zip(layers, medians)))
        return 0
    if not (args.pkl and args.data):
        parser.error("--pkl and --data are needed for the sample sheets (or --droplets FIRST SECOND)")
    G = load_network(args.pkl).generator
    samples = render_seeds(G, range(32), args.psi)
    samples_path, nearest_path = outdir / f"samples{args.suffix}.png", outdir / f"nearest{args.suffix}.png"
    _save_scaled(tile(samples, 8), samples_path, args.scale)
    with np.load(args.data) as data:
        images = data["images"]
    picks = samples[:8]
    # Top row: 8 samples; under each, its nearest training image.
    _save_scaled(tile(np.concatenate([picks, images[nearest(picks, images)]]), 8), nearest_path, args.scale)
    print(f"wrote {samples_path} and {nearest_path}")
    return 0


def _save_scaled(sheet: np.ndarray, path: Path, scale: int):
    image = Image.fromarray(sheet)
    image.resize([side * scale for side in image.size], Image.NEAREST).save(path)

if __name__ == "__main__":
    raise SystemExit(main())
