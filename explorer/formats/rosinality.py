"""rosinality/stylegan2-pytorch checkpoints (.pt), mapped onto our StyleGAN2 modules.

Two layouts: what its train.py saves ({g, d, g_ema, g_optim, d_optim, args, ada_aug_p}, no latent_avg) and what
its convert_weight.py saves ({g_ema, latent_avg}, plus g and d when asked). g_ema is the generator used; without
latent_avg, w_avg is estimated from W_AVG_SAMPLES random z. rosinality truncates every w (our default cutoff None);
its noise buffers become our noise_const and its w indices are NVlabs' (see convert_state).
The files are read by our own zip and pickle readers (torch_zip), allowing tensor data and argparse.Namespace
only (train.py stores its arguments that way). The constructor arguments are not stored; they follow from the
tensor shapes:
- size from the number of ToRGB layers (checked against the 2 * log2(size) - 3 noise buffers), style_dim from
  the mapping weights, n_mlp from the number of mapping layers, and the channels of every resolution from the
  conv weights (channel_multiplier is what they show at 64 px).
- rosinality's channel table (512 up to 32 px, then 256, 128, ... times the multiplier) is NVlabs' formula
  min(channel_base / res, 512) with channel_base = 16384 * channel_multiplier for multipliers 1 and 2; larger
  multipliers (1024 channels at 64 px for 4) go to the synthesis network as an explicit channel list.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from ..networks.stylegan2 import channel_kwargs
from . import limits
from .assemble import build_network
from .discriminators import read_discriminator, rosinality_discriminator
from .errors import NetworkLoadError, quote
from .loaded import LoadedNetwork
from .pickle_machine import Record
from .restricted_pickle import DATA_GLOBALS
from .torch_zip import load_torch_zip

# rosinality's blur kernel where it upsamples: the [1, 3, 3, 1] outer product, normalised, times 4. Ours is the
# same filter (NVlabs' resample_filter); a file with another one cannot be mapped.
UPSAMPLE_KERNEL = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64 * 4
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


class NamespaceRecord(Record):
    """argparse.Namespace, in which train.py keeps its arguments: a table of plain values."""

    def __init__(self, *args):
        self.values: dict = {}

    def set_state(self, state) -> None:
        if not isinstance(state, dict):
            raise NetworkLoadError(f"the file is damaged: training arguments {quote(state)}")
        self.values = dict(state)

    def children(self) -> tuple:
        return (self.values,)


ALLOWED_GLOBALS = {**DATA_GLOBALS, ("argparse", "Namespace"): NamespaceRecord}


def infer_config(state: dict) -> dict:
    """Our Generator's constructor arguments from a rosinality g_ema state dict."""
    if "iwt.ll" in state:
        raise NetworkLoadError("a rosinality SWAGAN (wavelet) generator: only its StyleGAN2 generator is supported")
    try:
        num_mlp = len([k for k in state if re.fullmatch(r"style\.\d+\.weight", k)])
        style_dim = state["style.1.weight"].shape[1]
        table = {4: state["input.input"].shape[1]}
    except KeyError as error:
        raise NetworkLoadError(f"not a rosinality generator state dict (no {error.args[0]})") from None
    except IndexError:
        raise NetworkLoadError("the rosinality weights do not fit one generator: style.1.weight or input.input "
                               "has too few dimensions") from None
    num_blocks = len([k for k in state if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    if 2 ** min(num_blocks + 2, 64) > limits.MAX_RESOLUTION:
        raise NetworkLoadError(f"refused to load: {num_blocks} upsampling blocks make more than "
                               f"{limits.MAX_RESOLUTION} px")
    size = 2 ** (num_blocks + 2)
    num_noises = len([k for k in state if re.fullmatch(r"noises\.noise_\d+", k)])
    if num_noises != 2 * int(math.log2(size)) - 3:
        raise NetworkLoadError(f"{num_noises} noise buffers do not fit {num_blocks} upsampling blocks "
                               f"({size} px needs {2 * int(math.log2(size)) - 3})")
    for k in range(num_blocks):
        weight = state.get(f"convs.{2 * k}.conv.weight")
        if weight is None:
            raise NetworkLoadError(f"not a rosinality generator state dict (no convs.{2 * k}.conv.weight)")
        if weight.dim() < 2:
            raise NetworkLoadError(f"the rosinality weights do not fit one generator: convs.{2 * k}.conv.weight "
                                   f"has {weight.dim()} dimensions")
        table[2 ** (k + 3)] = weight.shape[1]
    return dict(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=size, img_channels=3,
                mapping_kwargs=dict(num_layers=num_mlp), **channel_kwargs(table), num_fp16_res=0, conv_clamp=None,
                architecture="skip")


def channel_multiplier(config: dict) -> int | None:
    """rosinality's channel_multiplier: its table has 256 * multiplier channels at 64 px (unknown below 64 px)."""
    if config["img_resolution"] < 64:
        return None
    at_64 = config["channels"][4] if "channels" in config else min(config["channel_base"] // 64,
                                                                    config["channel_max"])
    return at_64 // 256


def convert_state(state: dict, config: dict) -> dict:
    """rosinality g_ema names and layouts -> NVlabs' (and ours)."""
    out = {}
    log_size = int(math.log2(config["img_resolution"]))
    for i in range(config["mapping_kwargs"]["num_layers"]):
        out[f"mapping.fc{i}.weight"] = state[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = state[f"style.{i + 1}.bias"]
    out["synthesis.b4.const"] = state["input.input"][0]

    def styled(prefix_ros, prefix_ours, noise_index):
        weight = state[f"{prefix_ros}.conv.weight"][0]
        # rosinality scales the kernel by 1/sqrt(fan_in) before modulating; NVlabs leaves it to demodulation.
        # Storing the scaled kernel keeps even demodulation's 1e-8 exactly as rosinality has it.
        out[f"{prefix_ours}.weight"] = weight / math.sqrt(weight[0].numel())
        out[f"{prefix_ours}.affine.weight"] = state[f"{prefix_ros}.conv.modulation.weight"]
        out[f"{prefix_ours}.affine.bias"] = state[f"{prefix_ros}.conv.modulation.bias"]
        out[f"{prefix_ours}.noise_strength"] = state[f"{prefix_ros}.noise.weight"].reshape([])
        out[f"{prefix_ours}.bias"] = state[f"{prefix_ros}.activate.bias"]
        noise = state[f"noises.noise_{noise_index}"]
        out[f"{prefix_ours}.noise_const"] = noise.reshape(noise.shape[-2:])
        check_kernel(f"{prefix_ros}.conv.blur.kernel")

    def check_kernel(name):
        kernel = state.get(name)
        if kernel is not None and (kernel.shape != UPSAMPLE_KERNEL.shape or not torch.allclose(
                kernel.to(torch.float32), UPSAMPLE_KERNEL)):
            raise NetworkLoadError(f"{name} is a custom blur kernel; only rosinality's default [1, 3, 3, 1] is "
                                   f"supported")

    def to_rgb(prefix_ros, prefix_ours):
        check_kernel(f"{prefix_ros}.upsample.kernel")
        out[f"{prefix_ours}.weight"] = state[f"{prefix_ros}.conv.weight"][0]
        out[f"{prefix_ours}.affine.weight"] = state[f"{prefix_ros}.conv.modulation.weight"]
        out[f"{prefix_ours}.affine.bias"] = state[f"{prefix_ros}.conv.modulation.bias"]
        out[f"{prefix_ours}.bias"] = state[f"{prefix_ros}.bias"].reshape(-1)

    styled("conv1", "synthesis.b4.conv1", 0)
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    for k, res_log in enumerate(range(3, log_size + 1)):
        res = 2 ** res_log
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1)
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2)
        to_rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
    return out


def estimate_w_avg(G: torch.nn.Module) -> torch.Tensor:
    generator = torch.Generator().manual_seed(W_AVG_SEED)
    z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=generator)
    with torch.no_grad():
        return G.mapping(z, None)[:, 0].mean(dim=0)


def load_rosinality(data: bytes, path: Path) -> LoadedNetwork:
    checkpoint = load_torch_zip(data, ALLOWED_GLOBALS)
    if not isinstance(checkpoint, dict) or "g_ema" not in checkpoint:
        keys = ", ".join(map(str, list(checkpoint)[:8])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise NetworkLoadError(f"a PyTorch checkpoint, but not a rosinality one with a g_ema generator ({keys})")
    return rosinality_network(checkpoint, path)


def rosinality_network(checkpoint: dict, path: Path, layout: str | None = None,
                       entry: str = "g_ema") -> LoadedNetwork:
    """The generator of a rosinality checkpoint already read: checkpoint['g_ema'] is its state dict, and
    checkpoint.get('latent_avg') its w_avg. layout, entry: what wrote the file and where in it the generator is,
    for files that hold a rosinality generator but were not written by rosinality's scripts."""
    state = checkpoint["g_ema"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise NetworkLoadError(f"the checkpoint's {entry} is not a state dict of tensors")
    config = infer_config(state)
    try:
        converted = convert_state(state, config)
    except KeyError as error:
        raise NetworkLoadError(f"the rosinality generator lacks {error.args[0]}") from None
    except (RuntimeError, ValueError, IndexError) as error:   # a tensor of another shape than its name promises
        raise NetworkLoadError(f"the rosinality weights do not fit one generator ({error})") from None
    G = build_network("stylegan2", config, converted, what="rosinality weights",
                      optional=lambda name: name.endswith("resample_filter") or name == "mapping.w_avg")
    notes = []
    estimated = "latent_avg" not in checkpoint
    with torch.no_grad():
        if estimated:
            G.mapping.w_avg.copy_(estimate_w_avg(G))
            notes.append(f"no latent_avg in the file: w_avg estimated from {W_AVG_SAMPLES:,} random z (seed "
                         f"{W_AVG_SEED})")
        else:
            latent_avg = checkpoint["latent_avg"]
            if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != G.w_dim:
                raise NetworkLoadError(f"latent_avg should hold {G.w_dim} numbers (style_dim)")
            if not bool(torch.isfinite(latent_avg.to(torch.float32)).all()):
                raise NetworkLoadError("latent_avg holds NaN or infinite values")
            G.mapping.w_avg.copy_(latent_avg.reshape(-1))
    # convert_weight.py may add g and d too, but never the optimizers or the arguments.
    if layout is None:
        layout = "train.py checkpoint" if "args" in checkpoint or "g_optim" in checkpoint else \
            "convert_weight.py output"
    detail = f"{layout}, size {config['img_resolution']}, style_dim {config['w_dim']}, n_mlp " \
             f"{config['mapping_kwargs']['num_layers']}, channel_multiplier {channel_multiplier(config) or 'n/a'}, " \
             f"entry {entry}"
    discriminator = None
    if checkpoint.get("d") is not None:
        discriminator = read_discriminator(lambda: rosinality_discriminator(checkpoint["d"]), notes)
        if discriminator is not None:
            detail += ", with its discriminator d"
    return LoadedNetwork(G, "rosinality", str(path), detail, tuple(notes), estimated, discriminator)
