"""Every network file users have, read without running code from the file.

`load_network(path)` recognises the format from the file's bytes (never from its name) and returns a
`LoadedNetwork`. Every failure is a `NetworkLoadError` whose message is one line a user can act on.
"""
from __future__ import annotations

import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import NetworkLoadError
from .restricted_pickle import ForbiddenGlobal

# How many leading bytes are searched for the global that tells the pickle formats apart.
SNIFF_BYTES = 1 << 16

FORMAT_LABELS = {
    "nvlabs-pickle": "NVlabs PyTorch pickle",
    "tf-pickle": "NVlabs TensorFlow pickle",
    "rosinality": "rosinality stylegan2-pytorch checkpoint",
    "native": "stylegan-explorer safetensors",
}


@dataclass
class LoadedNetwork:
    generator: torch.nn.Module
    format: str                       # a key of FORMAT_LABELS
    path: str
    detail: str = ""                  # e.g. which code base wrote it, which entry of the file was used
    notes: list[str] = field(default_factory=list)   # warnings the user should see
    w_avg_estimated: bool = False     # the file had no w_avg: it was estimated from random z

    @property
    def format_label(self) -> str:
        return FORMAT_LABELS[self.format]


def sniff_format(data: bytes) -> str:
    """The format of a network file, from its first bytes."""
    if len(data) == 0:
        raise NetworkLoadError("the file is empty")
    if data[:4] == b"PK\x03\x04":
        return "rosinality"  # torch.save's zip layout; the rosinality loader checks what is inside
    if len(data) >= 10 and data[8:9] == b"{":
        (header_size,) = struct.unpack("<Q", data[:8])
        if 0 < header_size < len(data):
            return "native"
    if data[:1] == b"\x80":
        head = data[:SNIFF_BYTES]
        if b"torch_utils.persistence" in head or b"_reconstruct_persistent_obj" in head:
            return "nvlabs-pickle"
        if b"dnnlib.tflib.network" in head:
            return "tf-pickle"
        raise NetworkLoadError("this is a Python pickle, but not a network format this explorer reads "
                               "(NVlabs PyTorch or TensorFlow pickles)")
    raise NetworkLoadError("not a network file this explorer reads (NVlabs .pkl, TensorFlow .pkl, rosinality .pt "
                           "or stylegan-explorer .safetensors)")


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedNetwork:
    path = Path(path)
    if not path.exists():
        raise NetworkLoadError(f"no such file: {path}")
    if path.is_dir():
        raise NetworkLoadError(f"{path} is a folder, not a network file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NetworkLoadError(f"cannot read {path}: {error.strerror or error}")
    kind = sniff_format(data)
    try:
        loaded = _load(kind, data, path)
    except NetworkLoadError:
        raise
    except ForbiddenGlobal as error:
        raise NetworkLoadError(str(error))
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, struct.error) as error:
        raise NetworkLoadError(f"the file is truncated or damaged ({type(error).__name__}: {error})")
    except RuntimeError as error:
        if "storage" in str(error) or "size" in str(error) or "file" in str(error).lower():
            raise NetworkLoadError(f"the file is truncated or damaged ({error})")
        raise
    loaded.generator.to(device)
    return loaded


def _load(kind: str, data: bytes, path: Path) -> LoadedNetwork:
    if kind == "nvlabs-pickle":
        from .nvlabs_pickle import load_nvlabs_pickle
        contents = load_nvlabs_pickle(data)
        detail = f"{contents.family} from the {contents.code_base} code base, entry {contents.picked}"
        return LoadedNetwork(contents.generator, kind, str(path), detail, contents.notes)
    if kind == "native":
        from .native import load_native
        generator, extra = load_native(path)
        return LoadedNetwork(generator, kind, str(path), extra.get("source", ""), list(extra.get("notes", [])),
                             bool(extra.get("w_avg_estimated", False)))
    if kind == "tf-pickle":
        from .tf_pickle import load_tf_pickle
        return load_tf_pickle(data, path)
    from .rosinality import load_rosinality
    return load_rosinality(data, path)
