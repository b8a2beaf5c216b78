"""StyleGAN2 training, as the StyleGAN2 paper describes it, small enough to run on a CPU.

    python -m explorer.training.trainer --data data/emoji64.npz --outdir runs/sg2 [--resume CKPT] [--kimg N]

- losses: non-saturating logistic; R1 on reals every 16 minibatches; path length regularisation every 4
  minibatches (both "lazy": their Adam hyperparameters are adjusted so that the regularised steps weigh what
  they would if taken every step);
- style-mixing regularisation with probability 0.9; an EMA generator (half-life in kimg with a ramp-up);
- x-flips of the data; adaptive augmentation (translation, brightness, contrast) whose probability follows
  the sign of D on reals toward a target of 0.6, since a few thousand images overfit D quickly.
A checkpoint holds everything the next step depends on (networks, optimisers, RNG states, counters), so a
run resumes bit-exactly.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..networks import build_generator
from ..networks.common import bfloat16_is_fast_on_cpu
from .discriminator import Discriminator
from .measures import measure_checkpoint


PRECISIONS = ("float32", "bfloat16")


def r1_gamma_heuristic(resolution: int, batch: int) -> float:
    """NVlabs' R1 weight for a resolution and batch size (stylegan2-ada's 'auto' configuration)."""
    return 0.0002 * resolution ** 2 / batch


@dataclass
class TrainingOptions:
    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2          # CIFAR-style: a short mapping suffices at this size and trains faster
    channel_base: int = 4096
    channel_max: int = 64
    batch: int = 16
    lr: float = 0.0025
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 0.05           # NVlabs' heuristic 0.0002 * res^2 / batch
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    ema_kimg: float = 5.0            # batch * 10 / 32 as NVlabs' auto config, in kimg
    ema_rampup: float = 0.05
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 100.0          # how fast p can move: from 0 to 1 over this many kimg
    augment: bool = True
    seed: int = 0
    family: str = "stylegan2"        # or "stylegan": the AdaIN generator, trained the same way for comparison
    # NVlabs clamps convolution outputs for float16 layers; float32 and bfloat16 share float32's range, so a run
    # in either needs no clamp (and the clamp and its gradient cost 15% of a CPU step).
    conv_clamp: float | None = 256
    # "bfloat16": the convolutions and matrix products of synthesis and D run under bfloat16 autocast, with
    # float32 weights, optimiser states, mapping network and losses (mixed precision). On CPUs with AMX or
    # AVX-512 BF16 a 3x3 convolution runs 4-6x faster than in float32 (measured with AMX).
    precision: str = "float32"

    def generator_kwargs(self) -> dict:
        if self.family == "stylegan":
            # The same channel budget in StyleGAN (2019)'s terms: nf(stage) = min(fmap_base / 2**stage, fmap_max).
            return dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=3,
                        mapping_kwargs=dict(num_layers=self.mapping_layers, layer_features=self.w_dim),
                        fmap_base=self.channel_base // 2, fmap_max=self.channel_max)
        return dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=3,
                    mapping_kwargs=dict(num_layers=self.mapping_layers), channel_base=self.channel_base,
                    channel_max=self.channel_max, num_fp16_res=0, conv_clamp=self.conv_clamp, architecture="skip")

    def discriminator_kwargs(self) -> dict:
        return dict(img_resolution=self.resolution, img_channels=3, channel_base=self.channel_base,
                    channel_max=self.channel_max, conv_clamp=self.conv_clamp, mbstd_group_size=4)


@dataclass
class Progress:
    nimg: int = 0                 # real images shown to D
    step: int = 0                 # minibatches done
    pl_mean: float = 0.0
    augment_p: float = 0.0
    ada_sign_sum: float = 0.0     # running sum of sign(D(real)) since the last p update
    ada_count: int = 0
    wall_seconds: float = 0.0     # training time over all sessions
    grown_at_nimg: int = 0        # images seen when the networks were last grown to a higher resolution (0: never)


def load_images(path: str) -> torch.Tensor:
    """uint8 [N, 3, H, W] from a dataset .npz (images: uint8 [N, H, W, 3])."""
    with np.load(path, allow_pickle=False) as data:
        images = data["images"]
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 images [N, H, W, 3], found {images.dtype} {list(images.shape)}")
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def augment(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Differentiable augmentations, each applied per sample with probability p (ADA's 'bgc'-like subset):
    integer translation by up to 1/8 of the size (reflected), brightness and contrast changes."""
    if p <= 0:
        return images
    n, _, h, w = images.shape
    device = images.device

    def chosen():
        return (torch.rand([n, 1, 1, 1], generator=generator) < p).to(device=device, dtype=images.dtype)

    shift = (torch.rand([n, 2], generator=generator) * 2 - 1) * 0.125
    apply = chosen()[:, :, 0, 0].cpu()       # the shifts are drawn and rounded on the CPU, then index on the device
    shift = (shift * apply).mul(torch.tensor([w, h])).round().long()
    pad = max(h, w) // 8
    padded = F.pad(images, [pad, pad, pad, pad], mode="reflect")
    rows = (torch.arange(h)[None, :] + pad - shift[:, 1:2]).to(device)
    cols = (torch.arange(w)[None, :] + pad - shift[:, 0:1]).to(device)
    images = padded[torch.arange(n, device=device)[:, None, None, None], torch.arange(3, device=device)[None, :, None, None],
                    rows[:, None, :, None], cols[:, None, None, :]]
    brightness = torch.randn([n, 1, 1, 1], generator=generator).to(device) * 0.2
    images = images + brightness * chosen()
    contrast = torch.exp2(torch.randn([n, 1, 1, 1], generator=generator) * 0.5).to(device)
    mean = images.mean(dim=[1, 2, 3], keepdim=True)
    c = chosen()
    images = (images - mean) * (contrast * c + (1 - c)) + mean
    return images


class Trainer:
    def __init__(self, options: TrainingOptions, images: torch.Tensor, device="cpu"):
        if options.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {options.precision!r}")
        self.options = options
        self.device = torch.device(device)
        self.images = images
        torch.manual_seed(options.seed)
        self.G = build_generator(options.family, options.generator_kwargs()).to(self.device).train()
        self.D = Discriminator(**options.discriminator_kwargs()).to(self.device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = self._adam(self.G, options.pl_interval)
        self.opt_D = self._adam(self.D, options.r1_interval)
        self.progress = Progress()
        self.rng = torch.Generator().manual_seed(options.seed + 1)   # data, latents, augmentation

    def _adam(self, net, interval):
        # Lazy regularisation: the optimiser takes the regularised step only every `interval` minibatches.
        ratio = interval / (interval + 1)
        betas = tuple(b ** ratio for b in self.options.betas)
        return torch.optim.Adam(net.parameters(), lr=self.options.lr * ratio, betas=betas, eps=1e-8)

    # -- data and latents ---------------------------------------------------------------------------------------

    def real_batch(self, batch):
        index = torch.randint(len(self.images), [batch], generator=self.rng)
        x = self.images[index].to(torch.float32) / 127.5 - 1
        flip = torch.rand([batch], generator=self.rng) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x.to(self.device)

    def latents(self, batch):
        return torch.randn([batch, self.options.z_dim], generator=self.rng).to(self.device)

    def generate(self, batch, update_emas=False):
        """Images and the ws they came from, with style mixing at a random layer for 90% of the batch."""
        G = self.G
        ws = G.mapping(self.latents(batch), None, update_emas=update_emas)
        if self.options.style_mixing_prob > 0:
            cutoff = int(torch.randint(1, G.num_ws, [], generator=self.rng))
            mix = (torch.rand([batch], generator=self.rng) < self.options.style_mixing_prob).to(self.device)
            cutoff_per_sample = torch.where(mix, cutoff, G.num_ws)
            layer = torch.arange(G.num_ws, device=self.device)[None, :]
            other = G.mapping(self.latents(batch), None)
            ws = torch.where((layer >= cutoff_per_sample[:, None])[:, :, None], other, ws)
        noise_seed = int(torch.randint(2 ** 31, [], generator=self.rng))
        with self.autocast():
            image = G.synthesis(ws, noise_mode="random", noise_seed=noise_seed, fused_modconv=False).image
        return image.float(), ws

    def discriminate(self, images):
        if self.options.augment:
            images = augment(images, self.progress.augment_p, self.rng)
        with self.autocast():
            logits = self.D(images)
        return logits.float()

    def autocast(self):
        """Mixed precision for the synthesis and D passes when the options ask for it (a no-op in float32)."""
        enabled = self.options.precision == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # -- one minibatch ------------------------------------------------------------------------------------------

    def step(self) -> dict[str, float]:
        o, p = self.options, self.progress
        stats = {}

        # G main: non-saturating logistic loss.
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        fake, _ = self.generate(o.batch, update_emas=True)
        loss_G = F.softplus(-self.discriminate(fake)).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self.opt_G.step()
        stats["loss_G"] = loss_G.item()

        # G regularisation: path length, every pl_interval minibatches.
        if o.pl_weight > 0 and p.step % o.pl_interval == 0:
            fake, ws = self.generate(max(o.batch // o.pl_batch_shrink, 1))
            noise = torch.randn(fake.shape, generator=self.rng).to(self.device) / math.sqrt(fake.shape[2] * fake.shape[3])
            (grads,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            p.pl_mean = p.pl_mean + (lengths.mean().item() - p.pl_mean) * o.pl_decay
            penalty = (lengths - p.pl_mean).square().mean()
            self.opt_G.zero_grad(set_to_none=True)
            (penalty * o.pl_weight * o.pl_interval).backward()
            self.opt_G.step()
            stats["pl_penalty"] = penalty.item()

        # D main.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake, _ = self.generate(o.batch)
        real = self.real_batch(o.batch)
        logits_fake = self.discriminate(fake)
        logits_real = self.discriminate(real)
        loss_D = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self.opt_D.step()
        stats["loss_D"] = loss_D.item()
        p.ada_sign_sum += logits_real.detach().sign().sum().item()
        p.ada_count += o.batch

        # D regularisation: R1 on reals, every r1_interval minibatches.
        if o.r1_gamma > 0 and p.step % o.r1_interval == 0:
            real = self.real_batch(o.batch).requires_grad_(True)
            (grads,) = torch.autograd.grad(self.discriminate(real).sum(), real, create_graph=True)
            penalty = grads.square().sum([1, 2, 3]).mean()
            self.opt_D.zero_grad(set_to_none=True)
            (penalty * (o.r1_gamma / 2) * o.r1_interval).backward()
            self.opt_D.step()
            stats["r1_penalty"] = penalty.item()

        p.nimg += o.batch
        p.step += 1
        self.update_ema()
        if o.augment and p.step % o.ada_interval == 0 and p.ada_count:
            rt = p.ada_sign_sum / p.ada_count
            adjust = np.sign(rt - o.ada_target) * p.ada_count / (o.ada_kimg * 1000)
            p.augment_p = float(min(max(p.augment_p + adjust, 0.0), 1.0))
            p.ada_sign_sum, p.ada_count = 0.0, 0
        stats["augment_p"] = p.augment_p
        return stats

    def update_ema(self):
        o = self.options
        ema_nimg = o.ema_kimg * 1000
        if o.ema_rampup:
            ema_nimg = min(ema_nimg, self.progress.nimg * o.ema_rampup)
        beta = 0.5 ** (o.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.detach().lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    # -- checkpoints ----------------------------------------------------------------------------------------------

    def state(self) -> dict:
        # On the CPU whatever device trained: a checkpoint written on a GPU must load on a machine without one.
        return _on_cpu({
            "options": asdict(self.options), "progress": asdict(self.progress),
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
        })

    def save(self, path: str | os.PathLike):
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        torch.save(self.state(), partial)
        os.replace(partial, path)   # never a half-written checkpoint under the real name

    @classmethod
    def resume(cls, path, images, device="cpu") -> "Trainer":
        state = torch.load(path, map_location="cpu", weights_only=True)
        trainer = cls(TrainingOptions(**_saved_options(state)), images, device)
        trainer.G.load_state_dict(state["G"])
        trainer.D.load_state_dict(state["D"])
        trainer.G_ema.load_state_dict(state["G_ema"])
        trainer.opt_G.load_state_dict(state["opt_G"])
        trainer.opt_D.load_state_dict(state["opt_D"])
        trainer.progress = Progress(**state["progress"])
        trainer.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        return trainer

    @classmethod
    def grow(cls, path, images, device="cpu") -> "Trainer":
        """Continue a checkpoint's run at the resolution of `images` (higher than the checkpoint's), as StyleGAN
        (2019) grew its networks: every layer the two resolutions share keeps its trained weights and Adam state,
        and the layers of the new resolution (G's new block and ToRGB, D's new first block) start from their
        initialisation. No fade-in: the shared layers adapt while the new ones learn.

        Why it exists: droplets come from instance normalisation in 64x64 and larger maps, and a 64 px AdaIN
        generator's only 64x64 layers are its last two, straight before a 1x1 ToRGB; growing the trained 64 px
        model to 128 px puts its 64x64 layers inside the network without training the rest again."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        old = _saved_options(state)
        resolution = images.shape[2]
        if resolution <= old["resolution"]:
            raise ValueError(f"growing needs images larger than the checkpoint's {old['resolution']} px, "
                             f"found {resolution} px")
        options = TrainingOptions(**dict(old, resolution=resolution,
                                         r1_gamma=r1_gamma_heuristic(resolution, old["batch"])))
        trainer = cls(options, images, device)
        # The saved Adam states are numbered in the order of the old networks' parameters.
        old_options = TrainingOptions(**old)
        old_names = {"G": [n for n, _ in build_generator(old_options.family, old_options.generator_kwargs())
                           .named_parameters()],
                     "D": [n for n, _ in Discriminator(**old_options.discriminator_kwargs()).named_parameters()]}
        for name, net, optimiser in (("G", trainer.G, trainer.opt_G), ("D", trainer.D, trainer.opt_D)):
            _load_matching(net, state[name])
            _load_matching_adam(optimiser, net, old_names[name], state["opt_" + name])
        _load_matching(trainer.G_ema, state["G_ema"])
        progress = dict(state["progress"])
        # The path length's running mean belongs to the old image size (its noise is scaled by 1/sqrt(pixels)):
        # start it again, as a new run does.
        trainer.progress = Progress(**dict(progress, pl_mean=0.0, grown_at_nimg=progress["nimg"]))
        trainer.rng.set_state(state["rng"])
        return trainer

    # -- samples and export -----------------------------------------------------------------------------------------

    def sample_grid(self, path, columns=8, rows=4):
        G = self.G_ema
        z = torch.from_numpy(np.stack([np.random.RandomState(seed).randn(G.z_dim) for seed in range(columns * rows)]))
        with torch.no_grad():
            images = G(z.float().to(self.device), None, noise_mode="const").image
        images = (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()
        _, c, h, w = images.shape
        grid = images.reshape(rows, columns, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, columns * w, c)
        from PIL import Image
        Image.fromarray(grid.numpy()).save(path)

    def export(self, path, overwrite=False):
        from ..formats.native import save_network
        o, p = self.options, self.progress
        extra = {"source": "trained by stylegan-explorer's trainer", "images_seen": p.nimg,
                 "training_hours": round(p.wall_seconds / 3600, 2), "options": asdict(o),
                 "notes": [f"EMA generator after {p.nimg:,} images ({p.wall_seconds / 3600:.1f} h)"]}
        generator = copy.deepcopy(self.G_ema).cpu()
        return save_network(generator, path, extra=extra, overwrite=overwrite)


def _on_cpu(value):
    """`value` (tensors, in dicts, lists and tuples) with every tensor on the CPU; the CPU's own are not copied."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value


def _saved_options(state: dict) -> dict:
    """A checkpoint's TrainingOptions fields (the checkpoint holds betas as a list)."""
    return dict(state["options"], betas=tuple(state["options"]["betas"]))


def _load_matching(net: torch.nn.Module, saved: dict) -> None:
    """Copy every saved parameter and buffer whose name and shape `net` shares."""
    own = net.state_dict()
    own.update({k: v for k, v in saved.items() if k in own and own[k].shape == v.shape})
    net.load_state_dict(own)


def _load_matching_adam(optimiser: torch.optim.Adam, net: torch.nn.Module, names_then: list[str], saved: dict):
    """Give each parameter that kept its trained weights its Adam moments too (Adam's first steps from a fresh
    state are full-size steps in every weight, which would shake the trained layers); new parameters start
    without a state. `names_then`: the old network's parameter names in the optimiser's order."""
    index_then = {name: i for i, name in enumerate(names_then)}
    own = optimiser.state_dict()
    own["state"] = {}
    for i, (name, parameter) in enumerate(net.named_parameters()):
        j = index_then.get(name)
        if j is not None and j in saved["state"] and saved["state"][j]["exp_avg"].shape == parameter.shape:
            own["state"][i] = saved["state"][j]
    optimiser.load_state_dict(own)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train a small StyleGAN2 (see the module docstring).")
    parser.add_argument("--data", required=True, help="dataset .npz (images uint8 [N, H, W, 3])")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--resume", help="checkpoint to continue from")
    parser.add_argument("--grow", metavar="CHECKPOINT",
                        help="continue this checkpoint's run at the (higher) resolution of --data: shared layers "
                             "keep their weights, the new resolution's layers start fresh")
    parser.add_argument("--kimg", type=float, default=1000, help="stop after this many thousand real images")
    parser.add_argument("--minutes", type=float,
                        help="also stop after this many minutes of wall time (a lent GPU machine's time is fixed)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpoint-minutes", type=float, default=10)
    parser.add_argument("--sample-minutes", type=float, default=10)
    parser.add_argument("--export-default", help="write the EMA generator of --resume to this file and exit")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--family", choices=["stylegan2", "stylegan"], default="stylegan2",
                        help="stylegan: the AdaIN generator (StyleGAN 2019), for comparing droplet artifacts")
    defaults = TrainingOptions()
    parser.add_argument("--channel-base", type=int, default=defaults.channel_base,
                        help="channels at resolution r: min(channel_base / r, channel_max)")
    parser.add_argument("--channel-max", type=int, default=defaults.channel_max)
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="bfloat16: mixed precision for synthesis and D (weights and losses stay float32); "
                             f"default {defaults.precision}, --resume and --grow keep the run's own unless given")
    parser.add_argument("--conv-clamp", type=float, default=defaults.conv_clamp,
                        help="clamp of convolution outputs; 0 for none "
                             "(float16 needs one, float32 and bfloat16 do not)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--no-measure", action="store_true",
                        help="do not measure the EMA generator at each checkpoint (quality and droplets, about a "
                             "minute at 64 px on 2 CPU threads, into OUTDIR/measures.jsonl)")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep a copy of every checkpoint as OUTDIR/checkpoint-NNNNNNNNN.pt (the images seen)")
    parser.add_argument("--pl-weight", type=float,
                        help=f"path length regularisation weight, 0 for none (StyleGAN 2019 had none); a new run's "
                             f"default is {defaults.pl_weight}, --resume and --grow keep the run's own unless given")
    args = parser.parse_args(argv)
    if args.resume and args.grow:
        parser.error("--resume and --grow exclude each other")
    if args.minutes is not None and not args.minutes > 0:       # also refuses nan
        parser.error(f"--minutes must be more than 0, not {args.minutes}")
    if args.pl_weight is not None and args.pl_weight < 0:
        parser.error(f"--pl-weight must be at least 0, not {args.pl_weight}")
    if args.threads:
        torch.set_num_threads(args.threads)

    images = load_images(args.data)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if args.resume:
        trainer = Trainer.resume(args.resume, images, args.device)
    elif args.grow:
        trainer = Trainer.grow(args.grow, images, args.device)
        print(f"grown from {trainer.progress.grown_at_nimg:,} images to {trainer.options.resolution} px", flush=True)
    else:
        options = TrainingOptions(resolution=images.shape[2], batch=args.batch, augment=not args.no_augment,
                                  r1_gamma=r1_gamma_heuristic(images.shape[2], args.batch), family=args.family,
                                  channel_base=args.channel_base, channel_max=args.channel_max,
                                  precision=args.precision or defaults.precision,
                                  conv_clamp=args.conv_clamp or None)
        trainer = Trainer(options, images, args.device)
    if args.pl_weight is not None and args.pl_weight != trainer.options.pl_weight:
        print(f"path length weight {trainer.options.pl_weight:g} -> {args.pl_weight:g} from image "
              f"{trainer.progress.nimg:,}", flush=True)
        trainer.options = replace(trainer.options, pl_weight=args.pl_weight)
    if args.export_default:
        trainer.export(args.export_default)
        print(f"wrote {args.export_default}")
        return 0

    # Not before an export: the exported file records the precision its weights were trained in.
    if args.precision is not None and args.precision != trainer.options.precision:
        # Weights, optimiser states and losses are float32 in both: only the passes' arithmetic changes.
        print(f"precision {trainer.options.precision} -> {args.precision} from image {trainer.progress.nimg:,}",
              flush=True)
        trainer.options = replace(trainer.options, precision=args.precision)
    if trainer.options.precision == "bfloat16" and trainer.device.type == "cpu" and not bfloat16_is_fast_on_cpu():
        print("note: this CPU has no bfloat16 units (AVX-512 BF16 or AMX): bfloat16 passes run emulated, slower "
              "than float32; --precision float32 continues the run in float32", flush=True)

    # Denormal floats (below 1e-38) take a slow path on x86 CPUs; a GAN's weights and activations never need them.
    torch.set_flush_denormal(True)
    stop = StopRequest.install()
    log = open(outdir / "log.jsonl", "a")

    # The run measures what it trains: the checkpoint it started from is not measured again.
    writer = CheckpointWriter(outdir, keep=args.keep_checkpoints, measure=not args.no_measure,
                              measured_nimg=trainer.progress.nimg)
    last_checkpoint = last_sample = last_report = time.time()
    window_start, window_nimg = time.time(), trainer.progress.nimg
    deadline = math.inf if args.minutes is None else time.time() + args.minutes * 60
    while trainer.progress.nimg < args.kimg * 1000 and not stop.requested and time.time() < deadline:
        start = time.time()
        stats = trainer.step()
        trainer.progress.wall_seconds += time.time() - start
        now = time.time()
        if now - last_report > 60:
            rate = (trainer.progress.nimg - window_nimg) / (now - window_start)
            record = dict(nimg=trainer.progress.nimg, images_per_s=round(rate, 2),
                          hours=round(trainer.progress.wall_seconds / 3600, 3), **{k: round(v, 4) for k, v in stats.items()})
            print(json.dumps(record), flush=True)
            log.write(json.dumps(record) + "\n")
            log.flush()
            last_report, window_start, window_nimg = now, now, trainer.progress.nimg
        if now - last_sample > args.sample_minutes * 60:
            trainer.sample_grid(outdir / f"samples-{trainer.progress.nimg // 1000:06d}k.png")
            last_sample = now
        if now - last_checkpoint > args.checkpoint_minutes * 60:
            measuring = writer.save(trainer, measure=True)
            last_checkpoint = time.time()
            # Measuring is not training: the rate and the report clock skip the time it took.
            window_start += measuring
            last_report += measuring
    timed_out = time.time() >= deadline and not stop.requested and trainer.progress.nimg < args.kimg * 1000
    # A stop by signal saves at once: measuring would keep the user waiting a minute after Ctrl-C.
    writer.save(trainer, measure=not stop.requested)
    trainer.sample_grid(outdir / f"samples-{trainer.progress.nimg // 1000:06d}k.png")
    if timed_out:
        print(f"stopped after {args.minutes:g} minutes at {trainer.progress.nimg} images", flush=True)
    if stop.requested:
        unmeasured = writer.measure and writer.measured_nimg != trainer.progress.nimg
        print(f"stopped by signal {stop.signal_number} at {trainer.progress.nimg} images; "
              f"resume with --resume {writer.path}" + (
                  "; this last checkpoint is not measured (python -m explorer.training.quality and "
                  "stylegan-explorer droplets measure it)" if unmeasured else ""), flush=True)
    return 0


@dataclass
class CheckpointWriter:
    """Writes a run's checkpoint, OUTDIR/checkpoint.pt (with `keep`, also a copy named by the images seen), and
    appends its measures (explorer.training.measures) to OUTDIR/measures.jsonl; each at most once per images
    seen, so that the run's end does not write or measure again what its last checkpoint did."""
    outdir: Path
    keep: bool = False
    measure: bool = True
    saved_nimg: int | None = None
    measured_nimg: int | None = None

    @property
    def path(self) -> Path:
        return self.outdir / "checkpoint.pt"

    def save(self, trainer: "Trainer", measure: bool) -> float:
        """Saves the trainer's state (unless saved at these images seen) and, when `measure` and the writer's
        own setting ask for it, measures the EMA generator; returns the seconds spent measuring."""
        nimg = trainer.progress.nimg
        if self.saved_nimg != nimg:
            trainer.save(self.path)
            self.saved_nimg = nimg
            if self.keep:
                shutil.copyfile(self.path, self.outdir / f"checkpoint-{nimg:09d}.pt")
        if not (measure and self.measure) or self.measured_nimg == nimg:
            return 0.0
        self.measured_nimg = nimg
        start = time.time()
        try:
            measures = measure_checkpoint(trainer.G_ema, trainer.images.permute(0, 2, 3, 1).cpu(), nimg,
                                          trainer.progress.wall_seconds / 3600)
        except (RuntimeError, ValueError, MemoryError) as error:
            # A measurement is a record, not the run: out of memory (say) costs the record, not the training.
            text = str(error).strip()
            print(f"measuring at {nimg:,} images failed ({text.splitlines()[0] if text else type(error).__name__}); "
                  f"the run goes on", flush=True)
            return time.time() - start
        print(measures.line(), flush=True)
        with open(self.outdir / "measures.jsonl", "a") as file:
            file.write(json.dumps(measures.as_json()) + "\n")
        return time.time() - start


@dataclass
class StopRequest:
    """Set by SIGINT or SIGTERM: the loop finishes its minibatch and saves a checkpoint before it exits, so
    stopping a run (Ctrl-C, kill) loses no training."""
    requested: bool = False
    signal_number: int | None = None

    def __call__(self, signal_number, _frame):
        self.requested, self.signal_number = True, signal_number

    @classmethod
    def install(cls) -> "StopRequest":
        import signal
        request = cls()
        signal.signal(signal.SIGINT, request)
        signal.signal(signal.SIGTERM, request)
        return request


if __name__ == "__main__":
    sys.exit(main())
