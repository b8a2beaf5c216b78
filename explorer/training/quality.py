"""How good a generator is, as numbers that need no download: improved precision and recall (Kynkäänniemi et
al. 2019) and KID (Bińkowski et al. 2018), both on small pixel features instead of Inception features.

    python -m explorer.training.quality --data data/emoji64.npz assets/training/stylegan2.pt [FILE ...] \
        [--count N] [--json]

Features: every image, a dataset's uint8 [H, W, 3] or a generator's float [3, H, W] in [-1, 1] (first quantised
to uint8 exactly as the explorer saves images), is area-downsampled to 32x32 RGB and read as 3072 values in
[0, 1]. Pixel features see colour, layout and blur, not semantics, so the numbers compare runs of one dataset
with each other, not with published FID or KID values.

- precision: the share of samples inside the k-NN ball (k = 3) of some real image: are the samples realistic?
- recall: the share of real images inside the k-NN ball of some sample: does the generator cover the data?
- KID: the unbiased MMD² between samples and reals under the kernel (x·y/d + 1)^3, averaged over seeded random
  subsets; 0 for one distribution, reported x 1000.

The command prints one Markdown row per file and first a row "data vs data" between two seeded halves of the
real images: the best a generator can score, so that a reader knows the scale. The halves are half the size of
the sets a file is measured with, and k-NN balls shrink as a set grows, so the ceiling is a guide, not a bound.
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis.latent import seed_ws
from ..formats import NetworkLoadError, load_network
from ..formats.torch_checkpoint import read_torch_checkpoint
from ..render import to_uint8_rgb

FEATURE_SIZE = 32              # features are 32x32 RGB: 3072 values
NEIGHBOURS = 3                 # k of the k-NN radii, as in the paper
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000
CHUNK_VALUES = 4096 * 4096     # at most this many distances are held at once (64 MB of float32)
SAMPLE_BATCH = 64
EXIT_BAD_INPUT = 2


class QualityInputError(Exception):
    """Input the measurement cannot use (a missing file, a file that is not a network, a data file without
    images); the command prints it on one line and exits with EXIT_BAD_INPUT."""


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    kid: float        # the unbiased MMD², not scaled; tables show kid * 1000
    samples: int
    reals: int


# ---------------------------------------------------------------------------------------------------------------
# Features.

def image_features(images) -> torch.Tensor:
    """float32 [N, 3072] in [0, 1] from uint8 images [N, H, W, 3] (numpy or torch) or from a generator's float
    output [N, C, H, W] in about [-1, 1]. The float output is first turned into the uint8 pixels the explorer
    saves (render.to_uint8_rgb), so samples and data go through the same quantisation."""
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()     # torch refuses to share a read-only array (one read from a PNG, say)
    images = torch.as_tensor(images)
    if images.is_floating_point():
        images = torch.stack([torch.from_numpy(to_uint8_rgb(image.detach().float())) for image in images])
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[3] != 3:
        raise ValueError(f"expected uint8 images [N, H, W, 3] or float images [N, C, H, W], found {images.dtype} "
                         f"{list(images.shape)}")
    pixels = images.permute(0, 3, 1, 2).to(torch.float32)
    # "area" averages each output pixel's footprint: a 2x2 mean at 64 px, exact in float32 for whole numbers.
    small = F.interpolate(pixels, size=(FEATURE_SIZE, FEATURE_SIZE), mode="area")
    return (small / 255).reshape(len(images), -1)


def sample_images(G, seeds: Sequence[int], batch: int = SAMPLE_BATCH, psi: float = 1.0) -> torch.Tensor:
    """float [N, C, H, W]: the generator's output for seeds with its stored (constant) noise, z from
    numpy.random.RandomState(seed) as the explorer draws it, truncated by psi as the network's own mapping does
    (StyleGAN 2019 networks over their first default_truncation_cutoff ws, others over all)."""
    device = G.mapping.w_avg.device
    cutoff = getattr(G, "default_truncation_cutoff", None)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(seeds), batch):
            ws = torch.cat([seed_ws(G, seed, psi, cutoff, device=device) for seed in seeds[start:start + batch]])
            outputs.append(G.synthesis(ws, noise_mode="const").image.float().cpu())
    return torch.cat(outputs)


def sample_features(G, seeds: Sequence[int], batch: int = SAMPLE_BATCH) -> torch.Tensor:
    """image_features of the samples, made a batch at a time so that only the features are held."""
    return torch.cat([image_features(sample_images(G, seeds[start:start + batch], batch))
                      for start in range(0, len(seeds), batch)])


# ---------------------------------------------------------------------------------------------------------------
# Improved precision and recall.

def _distance_chunks(rows: torch.Tensor, columns: torch.Tensor):
    """(first row, distances [chunk, len(columns)]) over `rows`, a chunk at a time so memory stays bounded."""
    step = max(1, CHUNK_VALUES // max(1, len(columns)))
    for start in range(0, len(rows), step):
        yield start, torch.cdist(rows[start:start + step], columns)


def knn_radii(features: torch.Tensor, k: int = NEIGHBOURS) -> torch.Tensor:
    """[N]: each point's distance to its k-th nearest neighbour in the same set, the point itself excluded."""
    if len(features) <= k:
        raise ValueError(f"k-NN radii with k = {k} need more than {k} points, got {len(features)}")
    radii = torch.empty(len(features))
    for start, distances in _distance_chunks(features, features):
        own = torch.arange(len(distances))
        distances[own, start + own] = float("inf")
        radii[start:start + len(distances)] = distances.topk(k, dim=1, largest=False).values[:, -1]
    return radii


def share_inside_balls(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """The share of `points` within distance radii[j] of some centres[j]."""
    inside = torch.zeros(len(points), dtype=torch.bool)
    for start, distances in _distance_chunks(points, centres):
        inside[start:start + len(distances)] = (distances <= radii[None]).any(dim=1)
    return inside.float().mean().item()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = NEIGHBOURS) -> tuple[float, float]:
    """(precision, recall) of feature sets [N, D]: precision is the share of fakes inside some real's k-NN ball,
    recall the share of reals inside some fake's k-NN ball."""
    # Distances come from |a|² + |b|² - 2 a·b; centring shrinks the norms, and with them float32's cancellation.
    centre = real.mean(dim=0, keepdim=True)
    real, fake = real - centre, fake - centre
    precision = share_inside_balls(fake, real, knn_radii(real, k))
    recall = share_inside_balls(real, fake, knn_radii(fake, k))
    return precision, recall


# ---------------------------------------------------------------------------------------------------------------
# KID.

def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(x·y / d + 1)^3 for every pair of rows: KID's kernel, with d the feature length."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimate of MMD² between sets [m, d] and [n, d]: the kernel's mean over distinct pairs
    within x and within y (the diagonal left out), minus twice its mean over pairs across."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = (polynomial_kernel(a, b).double() for a, b in ((x, x), (y, y), (x, y)))
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return (within_x + within_y - 2 * k_xy.mean()).item()


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> float:
    """KID: mmd2_unbiased averaged over `subsets` pairs of random subsets (without replacement within each) of
    min(subset_size, both set sizes) points, drawn from numpy.random.RandomState(seed)."""
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 points in each set, got {len(real)} and {len(fake)}")
    draw = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        real_subset = torch.from_numpy(draw.choice(len(real), size, replace=False))
        fake_subset = torch.from_numpy(draw.choice(len(fake), size, replace=False))
        values.append(mmd2_unbiased(real[real_subset], fake[fake_subset]))
    return float(np.mean(values))


# ---------------------------------------------------------------------------------------------------------------
# Measurements.

def compare_features(real: torch.Tensor, fake: torch.Tensor) -> Quality:
    precision, recall = precision_recall(real, fake)
    return Quality(precision, recall, kid(real, fake), samples=len(fake), reals=len(real))


def evaluate(G, real_images, count: int | None = None, seed_start: int = 0, batch: int = SAMPLE_BATCH) -> Quality:
    """The quality of generator G against uint8 real images [N, H, W, 3]: `count` samples (default: as many as
    there are real images) from seeds seed_start, seed_start + 1, ..., at psi 1 with constant noise."""
    count = len(real_images) if count is None else count
    fake = sample_features(G, range(seed_start, seed_start + count), batch)
    return compare_features(image_features(real_images), fake)


def data_ceiling(real_images, seed: int = 0) -> Quality:
    """The quality of one seeded half of the real images measured against the other half."""
    order = np.random.RandomState(seed).permutation(len(real_images))
    half = len(real_images) // 2
    features = image_features(real_images)
    return compare_features(features[torch.from_numpy(order[:half])],
                            features[torch.from_numpy(order[half:2 * half])])


# ---------------------------------------------------------------------------------------------------------------
# Files.

def read_real_images(path: str | Path) -> np.ndarray:
    """uint8 [N, H, W, 3] from a dataset .npz's `images`; QualityInputError (one line) for anything else."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise QualityInputError(f"{path}: not a dataset .npz (a single array, not a table of them)")
        with data:
            if "images" not in data.files:
                raise QualityInputError(f"{path}: not a dataset .npz: it has no array 'images'")
            images = data["images"]
    except OSError as error:   # missing, a folder, no permission
        raise QualityInputError(f"{path}: cannot read it ({error.strerror or error})") from None
    # Empty, a damaged zip, not an .npz at all (numpy then takes it for a pickle), an array of objects.
    except (EOFError, zipfile.BadZipFile, ValueError):
        raise QualityInputError(f"{path}: not a dataset .npz (uint8 images [N, H, W, 3] under 'images')") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise QualityInputError(f"{path}: expected images uint8 [N, H, W, 3], found {images.dtype} "
                                f"{list(images.shape)}")
    if len(images) < 2 * (NEIGHBOURS + 1):
        raise QualityInputError(f"{path}: {len(images)} images are too few (two halves of more than "
                                f"{NEIGHBOURS} each are needed)")
    return images


def images_seen(path: str | Path, network_format: str) -> int | None:
    """The images a trainer checkpoint had seen (its progress.nimg), None for other files. The file is read again
    by the project's bounded unpickler, which builds only tensors and plain values: no code from it runs."""
    if network_format != "training-checkpoint":
        return None
    progress = read_torch_checkpoint(Path(path).read_bytes()).get("progress")
    seen = progress.get("nimg") if isinstance(progress, dict) else None
    return seen if isinstance(seen, int) and not isinstance(seen, bool) else None


def open_generator(path: str, device: str):
    try:
        loaded = load_network(path, device=device)
    except NetworkLoadError as error:
        message = str(error)
        raise QualityInputError(message if path in message else f"{path}: {message}") from None
    return loaded.generator.eval(), images_seen(path, loaded.format)


@dataclass(frozen=True)
class Row:
    file: str
    images_seen: int | None
    quality: Quality

    def as_json(self) -> dict:
        quality = asdict(self.quality)
        quality["kid_x1000"] = quality.pop("kid") * 1000
        return {"file": self.file, "images_seen": self.images_seen, **quality}

    def as_markdown(self) -> str:
        seen = "-" if self.images_seen is None else f"{self.images_seen:,}"
        q = self.quality
        return f"| {self.file} | {seen} | {q.precision:.3f} | {q.recall:.3f} | {q.kid * 1000:.3f} |"


TABLE_HEAD = "| file | images seen | precision | recall | KID x 1000 |\n|---|---|---|---|---|"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.training.quality",
                                     description="Precision, recall and KID of network files against a dataset "
                                                 "(see the module docstring).")
    parser.add_argument("--data", required=True, help="dataset .npz (images uint8 [N, H, W, 3])")
    parser.add_argument("files", nargs="+", metavar="FILE", help="network files (any the explorer loads, and the "
                                                                 "trainer's checkpoints)")
    parser.add_argument("--count", type=int, help="samples per file (default: as many as the real images)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a Markdown table")
    parser.add_argument("--device", default="cpu", help="where the generators run (cpu, cuda)")
    args = parser.parse_args(argv)
    try:
        if args.count is not None and args.count <= NEIGHBOURS:
            raise QualityInputError(f"--count: {args.count} samples are too few (more than {NEIGHBOURS} needed)")
        real_images = read_real_images(args.data)
        # Every file is opened before anything is measured: a bad one fails in seconds, not after the others.
        generators = [open_generator(path, args.device) for path in args.files]
    except QualityInputError as error:
        print(f"quality: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    half = len(real_images) // 2
    rows = [Row(f"data vs data (2 x {half:,})", None, data_ceiling(real_images))]
    if not args.json:
        print(TABLE_HEAD)
        print(rows[0].as_markdown(), flush=True)
    for path, (G, seen) in zip(args.files, generators):
        rows.append(Row(path, seen, evaluate(G, real_images, args.count)))
        if not args.json:
            print(rows[-1].as_markdown(), flush=True)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
