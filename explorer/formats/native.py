"""The explorer's own format: weights in safetensors, the family and constructor arguments in its metadata.

safetensors holds only tensors and a string-to-string header, so loading reads data and never runs code;
it also maps the file instead of unpickling it, which makes it the fastest format to open.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from ..networks import build_generator
from .errors import NetworkLoadError

FORMAT_TAG = "stylegan-explorer"
FORMAT_VERSION = "1"


def save_network(generator: torch.nn.Module, path: str | os.PathLike, extra: dict | None = None,
                 overwrite: bool = False) -> Path:
    """Write `generator` (family, config, every parameter and buffer) to `path`. Refuses to overwrite."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; not overwriting it")
    metadata = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "family": generator.family,
        "config": json.dumps(generator.config),
        "extra": json.dumps(extra or {}),
    }
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in generator.state_dict().items()}
    # Write beside the target and rename, so an interrupted write never leaves half a file under its name.
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise NetworkLoadError(f"{path} is not a readable safetensors file ({error})")
    if metadata.get("format") != FORMAT_TAG:
        raise NetworkLoadError(f"{path} is a safetensors file but not a stylegan-explorer network "
                               f"(no '{FORMAT_TAG}' format tag); convert it with `stylegan-explorer convert`")
    return metadata


def load_native(path: str | os.PathLike):
    """(generator, extra metadata dict) from a file written by `save_network`."""
    metadata = read_metadata(path)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise NetworkLoadError(f"{path} has format version {metadata.get('format_version')}; "
                               f"this explorer reads version {FORMAT_VERSION}")
    try:
        config = json.loads(metadata["config"])
        extra = json.loads(metadata.get("extra", "{}"))
        generator = build_generator(metadata["family"], config)
        tensors = load_file(str(path))
    except (KeyError, ValueError, TypeError, SafetensorError) as error:
        raise NetworkLoadError(f"{path}: damaged stylegan-explorer metadata or weights ({error})")
    result = generator.load_state_dict(tensors, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise NetworkLoadError(f"{path}: weights do not fit the recorded configuration "
                               f"(missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})")
    return generator.eval().requires_grad_(False), extra
