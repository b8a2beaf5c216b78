"""Every network file users have, read without running code from the file.

`FORMATS` is the table of formats: one `NetworkFormat` each, saying how to recognise it from the file's first
bytes (never from its name) and how to load it. `load_network(path)` picks the format and returns a
`LoadedNetwork`. Every failure is a `NetworkLoadError` whose message is one line a user can act on: the loaders
check what a file declares against what it holds and against the bounds in `limits` before allocating, and any
other exception from a damaged file is turned into that one line here.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from . import limits
from .errors import NetworkLoadError, one_line
from .foreign import identify as identify_foreign
from .loaded import LoadedNetwork
from .pickle_machine import LoadCancelled, cancel_check, check_cancelled

__all__ = ["FORMATS", "FORMAT_LABELS", "LoadCancelled", "LoadedNetwork", "NetworkFormat", "NetworkLoadError",
           "load_network", "sniff_format"]

# How many leading bytes are searched for the global that tells the pickle formats apart.
SNIFF_BYTES = 1 << 16
PICKLE_PROTOCOL_2_OR_LATER = b"\x80"


@dataclass(frozen=True)
class NetworkFormat:
    key: str                                        # what LoadedNetwork.format holds
    label: str                                      # what the user reads
    recognise: Callable[[bytes], bool]              # from the first SNIFF_BYTES of a file
    load: Callable[[bytes, Path], LoadedNetwork]    # the whole file's bytes and its path


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10 or head[8:9] != b"{":
        return False
    (header_size,) = struct.unpack("<Q", head[:8])
    return header_size > 0


def _pickle_naming(*names: bytes) -> Callable[[bytes], bool]:
    def recognise(head: bytes) -> bool:
        return head[:1] == PICKLE_PROTOCOL_2_OR_LATER and any(name in head for name in names)
    return recognise


def _load_nvlabs(data: bytes, path: Path) -> LoadedNetwork:
    from .nvlabs_pickle import load_nvlabs_pickle
    return load_nvlabs_pickle(data, path)


def _load_tf(data: bytes, path: Path) -> LoadedNetwork:
    from .tf_pickle import load_tf_pickle
    return load_tf_pickle(data, path)


def _is_torch_save(head: bytes) -> bool:
    from .torch_checkpoint import is_torch_save
    return is_torch_save(head)


def _load_torch_checkpoint(data: bytes, path: Path) -> LoadedNetwork:
    from .torch_checkpoint import load_torch_checkpoint
    return load_torch_checkpoint(data, path)


def _load_native(data: bytes, path: Path) -> LoadedNetwork:
    from .native import load_native
    return load_native(data, path)


FORMATS: tuple[NetworkFormat, ...] = (
    # Every torch.save file (.pt, .pth; zip or legacy layout) is read by the first of these three, whatever it
    # holds (rosinality, genforce, pSp/e4e, an NVlabs generator saved whole, this project's training checkpoints):
    # what it holds decides its key. First, as a legacy torch.save file is also a pickle and may name NVlabs'
    # globals.
    NetworkFormat("rosinality", "rosinality stylegan2-pytorch checkpoint", _is_torch_save, _load_torch_checkpoint),
    NetworkFormat("genforce", "genforce PyTorch checkpoint", _is_torch_save, _load_torch_checkpoint),
    NetworkFormat("training-checkpoint", "stylegan-explorer training checkpoint", _is_torch_save,
                  _load_torch_checkpoint),
    NetworkFormat("nvlabs-pickle", "NVlabs PyTorch pickle",
                  _pickle_naming(b"torch_utils.persistence", b"_reconstruct_persistent_obj"), _load_nvlabs),
    NetworkFormat("tf-pickle", "NVlabs TensorFlow pickle", _pickle_naming(b"dnnlib.tflib.network"), _load_tf),
    NetworkFormat("native", "stylegan-explorer safetensors", _is_safetensors, _load_native),
)
FORMAT_LABELS = {f.key: f.label for f in FORMATS}
_BY_KEY = {f.key: f for f in FORMATS}


def sniff_format(data: bytes) -> str:
    """The key of a network file's format, from its first bytes."""
    if len(data) == 0:
        raise NetworkLoadError("the file is empty")
    head = data[:SNIFF_BYTES]
    for network_format in FORMATS:
        if network_format.recognise(head):
            return network_format.key
    foreign = identify_foreign(data)
    if foreign is not None:
        raise NetworkLoadError(foreign.line)
    if head[:1] == PICKLE_PROTOCOL_2_OR_LATER:
        raise NetworkLoadError("this is a Python pickle, but not a network format this explorer reads "
                               "(NVlabs PyTorch or TensorFlow pickles)")
    raise NetworkLoadError("not a network file this explorer reads (NVlabs .pkl, TensorFlow .pkl, rosinality .pt, "
                           "genforce .pth or stylegan-explorer .safetensors)")


def _read(path: Path) -> bytes:
    try:
        if not path.exists():
            raise NetworkLoadError(f"no such file: {path}")
        if path.is_dir():
            raise NetworkLoadError(f"{path} is a folder, not a network file")
        if not path.is_file():   # a device or a pipe (/dev/zero never ends)
            raise NetworkLoadError(f"{path} is not a regular file")
        size = path.stat().st_size
        if size > limits.MAX_FILE_BYTES:
            raise NetworkLoadError(f"{path} is {size / 2 ** 30:.1f} GiB, larger than any network file "
                                   f"({limits.MAX_FILE_BYTES / 2 ** 30:.0f} GiB at most)")
        with open(path, "rb") as handle:
            data = handle.read(size)
            if handle.read(1):   # it grew since: still being written (or a /proc file, whose size says 0)
                raise NetworkLoadError(f"{path} is still being written; try again when it is complete")
        return data
    except OSError as error:
        raise NetworkLoadError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:   # a name the file system cannot hold (an embedded NUL)
        raise NetworkLoadError(f"cannot read {path!r}: {error}") from None
    except MemoryError:
        raise NetworkLoadError(f"not enough memory to read {path}") from None


def _load(network_format: NetworkFormat, data: bytes, path: Path) -> LoadedNetwork:
    """The format's loader, with any failure turned into one line that says what broke, or, for a file of a
    layout we know but do not read (which fails somewhere inside the loader), what the file is."""
    try:
        return network_format.load(data, path)
    except LoadCancelled:
        raise
    except Exception as error:
        foreign = identify_foreign(data)
        if foreign is not None:
            raise NetworkLoadError(foreign.line) from None
        raise _one_line_error(network_format, error) from None


def _one_line_error(network_format: NetworkFormat, error: Exception) -> NetworkLoadError:
    if isinstance(error, NetworkLoadError):
        return error
    if isinstance(error, MemoryError):
        return NetworkLoadError("not enough memory to load this file")
    if isinstance(error, RecursionError):
        return NetworkLoadError("refused to load: the file's data nests too deeply")
    # A damaged file that reached a check we do not have: never a traceback.
    return NetworkLoadError(f"the file is damaged or not a {network_format.label} this explorer reads "
                            f"({type(error).__name__}: {one_line(str(error), 160)})")


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu",
                 cancelled: Callable[[], bool] | None = None) -> LoadedNetwork:
    """The network in `path`, on `device`; NetworkLoadError (one line) for every file that is not one.

    cancelled: asked often while loading (at least every thousand pickle operations and between the stages);
    when it returns True the load stops with LoadCancelled (a NetworkLoadError)."""
    path = Path(path)
    token = cancel_check.set(cancelled)
    try:
        data = _read(path)
        check_cancelled()
        loaded = _load(_BY_KEY[sniff_format(data)], data, path)
        del data
        check_cancelled()
    finally:
        cancel_check.reset(token)
    try:
        loaded.generator.to(device)
        if loaded.discriminator is not None:
            loaded.discriminator.to(device)
    except Exception as error:   # an unknown or absent device
        raise NetworkLoadError(f"cannot move the network to {device}: {one_line(str(error), 160)}") from None
    return loaded
