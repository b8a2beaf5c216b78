"""Tensors in pickles: storages read from the bytes the file holds, tensors that their storage covers.

torch pickles a tensor as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`. In an NVlabs
pickle the storage is `torch.storage._load_from_bytes(blob)`, where the blob is torch's legacy serialization:
five pickles (magic number, protocol version, system info, the storage as a persistent id, the storage keys)
followed, per storage, by its element count (int64) and its raw bytes. torch's own loader allocates the count
the persistent id declares before reading, and `Tensor.set_` grows a storage that is too short with
uninitialised memory; here the declared count must equal the bytes present, and a tensor must lie inside its
storage, before anything is allocated.
"""
from __future__ import annotations

import contextvars
import math
import struct

import torch

from . import limits
from .errors import NetworkLoadError, quote
from .pickle_machine import Budget, GlobalRef, PickleMachine

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
# Storage classes appear only as names inside persistent ids: they are never called.
STORAGE_GLOBALS = {("torch", name): None for name in STORAGE_DTYPES}

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
COUNT_BYTES = 8

# The budget of the file being loaded, for the tensor records nested in it.
current_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("current_budget", default=None)


class StorageData:
    """One storage: its dtype, its declared element count and, once read, its values (a flat tensor)."""

    def __init__(self, dtype: torch.dtype, numel: int):
        self.dtype, self.numel = dtype, numel
        self.values: torch.Tensor | None = None

    def fill(self, raw: bytes | memoryview) -> None:
        size = torch.empty(0, dtype=self.dtype).element_size()
        if len(raw) != self.numel * size:
            raise NetworkLoadError(f"the file is damaged: a storage of {self.numel:,} values has {len(raw):,} bytes "
                                   f"instead of {self.numel * size:,}")
        self.values = (torch.frombuffer(bytearray(raw), dtype=self.dtype) if len(raw)
                       else torch.empty(0, dtype=self.dtype))


def storage_dtype(storage_type) -> torch.dtype:
    if not (isinstance(storage_type, GlobalRef) and storage_type.module == "torch"
            and storage_type.name in STORAGE_DTYPES):
        raise NetworkLoadError(f"refused to load: storage type {quote(storage_type)}")
    return STORAGE_DTYPES[storage_type.name]


def declared_count(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limits.MAX_TENSOR_ELEMENTS:
        raise NetworkLoadError(f"refused to load: {what} of {quote(value)} values (at most "
                               f"{limits.MAX_TENSOR_ELEMENTS:,} are allowed)")
    return value


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > limits.MAX_TENSOR_DIMS or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= limits.MAX_TENSOR_ELEMENTS for n in value):
        raise NetworkLoadError(f"the file is damaged: tensor {what} {quote(value)}")
    return tuple(value)


def rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2, refusing a tensor that reaches outside its storage."""
    if not isinstance(storage, StorageData) or storage.values is None:
        raise NetworkLoadError("the file is damaged: a tensor without its storage")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "strides")
    if len(size) != len(stride):
        raise NetworkLoadError(f"the file is damaged: tensor size {list(size)} with strides {list(stride)}")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= storage.numel:
        raise NetworkLoadError(f"the file is damaged: tensor offset {quote(offset)} in a storage of "
                               f"{storage.numel:,} values")
    numel = math.prod(size)
    if numel > limits.MAX_TENSOR_ELEMENTS:
        raise NetworkLoadError(f"refused to load: a tensor of size {list(size)} is larger than any network's")
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else offset
    if end > storage.numel:
        raise NetworkLoadError(f"refused to load: a tensor of size {list(size)} reaches value {end:,} of a storage "
                               f"that holds {storage.numel:,}")
    return storage.values.as_strided(size, stride, offset)


def rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, torch.Tensor):
        raise NetworkLoadError(f"the file is damaged: a parameter made of {quote(data)}")
    return data


def _read_count(blob: bytes, position: int) -> tuple[int, int]:
    if position + COUNT_BYTES > len(blob):
        raise NetworkLoadError("the file is truncated or damaged (a tensor record ends before its data)")
    (count,) = struct.unpack_from("<q", blob, position)
    return count, position + COUNT_BYTES


def load_legacy_storage(blob) -> StorageData:
    """The storage in a torch.storage._load_from_bytes record, its bytes checked against its declaration."""
    if not isinstance(blob, (bytes, bytearray)):
        raise NetworkLoadError("the file is damaged: a tensor record that is not bytes")
    if isinstance(blob, bytearray):
        blob = bytes(blob)
    budget = current_budget.get() or Budget()
    position = 0

    def header_value(allowed=None, persistent_load=None):
        nonlocal position
        machine = PickleMachine(blob, allowed or {}, position, persistent_load, budget)
        value = machine.load()
        position = machine.position
        return value

    magic, protocol, system = header_value(), header_value(), header_value()
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(system, dict):
        raise NetworkLoadError("the file is damaged: a tensor record that is not torch's storage format")
    if system.get("little_endian") is not True:
        raise NetworkLoadError("refused to load: a big-endian tensor record (only little-endian files are read)")
    storages: dict[str, StorageData] = {}

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[2], str)
                and pid[5] is None):
            raise NetworkLoadError(f"the file is damaged: tensor record id {quote(pid)}")
        dtype, numel = storage_dtype(pid[1]), declared_count(pid[4], "a storage")
        known = storages.setdefault(pid[2], StorageData(dtype, numel))
        if (known.dtype, known.numel) != (dtype, numel):
            raise NetworkLoadError("the file is damaged: one storage declared twice, differently")
        return known

    storage = header_value(STORAGE_GLOBALS, persistent_load)
    keys = header_value()
    if not (isinstance(keys, list) and sorted(keys) == sorted(storages)) or not isinstance(storage, StorageData):
        raise NetworkLoadError("the file is damaged: a tensor record whose storages do not match its index")
    for key in keys:
        item = storages[key]
        count, position = _read_count(blob, position)
        if count != item.numel:
            raise NetworkLoadError(f"the file is damaged: a storage declared with {item.numel:,} values holds "
                                   f"{count:,}")
        size = count * torch.empty(0, dtype=item.dtype).element_size()
        if position + size > len(blob):
            raise NetworkLoadError(f"the file is truncated or damaged: a storage of {count:,} values has only "
                                   f"{len(blob) - position:,} bytes")
        item.fill(memoryview(blob)[position:position + size])
        position += size
    return storage


TENSOR_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): load_legacy_storage,
    **STORAGE_GLOBALS,
}
