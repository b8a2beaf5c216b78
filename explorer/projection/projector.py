"""The projection itself (StyleGAN2 paper, section 5): find the latent whose image matches a target.

- The latent starts at w_avg: one w for every layer (W), or one per layer (W+, `w_plus`).
- Each step synthesises the image of the latent plus Gaussian noise, whose size starts at `initial_w_noise` of
  the spread of w (w_std, estimated from the mapping of random z) and falls quadratically to zero at
  `w_noise_ramp` of the run: it makes the early steps explore instead of settling in the nearest local minimum.
- The learning rate rises linearly over the first `lr_rampup` of the run and falls as half a cosine over the
  last `lr_rampdown`; Adam.
- With `optimize_noise`, the network's per-layer noise maps are optimised too (starting from the network's own
  stored maps), kept at zero mean and unit variance after each step, and held to white noise by the paper's
  regulariser. Without it the stored maps (noise mode const) are used, so the saved ws alone give the image.
- After each step the latent itself (no exploration noise) is rendered and measured; the best one so far by
  that distance is kept, and stopping at any moment (`should_stop`) returns it.

The network given is never changed: the projection works on a copy of its synthesis (and of the discriminator,
unless that is already frozen and on the generator's device, as loaders give it).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .errors import ProjectionError
from .losses import ProjectionDistance, discriminator_misfit, noise_regularization, psnr
from .target import pixels_to_tensor, tensor_to_pixels
from .vgg16 import VGG16Features

NOISE_BUFFER = "noise_const"      # the stored noise map of a layer, in every family that has noise
W_STD_BATCH = 1000                # z drawn per mapping call while estimating w_std


@dataclass(frozen=True)
class ProjectionSettings:
    """The optimisation's knobs; the defaults are those of the paper's projector."""
    steps: int = 1000
    w_plus: bool = False
    optimize_noise: bool = False
    seed: int = 0
    learning_rate: float = 0.1
    lr_rampup: float = 0.05            # fraction of the run over which the learning rate rises from 0
    lr_rampdown: float = 0.25          # fraction of the run at the end over which it falls back to 0
    initial_w_noise: float = 0.05      # exploration noise on w at the start, in units of w_std
    w_noise_ramp: float = 0.75         # fraction of the run after which there is no exploration noise
    noise_weight: float = 1e5          # weight of the noise regularisation
    pixel_weight: float = 1.0
    perceptual_weight: float = 1.0
    # Weight of the discriminator-feature distance, when a D is given: small, since larger weights cost more PSNR
    # for little more sharpness (measured in losses.py's docstring, benchmarks/bench_projection.py).
    discriminator_weight: float = 0.1
    w_std_samples: int = 10_000

    def __post_init__(self):
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ProjectionError(f"steps must be a whole number of at least 1, not {self.steps}")
        for name in ("learning_rate", "lr_rampup", "lr_rampdown", "initial_w_noise", "w_noise_ramp",
                     "noise_weight", "pixel_weight", "perceptual_weight", "discriminator_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ProjectionError(f"{name} must be a finite number of at least 0, not {value}")
        if self.lr_rampup <= 0 or self.lr_rampdown <= 0 or self.w_noise_ramp <= 0:
            raise ProjectionError("the ramp lengths must be above 0")
        if self.w_std_samples < 2:
            raise ProjectionError("w_std needs at least 2 samples")

    def learning_rate_at(self, t: float) -> float:
        """The learning rate at fraction t of the run."""
        fall = min(1.0, (1.0 - t) / self.lr_rampdown)
        rise = min(1.0, t / self.lr_rampup)
        return self.learning_rate * (0.5 - 0.5 * math.cos(fall * math.pi)) * rise

    def w_noise_at(self, t: float) -> float:
        """The exploration noise on w at fraction t of the run, in units of w_std."""
        return self.initial_w_noise * max(0.0, 1.0 - t / self.w_noise_ramp) ** 2


@dataclass(frozen=True)
class ProjectionStep:
    """One step's numbers. `loss` is what was minimised (with the exploration noise on w); `distance` and `psnr`
    are of the latent itself after the step, the numbers the best result is chosen by."""
    step: int                    # 1-based
    loss: float
    pixel: float
    perceptual: float | None
    noise_penalty: float
    learning_rate: float
    distance: float
    psnr: float
    discriminator_features: float | None = None    # the discriminator-feature term, when a D is used


@dataclass(frozen=True)
class ProjectionProgress:
    """What a progress callback gets after each step: the numbers and the current image (uint8 [H, W, C])."""
    step: ProjectionStep
    steps: int
    image: np.ndarray
    best_step: int
    best_psnr: float


@dataclass(frozen=True)
class ProjectionResult:
    ws: np.ndarray                          # [num_ws, w_dim] float32 of the best step
    image: np.ndarray                       # uint8 [H, W, C] of the best step
    target: np.ndarray                      # uint8 [H, W, C], what was projected
    best_step: int                          # 0: the starting point (w_avg) was never beaten
    distance: float
    psnr: float
    history: tuple[ProjectionStep, ...]
    stopped: bool                           # stopped before the last step
    noise: dict[str, np.ndarray] = field(default_factory=dict)   # G state-dict name -> optimised noise map


def estimate_w_std(G, samples: int, generator: torch.Generator, device) -> float:
    """sqrt(E ||w - w_avg||^2) over the mapping of random z (random classes for a conditional network)."""
    w_avg = G.mapping.w_avg.detach().to(device=device, dtype=torch.float32)
    total, counted = 0.0, 0
    with torch.no_grad():
        while counted < samples:
            batch = min(W_STD_BATCH, samples - counted)
            z = torch.randn([batch, G.z_dim], generator=generator).to(device)
            c = None
            if G.c_dim:
                c = torch.zeros([batch, G.c_dim])
                c[torch.arange(batch), torch.randint(G.c_dim, [batch], generator=generator)] = 1
                c = c.to(device)
            w = G.mapping(z, c)[:, 0].float()
            total += float((w - w_avg).square().sum())
            counted += batch
    return math.sqrt(total / counted)


class _Synthesis:
    """The copy of the synthesis that the projection differentiates, with its noise maps as optimisable
    tensors when asked."""

    def __init__(self, G, optimize_noise: bool, device):
        self.module = copy.deepcopy(G.synthesis).to(device).eval().requires_grad_(False)
        self.noise: dict[str, torch.Tensor] = {}
        if optimize_noise:
            for module_name, owner in self.module.named_modules():
                stored = owner._buffers.get(NOISE_BUFFER)
                if stored is None:
                    continue
                start = stored.detach().float().clone()
                start = ((start - start.mean()) / start.std()).requires_grad_(True)
                owner.register_buffer(NOISE_BUFFER, start)
                # Named as in the generator's state dict, so a map can be put back with load_state_dict.
                self.noise[f"synthesis.{module_name}.{NOISE_BUFFER}"] = start

    def __call__(self, ws: torch.Tensor) -> torch.Tensor:
        return self.module(ws, noise_mode="const").image

    def normalize_noise(self) -> None:
        with torch.no_grad():
            for noise in self.noise.values():
                noise.sub_(noise.mean()).div_(noise.std())


def project(G, target_pixels: np.ndarray, settings: ProjectionSettings = ProjectionSettings(),
            vgg16: VGG16Features | None = None, on_step: Callable[[ProjectionProgress], None] | None = None,
            should_stop: Callable[[], bool] | None = None,
            discriminator: torch.nn.Module | None = None) -> ProjectionResult:
    """Project uint8 [H, W, C] `target_pixels` (already at the network's size: target.load_target) into G's
    latent space. `on_step` is called after every step; `should_stop` is asked before every step, and when it
    says True the best result so far is returned (result.stopped). `discriminator`: the network file's own D
    (LoadedNetwork.discriminator), whose block features are then compared too (losses.py says what each term
    gives); ProjectionError when it does not take the generator's images."""
    device = G.mapping.w_avg.device
    generator = torch.Generator().manual_seed(settings.seed)
    synthesis = _Synthesis(G, settings.optimize_noise, device)
    w_avg = G.mapping.w_avg.detach().to(device=device, dtype=torch.float32)
    start = w_avg.reshape(1, 1, -1).repeat([1, G.num_ws if settings.w_plus else 1, 1])
    w_opt = start.clone().requires_grad_(True)

    def all_ws(w):
        return w if settings.w_plus else w.expand(-1, G.num_ws, -1)

    with torch.no_grad():
        first = synthesis(all_ws(w_opt))
    if first.shape[1] != target_pixels.shape[2] or tuple(first.shape[2:]) != tuple(target_pixels.shape[:2]):
        raise ProjectionError(f"the target is {list(target_pixels.shape)} (H, W, C) but the network makes "
                              f"{list(first.shape[1:])} (C, H, W) images")
    if discriminator is not None:
        misfit = discriminator_misfit(discriminator, tuple(first.shape[2:]), first.shape[1])
        if misfit is not None:
            raise ProjectionError(f"the discriminator cannot measure this network's images: {misfit}")
        discriminator = _frozen_on(discriminator, device)
    target = pixels_to_tensor(target_pixels, device)
    distance_of = ProjectionDistance(target, vgg16.to(device) if vgg16 is not None else None,
                                     settings.pixel_weight, settings.perceptual_weight, discriminator,
                                     settings.discriminator_weight).to(device)
    w_std = estimate_w_std(G, settings.w_std_samples, generator, device)
    optimizer = torch.optim.Adam([w_opt, *synthesis.noise.values()], betas=(0.9, 0.999), lr=settings.learning_rate)

    with torch.no_grad():
        best_distance = float(distance_of(first).distance)
    best = _Best(w_opt.detach().clone(), first.detach(), best_distance, psnr(first, target), 0, synthesis.noise)
    history: list[ProjectionStep] = []
    stopped = False
    for index in range(settings.steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        t = index / settings.steps
        learning_rate = settings.learning_rate_at(t)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        exploration = torch.randn(w_opt.shape, generator=generator).to(device) * (w_std * settings.w_noise_at(t))
        image = synthesis(all_ws(w_opt + exploration))
        terms = distance_of(image)
        penalty = noise_regularization(list(synthesis.noise.values())) if synthesis.noise else \
            terms.distance.new_zeros(())
        loss = terms.distance + settings.noise_weight * penalty
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synthesis.normalize_noise()

        with torch.no_grad():
            current = synthesis(all_ws(w_opt))
            current_distance = float(distance_of(current).distance)
        step = ProjectionStep(index + 1, loss.item(), terms.pixel.item(), _number(terms.perceptual), penalty.item(),
                              learning_rate, current_distance, psnr(current, target), _number(terms.discriminator))
        history.append(step)
        if current_distance < best.distance:
            best = _Best(w_opt.detach().clone(), current.detach(), current_distance, step.psnr, step.step,
                         synthesis.noise)
        if on_step is not None:
            on_step(ProjectionProgress(step, settings.steps, tensor_to_pixels(current), best.step, best.psnr))

    ws = all_ws(best.w)[0].float().cpu().numpy()
    return ProjectionResult(ws=ws, image=tensor_to_pixels(best.image), target=target_pixels, best_step=best.step,
                            distance=best.distance, psnr=best.psnr, history=tuple(history), stopped=stopped,
                            noise=best.noise)


def _frozen_on(module: torch.nn.Module, device) -> torch.nn.Module:
    """`module` itself when it is already frozen, in eval mode and on `device` (as loaders give it); otherwise a
    frozen copy there, so that the projection never changes the caller's module (no grads, no mode switch)."""
    ready = not module.training and all(not p.requires_grad and p.device == torch.device(device)
                                        for p in module.parameters())
    return module if ready else copy.deepcopy(module).to(device).eval().requires_grad_(False)


def _number(term: torch.Tensor | None) -> float | None:
    return None if term is None else term.item()


class _Best:
    """The best latent so far, with copies of its noise maps (the live ones keep changing)."""

    def __init__(self, w, image, distance, psnr_db, step, noise: dict[str, torch.Tensor]):
        self.w, self.image, self.distance, self.psnr, self.step = w, image, distance, psnr_db, step
        self.noise = {name: tensor.detach().cpu().numpy().copy() for name, tensor in noise.items()}
