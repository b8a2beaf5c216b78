"""The explorer's own format: weights in safetensors, the family and constructor arguments in its metadata.

safetensors holds only tensors and a string-to-string header, so loading reads data and never runs code. The
header is read here (not by the safetensors library) so that every tensor's dtype, shape and byte range is
checked against the file before anything is allocated, and the settings are checked before a network is built.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import struct
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from . import limits
from .assemble import build_network
from .errors import NetworkLoadError, quote
from .loaded import LoadedNetwork

FORMAT_TAG = "stylegan-explorer"
FORMAT_VERSION = "1"
HEADER_LENGTH_BYTES = 8
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


def save_network(generator: torch.nn.Module, path: str | os.PathLike, extra: dict | None = None,
                 overwrite: bool = False) -> Path:
    """Write `generator` (family, config, every parameter and buffer) to `path`. Refuses to overwrite unless told.

    The file is written under a hidden, unique temporary name beside the target and then published: linked to
    the target (which fails if a file appeared there meanwhile) or, with overwrite, renamed over it. An
    interrupted or failed write (a full disk) leaves nothing under either name."""
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
    data = safetensors_bytes(tensors, metadata=metadata)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    # Created exclusively (never someone else's file) with the user's umask (mkstemp would make it 0600).
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        if overwrite:
            os.replace(partial, path)
        else:
            _publish_new(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


def _publish_new(partial: Path, path: Path) -> None:
    """`partial` under the name `path`, unless a file has that name (even one made a moment ago)."""
    try:
        os.link(partial, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; not overwriting it") from None
    except OSError:   # a file system without hard links (FAT, some network shares)
        if path.exists():
            raise FileExistsError(f"{path} exists; not overwriting it") from None
        os.replace(partial, path)


def read_header(data: bytes) -> tuple[dict, dict]:
    """(metadata, tensor entries) of a safetensors file, every entry checked against the bytes present."""
    (size,) = struct.unpack("<Q", data[:HEADER_LENGTH_BYTES])
    start = HEADER_LENGTH_BYTES + size
    if size > limits.MAX_HEADER_BYTES or start > len(data):
        raise NetworkLoadError(f"the file is truncated or damaged (a safetensors header of {size:,} bytes in a file "
                               f"of {len(data):,})")
    try:
        header = json.loads(data[HEADER_LENGTH_BYTES:start].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise NetworkLoadError(f"the file is damaged: its safetensors header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise NetworkLoadError("the file is damaged: its safetensors header is not a table")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise NetworkLoadError("the file is damaged: its safetensors metadata is not a table of text")
    buffer_size = len(data) - start
    for name, entry in header.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str) or entry["dtype"] not in DTYPES:
            raise NetworkLoadError(f"the file is damaged: tensor {quote(name)} has no readable dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and len(shape) <= limits.MAX_TENSOR_DIMS and all(
                type(n) is int and 0 <= n <= limits.MAX_TENSOR_ELEMENTS for n in shape)):
            raise NetworkLoadError(f"the file is damaged: tensor {quote(name)} has shape {quote(shape)}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
                and 0 <= offsets[0] <= offsets[1] <= buffer_size):
            raise NetworkLoadError(f"the file is truncated or damaged: tensor {quote(name)} lies outside the file")
        numel = math.prod(shape)
        needed = numel * torch.empty(0, dtype=DTYPES[entry["dtype"]]).element_size()
        if numel > limits.MAX_TENSOR_ELEMENTS or offsets[1] - offsets[0] != needed:
            raise NetworkLoadError(f"the file is damaged: tensor {quote(name)} of shape {shape} has "
                                   f"{offsets[1] - offsets[0]:,} bytes, not {needed:,}")
    return metadata, header


def _tensors(data: bytes, header: dict) -> dict[str, torch.Tensor]:
    """The tensors of a checked header, in one copy of the file's data."""
    (size,) = struct.unpack("<Q", data[:HEADER_LENGTH_BYTES])
    buffer = bytearray(data[HEADER_LENGTH_BYTES + size:])
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = DTYPES[entry["dtype"]]
        count = (end - begin) // torch.empty(0, dtype=dtype).element_size()
        flat = (torch.frombuffer(buffer, dtype=dtype, count=count, offset=begin) if count
                else torch.empty(0, dtype=dtype))
        tensors[name] = flat.reshape(entry["shape"])
    return tensors


def _json(metadata: dict, key: str, default: str):
    try:
        return json.loads(metadata.get(key, default))
    except (ValueError, RecursionError) as error:
        raise NetworkLoadError(f"the file is damaged: its recorded {key} is not JSON ({error})") from None


def _extra(metadata: dict) -> tuple[str, tuple[str, ...], bool]:
    """(source, notes, w_avg_estimated) from the metadata's extra table."""
    extra = _json(metadata, "extra", "{}")
    if not isinstance(extra, dict):
        raise NetworkLoadError("the file is damaged: its extra metadata is not a table")
    source, notes, estimated = extra.get("source", ""), extra.get("notes", []), extra.get("w_avg_estimated", False)
    if not isinstance(source, str) or not isinstance(notes, list) or not all(isinstance(n, str) for n in notes) or \
            not isinstance(estimated, bool):
        raise NetworkLoadError("the file is damaged: its extra metadata has values of the wrong kind")
    return source, tuple(notes), estimated


def load_native(data: bytes, path: Path) -> LoadedNetwork:
    metadata, header = read_header(data)
    if metadata.get("format") != FORMAT_TAG:
        raise NetworkLoadError(f"a safetensors file but not a stylegan-explorer network (no '{FORMAT_TAG}' format "
                               f"tag); convert it with `stylegan-explorer convert`")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise NetworkLoadError(f"format version {quote(metadata.get('format_version'))}; this explorer reads "
                               f"version {FORMAT_VERSION}")
    config = _json(metadata, "config", "null")
    source, notes, estimated = _extra(metadata)
    generator = build_network(metadata.get("family"), config, _tensors(data, header),
                              what="weights in this file")
    return LoadedNetwork(generator, "native", str(path), source, notes, estimated)
