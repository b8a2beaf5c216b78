"""VGG16's convolutional feature stack (Simonyan & Zisserman 2015, configuration D), with the weights read from a
file the user has: torchvision's `vgg16` state dict (`features.<index>.weight` / `.bias`), read with
torch.load(weights_only=True), which loads tensors and never runs code from the file. Nothing is downloaded.

The features are the five activations LPIPS compares (Zhang et al. 2018): relu1_2, relu2_2, relu3_3, relu4_3,
relu5_3, on images normalised as ImageNet training normalised them.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ProjectionError

# Configuration D: output channels of each 3x3 convolution, 'pool' for a 2x2 max pool.
VGG16_LAYOUT = (64, 64, "pool", 128, 128, "pool", 256, 256, 256, "pool", 512, 512, 512, "pool", 512, 512, 512)
# The last ReLU of each of the five stages: the activations LPIPS compares.
TAPPED_STAGE_ENDS = 5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """[N, 3, H, W] images in [-1, 1] -> the five stage activations. Indices of `features.<i>` follow
    torchvision's nn.Sequential (each convolution is followed by its ReLU, so a convolution takes two indices)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential()
        self.taps: list[int] = []          # indices in `features` after which an activation is kept
        in_channels = 3
        for entry in VGG16_LAYOUT:
            if entry == "pool":
                self.taps.append(len(self.features) - 1)
                self.features.append(nn.MaxPool2d(2, 2))
                continue
            self.features.append(nn.Conv2d(in_channels, entry, 3, padding=1))
            self.features.append(nn.ReLU())
            in_channels = entry
        self.taps.append(len(self.features) - 1)
        assert len(self.taps) == TAPPED_STAGE_ENDS
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = ((images + 1) / 2 - self.mean) / self.std
        kept = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                kept.append(x)
                if len(kept) == TAPPED_STAGE_ENDS:
                    break
        return kept


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the convolution weights and biases in torchvision's vgg16 state dict."""
    return {f"features.{name}": tuple(tensor.shape) for name, tensor in VGG16Features().features.state_dict().items()}


def load_vgg16(path, device="cpu") -> VGG16Features:
    """VGG16Features with the weights of a torchvision vgg16 state dict file; ProjectionError (one line) when
    the file is missing, is not such a state dict, or holds other shapes."""
    path = Path(path)
    if not path.is_file():
        raise ProjectionError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise ProjectionError(f"{path}: holds Python objects besides tensors; refused, since loading them "
                                  f"could run code (expected torchvision's vgg16 state dict)")
        raise ProjectionError(f"{path}: not a weights file torch.load reads ({_first_line(error)})")
    except Exception as error:     # zip, pickle-opcode and storage errors of many types; the user needs one line
        raise ProjectionError(f"{path}: not a weights file torch.load reads ({_first_line(error)})")
    if not isinstance(state, dict):
        raise ProjectionError(f"{path}: expected torchvision's vgg16 state dict, found a "
                              f"{type(state).__name__}")
    network = VGG16Features()
    weights = {}
    for key, shape in expected_shapes().items():
        tensor = state.get(key)
        if not isinstance(tensor, torch.Tensor):
            raise ProjectionError(f"{path}: no {key} in the file; expected torchvision's vgg16 state dict")
        if tuple(tensor.shape) != shape:
            raise ProjectionError(f"{path}: {key} has shape {list(tensor.shape)}, VGG16 needs "
                                  f"{list(shape)}")
        if not torch.isfinite(tensor).all():
            raise ProjectionError(f"{path}: {key} holds values that are not finite")
        weights[key.removeprefix("features.")] = tensor.float()
    network.features.load_state_dict(weights)
    return network.eval().requires_grad_(False).to(device)


def _first_line(error: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()     # torch colours some of its messages
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def lpips_style_distance(features_a: list[torch.Tensor], features_b: list[torch.Tensor]) -> torch.Tensor:
    """LPIPS without its learned per-channel weights (the paper's baseline): each activation unit-normalised
    across channels, squared differences summed over channels, averaged over positions, summed over stages."""
    total = features_a[0].new_zeros(())
    for a, b in zip(features_a, features_b):
        a = a / (a.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
        total = total + (a - b).square().sum(dim=1).mean()
    return total


def perceptual_size(images: torch.Tensor, largest: int) -> torch.Tensor:
    """Images larger than `largest` px are area-downsampled to it first, as NVlabs' projector does (256)."""
    if max(images.shape[2], images.shape[3]) <= largest:
        return images
    scale = largest / max(images.shape[2], images.shape[3])
    size = (max(1, round(images.shape[2] * scale)), max(1, round(images.shape[3] * scale)))
    return F.interpolate(images, size=size, mode="area")
