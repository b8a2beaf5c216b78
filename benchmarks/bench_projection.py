"""Projection on images the network itself generated, whose true w is known: the PSNR of the projection and
its distance to the true w, for each method, on the shipped default model (StyleGAN2, 64 px) and on a 256 px
StyleGAN2 with random weights (w_avg estimated from 10,000 z, as the loader does for files without one).

    python benchmarks/bench_projection.py [--steps 1000] [--images 4] [--psi 0.7] [--threads N]
                                          [--networks default random256] [--vgg16 vgg16.pth]
                                          [--discriminator-weights 0.1 1] [--methods NAME ...]
                                          [--targets own|stylegan]

Methods: W and W+ with the multi-scale pixel distance, W+ with the noise maps optimised too; where the network
has a discriminator, W and W+ with its block features added (one row per --discriminator-weights value); and,
with --vgg16, W and W+ with the LPIPS-style VGG16 distance added. The default model is read from its training
checkpoint (assets/training/stylegan2.pt: the same generator as assets/default.safetensors, and its D); the
random 256 px network has no discriminator. --targets stylegan projects images that the network did not make:
those of the AdaIN StyleGAN the project's trainer trained on the same data (assets/training/stylegan.pt, 64 px;
seeds 1000 on), which have no true w in the network (its column says n/a).

Prints a markdown table: the mean over the images of the PSNR (dB), of the distance to the true ws (mean over
layers of |w - w_true|, in units of w_std, the spread of w), of the edge energy (the mean absolute difference
of neighbouring pixels, in % of the target's: below 100 a blurred projection), and of the seconds per step; the
first row of each network is the starting point, w_avg.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.formats import load_network  # noqa: E402
from explorer.networks.stylegan2 import Generator  # noqa: E402
from explorer.projection import ProjectionSettings, load_vgg16, project, psnr  # noqa: E402
from explorer.projection.projector import estimate_w_std  # noqa: E402
from explorer.projection.target import pixels_to_tensor, tensor_to_pixels  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.safetensors"
DEFAULT_TRAINING_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "training" / "stylegan2.pt"
OTHER_GENERATOR = Path(__file__).resolve().parent.parent / "assets" / "training" / "stylegan.pt"
OTHER_SEEDS = 1000     # the other generator's targets start at this seed
# A 256 px StyleGAN2 small enough to project on a CPU: channel counts min(8192 / res, 256), 8 mapping layers.
RANDOM_256 = dict(z_dim=256, c_dim=0, w_dim=256, img_resolution=256, img_channels=3,
                  mapping_kwargs=dict(num_layers=8), channel_base=8192, channel_max=256, num_fp16_res=0,
                  conv_clamp=256, architecture="skip")
W_AVG_SAMPLES = 10_000
W_STD_SAMPLES = 10_000


@dataclass(frozen=True)
class Method:
    name: str
    w_plus: bool
    noise: bool
    vgg16: bool
    discriminator_weight: float = 0.0     # 0: the discriminator is not used


METHODS = (Method("W, pixel", False, False, False), Method("W+, pixel", True, False, False),
           Method("W+ and noise, pixel", True, True, False))
VGG_METHODS = (Method("W, pixel + VGG16", False, False, True), Method("W+, pixel + VGG16", True, False, True))


def discriminator_methods(weights) -> tuple[Method, ...]:
    return tuple(Method(f"{space}, pixel + D features x{weight:g}", w_plus, False, False, weight)
                 for weight in weights for space, w_plus in (("W", False), ("W+", True)))


def random_256(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    G = Generator(**RANDOM_256).eval().requires_grad_(False)
    with torch.no_grad():
        # Fresh networks start with zero noise strengths and a zero w_avg: give them values a trained network has.
        for name, tensor in G.named_parameters():
            if name.endswith("noise_strength"):
                tensor.fill_(0.05)
        z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=torch.Generator().manual_seed(seed))
        G.mapping.w_avg.copy_(G.mapping(z, None)[:, 0].mean(dim=0))
    return G


def networks(names):
    """(label, generator, discriminator or None) of each network named."""
    for name in names:
        if name == "default":
            if DEFAULT_TRAINING_CHECKPOINT.is_file():
                loaded = load_network(DEFAULT_TRAINING_CHECKPOINT)
                yield "default model (64 px)", loaded.generator.eval(), loaded.discriminator
            else:
                yield "default model (64 px)", load_network(DEFAULT_MODEL).generator.eval(), None
        elif name == "random256":
            yield "random weights (256 px)", random_256(), None
        else:
            raise SystemExit(f"unknown network {name!r}; choose default or random256")


def w_distance(ws: np.ndarray, true_ws: np.ndarray | None, w_std: float) -> float | None:
    if true_ws is None:
        return None
    return float(np.linalg.norm(ws - true_ws, axis=1).mean() / w_std)


def edge_energy(pixels: np.ndarray) -> float:
    """Mean absolute difference of horizontally and vertically neighbouring values of a uint8 [H, W, C] image."""
    image = pixels.astype(np.float64)
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def mean_or_na(values) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.mean(known):.3f}" if known else "n/a"


def own_targets(G, count: int, psi: float) -> list:
    """(true ws, uint8 image) of images G made."""
    targets = []
    for seed in range(count):
        z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            true_ws = G.mapping(z, None, truncation_psi=psi)
            targets.append((true_ws[0].numpy(), tensor_to_pixels(G.synthesis(true_ws).image)))
    return targets


def other_targets(G, count: int, psi: float) -> list:
    """(None, uint8 image) of images the AdaIN StyleGAN made, at G's size."""
    other = load_network(OTHER_GENERATOR).generator.eval()
    if tuple(other.img_shape) != tuple(G.img_shape):
        raise SystemExit(f"--targets stylegan makes {other.img_shape} images; this network makes {G.img_shape}")
    targets = []
    for seed in range(OTHER_SEEDS, OTHER_SEEDS + count):
        z = torch.randn([1, other.z_dim], generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            targets.append((None, tensor_to_pixels(other(z, None, truncation_psi=psi, noise_mode="const").image)))
    return targets


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--psi", type=float, default=0.7, help="truncation of the generated targets")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--networks", nargs="+", default=["default", "random256"])
    parser.add_argument("--vgg16", default=None, help="torchvision VGG16 state dict, for the VGG16 methods")
    parser.add_argument("--discriminator-weights", type=float, nargs="+",
                        default=[ProjectionSettings.discriminator_weight],
                        help="weights of the discriminator-feature distance to compare")
    parser.add_argument("--methods", nargs="+", default=None, help="only the methods of these names")
    parser.add_argument("--targets", choices=("own", "stylegan"), default="own",
                        help="images the network made (own) or the AdaIN StyleGAN's, which it did not make")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    vgg16 = load_vgg16(args.vgg16) if args.vgg16 else None

    print(f"{args.steps} steps, {args.images} images at psi {args.psi}, {torch.get_num_threads()} threads\n")
    print("| network | method | PSNR (dB) | distance to true w (w_std) | edge energy (% of target) | s / step |")
    print("|---|---|---|---|---|---|")
    for label, G, D in networks(args.networks):
        methods = METHODS + (discriminator_methods(args.discriminator_weights) if D is not None else ()) + \
            (VGG_METHODS if vgg16 is not None else ())
        if args.methods:
            methods = tuple(m for m in methods if m.name in args.methods)
        w_std = estimate_w_std(G, W_STD_SAMPLES, torch.Generator().manual_seed(1), "cpu")
        targets = own_targets(G, args.images, args.psi) if args.targets == "own" else \
            other_targets(G, args.images, args.psi)
        start_ws = G.mapping.w_avg.expand(G.num_ws, -1)
        with torch.no_grad():
            start_image = G.synthesis(start_ws[None]).image
        start_psnr = [psnr(start_image, pixels_to_tensor(pixels, "cpu")) for _, pixels in targets]
        start_distance = [w_distance(start_ws.numpy(), true_ws, w_std) for true_ws, _ in targets]
        start_edges = [100 * edge_energy(tensor_to_pixels(start_image)) / edge_energy(pixels) for _, pixels in targets]
        print(f"| {label} | start (w_avg) | {statistics.mean(start_psnr):.2f} | "
              f"{mean_or_na(start_distance)} | {statistics.mean(start_edges):.0f} | |", flush=True)
        for method in methods:
            psnrs, distances, edges, seconds = [], [], [], []
            for seed, (true_ws, pixels) in enumerate(targets):
                settings = ProjectionSettings(steps=args.steps, w_plus=method.w_plus, optimize_noise=method.noise,
                                              seed=seed, discriminator_weight=method.discriminator_weight)
                stamps = []
                result = project(G, pixels, settings, vgg16=vgg16 if method.vgg16 else None,
                                 on_step=lambda _: stamps.append(time.perf_counter()),
                                 discriminator=D if method.discriminator_weight else None)
                if len(stamps) > 1:     # steps only: the set-up (w_std from 10,000 z) is left out
                    seconds.append((stamps[-1] - stamps[0]) / (len(stamps) - 1))
                psnrs.append(result.psnr)
                distances.append(w_distance(result.ws, true_ws, w_std))
                edges.append(100 * edge_energy(result.image) / edge_energy(pixels))
            print(f"| {label} | {method.name} | {statistics.mean(psnrs):.2f} | {mean_or_na(distances)} | "
                  f"{statistics.mean(edges):.0f} | "
                  f"{statistics.mean(seconds) if seconds else float('nan'):.3f} |", flush=True)


if __name__ == "__main__":
    main()
