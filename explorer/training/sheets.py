"""Sheets that show what a trained model makes: a grid of seeds, and samples beside their nearest training
image (pixel distance), which shows whether the model makes new images or copies the data; and a droplet sheet
that puts the layers of two models side by side (StyleGAN's AdaIN against StyleGAN2's demodulation): per layer the
droplet detector's shared spot, the one spot where most of a layer's channels spike in a droplet.

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

from ..analysis.droplets import (SHARED_SPOT_SHARE, DropletAccumulator, DropletReport, measure_layer_maps,
                                 measured_layers, spot_channels, window_radius)
from ..analysis.latent import seed_ws
from ..formats import load_network
from ..render import LayerViewRequest, layer_view, to_uint8_rgb
from ..view import MARK_COLOUR
from .quality import sample_images

GAP = 2          # pixels between tiles
LABEL_LINE = 12  # pixels a line of Pillow's default font takes
LAYER_GAP = 8    # pixels between the layers of a droplet sheet's row
NETWORK_GAP = 10 # pixels between the droplet sheet's networks
STRIP_CHANNELS = 4
OUTLINE_WIDTH = 2     # pixels of the shared spot's outline on the energy map (1 on the channels' smaller tiles)
ENERGY_WHITE = 16.0  # the energy map shows white where a pixel holds 16 times its channels' mean energy
FAMILY_NAMES = {"stylegan": "StyleGAN (AdaIN)", "stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}


def render_seeds(G, seeds, psi=1.0) -> np.ndarray:
    """uint8 [N, H, W, 3] images for seeds: the samples the quality measure takes, as the explorer saves them."""
    return np.stack([to_uint8_rgb(image) for image in sample_images(G, list(seeds), psi=psi)])


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


def _upscaled(image: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.NEAREST))


@dataclass(frozen=True)
class SpotTile:
    """One layer of one seed on the droplet sheet: the detector's shared spot (explorer.analysis.droplets): where
    it is, the share of the layer's channels whose spiking peak lies in its window (of `radius`), whether that
    reaches SHARED_SPOT_SHARE (a droplet on this seed), the channels counted there (strongest first), and the tile
    drawn: the layer's energy map, upscaled, with the window outlined in MARK_COLOUR when it is a droplet."""
    layer: str
    seed: int
    y: int
    x: int
    radius: int
    share: float
    energy_share: float
    channels: int                       # the layer's channels that are not flat (the share's denominator)
    spot_channels: tuple[int, ...]
    tile: np.ndarray                    # uint8 [tile_size, tile_size, 3]

    @property
    def droplet(self) -> bool:
        return self.share >= SHARED_SPOT_SHARE


def energy_tile(energy: np.ndarray, size: int) -> np.ndarray:
    """A layer's energy map [h, w] (explorer.analysis.droplets.measure_layer_maps: 1 where a pixel holds its
    channels' mean energy) as uint8 [size, size, 3] grey: black at 1 and below, white at ENERGY_WHITE and above,
    on a log scale, the same for every layer and network so that their tiles compare."""
    level = np.log(np.maximum(energy, 1.0)) / np.log(ENERGY_WHITE)
    grey = (np.clip(level, 0, 1) * 255).round().astype(np.uint8)
    return _upscaled(np.repeat(grey[:, :, None], 3, axis=2), size)


def outline_spot(tile: np.ndarray, map_size: tuple[int, int], y: int, x: int, radius: int, width: int = 1
                 ) -> np.ndarray:
    """The tile (a map of map_size = (h, w) upscaled) with a square outline `width` pixels wide just outside the
    window of `radius` around map pixel (y, x), cut at the tile's edges."""
    marked = tile.copy()
    rows, columns = marked.shape[:2]
    scale_y, scale_x = rows / map_size[0], columns / map_size[1]
    top, bottom = int((y - radius) * scale_y) - width, int((y + radius + 1) * scale_y) + width
    left, right = int((x - radius) * scale_x) - width, int((x + radius + 1) * scale_x) + width
    outside = np.zeros([rows, columns], bool)
    outside[max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)] = True
    outside[max(top + width, 0):max(bottom - width, 0), max(left + width, 0):max(right - width, 0)] = False
    marked[outside] = MARK_COLOUR
    return marked


def channel_tile(activation: torch.Tensor, layer: str, channel: int, size: int) -> np.ndarray:
    """One channel of an activation [C, H, W] as the explorer's layer view shows it (normalised to its own max
    |x|, 0 mid grey), upscaled to size."""
    image, _, _ = layer_view(activation, LayerViewRequest(layer=layer, mode="single", first_channel=channel))
    return _upscaled(image, size)


def _wrapped(draw: ImageDraw.ImageDraw, text: str, width: float, font) -> list[str]:
    """text in lines no wider than width (a word wider than that gets a line of its own)."""
    lines = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def droplet_sheet(networks: Sequence[tuple[str, object]], seeds: Sequence[int], layers: Sequence[str],
                  tile_size: int = 128, psi: float = 1.0
                  ) -> tuple[Image.Image, list[list[list[SpotTile]]], list[DropletReport]]:
    """A row per network and seed: the image, then per layer its energy map with the detector's shared spot
    outlined when SHARED_SPOT_SHARE of the channels spike there (a droplet), labelled with that share, and the
    STRIP_CHANNELS channels counted at the spot, strongest first (each normalised to its own max |x|). The
    measures are the detector's (measure_layer_maps on the activations of seed_ws, the network's default
    truncation cutoff and the stored noise, as `stylegan-explorer droplets` takes them). Returns the sheet, the tiles ([network][seed][layer]) and each
    network's DropletReport over the seeds (its layers' median share and seeds reaching SHARED_SPOT_SHARE)."""
    font = ImageFont.load_default()
    small = tile_size // 2
    block = 2 * small + GAP                                   # the 2 x 2 channel tiles
    group = tile_size + GAP + block                           # a layer: its energy tile, then its channels
    label_height = 2 * LABEL_LINE
    row_height = label_height + block
    width = tile_size + len(layers) * (LAYER_GAP + group)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    caption = _wrapped(measure, f"Per layer: its energy map (each channel's energy over its mean, averaged over the "
                                f"channels; black 1x, white {ENERGY_WHITE:g}x, log scale), the shared spot outlined "
                                f"when at least {SHARED_SPOT_SHARE:.0%} of the channels spike there "
                                f"(a droplet), then the first {STRIP_CHANNELS} of those channels, each to its own "
                                f"max |x|.", width - 4, font)
    caption_height = len(caption) * LABEL_LINE + GAP
    height = (caption_height + len(networks) * len(seeds) * (row_height + GAP) + (len(networks) - 1) * NETWORK_GAP
              - GAP)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(caption):
        draw.text((2, i * LABEL_LINE), line, fill="black", font=font)
    tiles, reports = [], []
    top = caption_height
    for name, G in networks:
        infos = measured_layers(G, layers)
        accumulator = DropletAccumulator(infos)
        tiles.append([])
        device = G.mapping.w_avg.device
        cutoff = getattr(G, "default_truncation_cutoff", None)    # as the explorer's session truncates StyleGAN
        for seed in seeds:
            with torch.no_grad():
                out = G.synthesis(seed_ws(G, seed, psi, cutoff, None, device), noise_mode="const",
                                  capture=[info.name for info in infos])
            measures, row = {}, []
            draw.text((2, top), name, fill="black", font=font)
            draw.text((2, top + LABEL_LINE), f"seed {seed}", fill="black", font=font)
            sheet.paste(Image.fromarray(_upscaled(to_uint8_rgb(out.image[0]), tile_size)), (0, top + label_height))
            for i, info in enumerate(infos):
                activation = out.activations[info.name]
                spikes, spots, energy = measure_layer_maps(activation)
                measures[info.name] = (spikes, spots)
                radius = window_radius(info.height, info.width)
                found = SpotTile(info.name, seed, int(spots.y[0]), int(spots.x[0]), radius, float(spots.share[0]),
                                 float(spots.energy_share[0]), int(spots.channels[0]),
                                 tuple(int(c) for c in spot_channels(spikes, spots, radius)),
                                 energy_tile(energy[0], tile_size))
                size = (info.height, info.width)
                if found.droplet:
                    found = replace(found, tile=outline_spot(found.tile, size, found.y, found.x, radius,
                                                             OUTLINE_WIDTH))
                row.append(found)
                left = tile_size + LAYER_GAP + i * (LAYER_GAP + group)
                line = f"{info.name} {found.share:.0%} at one spot"
                draw.text((left + 2, top), line, fill="black", font=font)
                if found.droplet:
                    draw.text((left + 2 + draw.textlength(line + " ", font=font), top), "droplet", fill=MARK_COLOUR,
                              font=font)
                shown = found.spot_channels[:STRIP_CHANNELS]
                line = f"{len(found.spot_channels)} of {found.channels} channels there"
                if shown and draw.textlength(f"{line}; shown: {' '.join(map(str, shown))}", font=font) < group - 4:
                    line = f"{line}; shown: {' '.join(map(str, shown))}"
                draw.text((left + 2, top + LABEL_LINE), line, fill="black", font=font)
                sheet.paste(Image.fromarray(found.tile), (left, top + label_height))
                for k, channel in enumerate(shown):
                    tile_image = channel_tile(activation[0], info.name, channel, small)
                    if found.droplet:
                        tile_image = outline_spot(tile_image, size, found.y, found.x, radius)
                    sheet.paste(Image.fromarray(tile_image), (left + tile_size + GAP + (k % 2) * (small + GAP),
                                                              top + label_height + (k // 2) * (small + GAP)))
            accumulator.add_measures(seed, measures)
            tiles[-1].append(row)
            top += row_height + GAP
        reports.append(accumulator.report())
        top += NETWORK_GAP
    return sheet, tiles, reports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pkl")
    parser.add_argument("--data")
    parser.add_argument("--droplets", nargs=2, metavar=("FIRST", "SECOND"),
                        help="write droplets.png: the shared spots of two networks' layers side by side")
    parser.add_argument("--layers", default="b32.conv1,b64.conv0,b64.conv1", help="layers of the droplet sheet")
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
        try:
            sheet, _, reports = droplet_sheet(networks, seeds, layers, psi=args.psi)
        except ValueError as error:
            parser.error(str(error))
        path = outdir / "droplets.png"
        _save_scaled(np.asarray(sheet), path, args.scale)
        print(f"wrote {path}; per layer, the median share of its channels spiking at one spot over seeds "
              f"{args.seeds} and on how many seeds it reaches {SHARED_SPOT_SHARE:.0%}:")
        for (name, _), report in zip(networks, reports):
            for layer in report.layers:
                print(f"  {name:17s} {layer.layer:10s} {layer.shared_share:4.0%}  "
                      f"{layer.seeds} of {layer.seed_count} seeds{'  droplets' if layer.droplet else ''}")
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
