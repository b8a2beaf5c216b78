"""The photo to project, as the network's output: RGB (or grey) pixels in [-1, 1], [1, C, H, W].

It is centre-cropped to the network's aspect ratio (the largest centred region of that shape: a square for a
square network, so nothing is stretched) and resized to the network's resolution with Lanczos resampling, as
NVlabs' projector prepares its targets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import ProjectionError

RESIZE_DESCRIPTION = "centre crop to the network's aspect ratio, then Lanczos resize to its resolution"
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Pillow refuses images past this many pixels as decompression bombs; a photo to project is far smaller.
MAX_TARGET_PIXELS = 20_000 ** 2


def _centre_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """The largest centred region of `image` with the aspect ratio width : height."""
    source_w, source_h = image.size
    if source_w * height > source_h * width:        # too wide: trim the sides
        crop_w, crop_h = max(1, round(source_h * width / height)), source_h
    else:                                            # too tall: trim top and bottom
        crop_w, crop_h = source_w, max(1, round(source_w * height / width))
    left, top = (source_w - crop_w) // 2, (source_h - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def target_from_image(image: Image.Image, channels: int, height: int, width: int) -> np.ndarray:
    """uint8 [height, width, channels] pixels of `image`, cropped and resized as the module docstring says."""
    if channels not in PIL_MODES:
        raise ProjectionError(f"cannot project onto a network with {channels} image channels")
    image = _centre_crop(image.convert(PIL_MODES[channels]), width, height)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def load_target(path, channels: int, height: int, width: int) -> np.ndarray:
    """The photo at `path` as uint8 [height, width, channels]; ProjectionError (one line) when it is missing or
    not an image Pillow reads."""
    path = Path(path)
    if not path.exists():
        raise ProjectionError(f"{path}: no such file")
    if path.is_dir():
        raise ProjectionError(f"{path} is a folder, not an image")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_TARGET_PIXELS:
                raise ProjectionError(f"{path}: {image.width}x{image.height} is too large an image")
            image.load()
            return target_from_image(image, channels, height, width)
    except UnidentifiedImageError:
        raise ProjectionError(f"{path}: not an image file Pillow can read")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ProjectionError(f"{path}: cannot read the image ({error})")


def pixels_to_tensor(pixels: np.ndarray, device) -> torch.Tensor:
    """uint8 [H, W, C] -> float32 [1, C, H, W] in [-1, 1], the range of the networks' raw output."""
    tensor = torch.from_numpy(np.array(pixels, dtype=np.float32)).to(device)
    return (tensor.permute(2, 0, 1).unsqueeze(0) / 127.5 - 1)


def tensor_to_pixels(image: torch.Tensor) -> np.ndarray:
    """float [1, C, H, W] raw output -> uint8 [H, W, C], as the explorer shows it ((x + 1) * 127.5, clamped)."""
    pixels = (image[0].detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()
