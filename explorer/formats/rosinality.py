"""rosinality/stylegan2-pytorch checkpoints (.pt), mapped onto our StyleGAN2 modules.

Two layouts: what its train.py saves ({g, d, g_ema, g_optim, d_optim, args, ada_aug_p}, no latent_avg) and what
its convert_weight.py saves ({g_ema, latent_avg, g}). The files are read with torch.load(weights_only=True),
allowing argparse.Namespace only (train.py stores its arguments that way). The constructor arguments are not
stored; they follow from the tensor shapes:
- size from the number of noise buffers (2 * log2(size) - 3), style_dim from the mapping weights,
  n_mlp from the number of mapping layers, channel_multiplier from the channels at 64 px and above.
- rosinality's channel table (512 up to 32 px, then 256, 128, ... times the multiplier) is NVlabs' formula
  min(channel_base / res, 512) with channel_base = 16384 * channel_multiplier.
"""
from __future__ import annotations

import argparse
import io
import math
import re
from pathlib import Path

import torch

from ..networks.stylegan2 import Generator
from .errors import NetworkLoadError

# rosinality's blur kernel: [1, 3, 3, 1] outer product, normalised (times 4 where it upsamples).
DEFAULT_BLUR = torch.tensor([1.0, 3.0, 3.0, 1.0])
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


def _load(data: bytes):
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or ValueError for bad files
        message = str(error).strip().splitlines()
        detail = next((line for line in message if "GLOBAL" in line or "Unsupported" in line), message[0] if
                      message else type(error).__name__)
        if "GLOBAL" in detail or "Unsupported" in detail:
            raise NetworkLoadError(f"refused to load: the checkpoint asks for something other than tensor data "
                                   f"({detail.strip()}); nothing from it was run")
        raise NetworkLoadError(f"the file is truncated or damaged ({detail.strip()})")


def infer_config(state: dict) -> dict:
    """Our Generator's constructor arguments from a rosinality g_ema state dict."""
    try:
        style_layers = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
        style_dim = state["style.1.weight"].shape[1]
        num_noises = len([k for k in state if re.fullmatch(r"noises\.noise_\d+", k)])
        const_channels = state["input.input"].shape[1]
    except KeyError as error:
        raise NetworkLoadError(f"not a rosinality generator state dict (no {error.args[0]})")
    size = 2 ** ((num_noises + 3) // 2)
    if num_noises < 1 or 2 * int(math.log2(size)) - 3 != num_noises:
        raise NetworkLoadError(f"cannot tell the resolution from {num_noises} noise buffers")
    log_size = int(math.log2(size))
    # The last conv's channels give the multiplier where the table leaves 512 (64 px and above).
    last_channels = state[f"convs.{2 * (log_size - 2) - 1}.conv.weight"].shape[1] if log_size > 2 else \
        const_channels
    channel_multiplier = 2
    if size >= 64:
        channel_multiplier = last_channels * size // 16384
        if channel_multiplier < 1 or min(16384 * channel_multiplier // size, 512) != last_channels:
            raise NetworkLoadError(f"channel table not recognised ({last_channels} channels at {size} px)")
    if const_channels != 512:
        raise NetworkLoadError(f"channel table not recognised ({const_channels} channels at 4 px)")
    return dict(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=size, img_channels=3,
                mapping_kwargs=dict(num_layers=len(style_layers)), channel_base=16384 * channel_multiplier,
                channel_max=512, num_fp16_res=0, conv_clamp=None, architecture="skip")


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
        kernel = state.get(f"{prefix_ros}.conv.blur.kernel")
        if kernel is not None and not torch.allclose(kernel, torch.outer(DEFAULT_BLUR, DEFAULT_BLUR) / 64 * 4):
            raise NetworkLoadError(f"{prefix_ros} uses a custom blur kernel, which this explorer does not support")

    def to_rgb(prefix_ros, prefix_ours):
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


def estimate_w_avg(G: Generator) -> torch.Tensor:
    generator = torch.Generator().manual_seed(W_AVG_SEED)
    z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=generator)
    with torch.no_grad():
        return G.mapping(z, None)[:, 0].mean(dim=0)


def load_rosinality(data: bytes, path: Path):
    from . import LoadedNetwork
    checkpoint = _load(data)
    if not isinstance(checkpoint, dict) or "g_ema" not in checkpoint:
        keys = ", ".join(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise NetworkLoadError(f"a PyTorch checkpoint, but not a rosinality one with a g_ema generator ({keys})")
    state = checkpoint["g_ema"]
    config = infer_config(state)
    G = Generator(**config)
    try:
        converted = convert_state(state, config)
    except KeyError as error:
        raise NetworkLoadError(f"the rosinality generator lacks {error.args[0]}")
    result = G.load_state_dict(converted, strict=False)
    expected_missing = {k for k in result.missing_keys if k.endswith("resample_filter") or k == "mapping.w_avg"}
    if set(result.missing_keys) - expected_missing or result.unexpected_keys:
        raise NetworkLoadError(f"the rosinality weights do not fit: missing {sorted(set(result.missing_keys) - expected_missing)[:3]}")
    notes = []
    estimated = "latent_avg" not in checkpoint
    with torch.no_grad():
        if estimated:
            G.mapping.w_avg.copy_(estimate_w_avg(G))
            notes.append(f"no latent_avg in the file: w_avg estimated from {W_AVG_SAMPLES:,} random z (seed "
                         f"{W_AVG_SEED})")
        else:
            G.mapping.w_avg.copy_(checkpoint["latent_avg"].reshape(-1))
    layout = "train.py checkpoint" if "args" in checkpoint or "d" in checkpoint else "convert_weight.py output"
    detail = f"{layout}, size {config['img_resolution']}, style_dim {config['w_dim']}, n_mlp " \
             f"{config['mapping_kwargs']['num_layers']}, channel_multiplier {config['channel_base'] // 16384}, " \
             f"entry g_ema"
    return LoadedNetwork(G.eval().requires_grad_(False), "rosinality", str(path), detail, notes, estimated)
