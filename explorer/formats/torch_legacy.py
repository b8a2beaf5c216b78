"""torch.save's legacy layout (PyTorch before 1.6, or `_use_new_zipfile_serialization=False`), read without
torch.load.

The file is five pickles (magic number, protocol version, system info, the saved object whose storages are
persistent ids ('storage', type, key, location, element count, None), the list of storage keys) followed, per
key, by the storage's element count (int64) and its raw bytes. The object's tensors are rebuilt while its pickle
is read, before the storage bytes that follow it: the object is read once over storages of no memory (torch's
meta device: sizes and strides are checked, nothing is allocated), the storages are then checked against the
bytes present and filled, and the object is read again over them.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from .errors import NetworkLoadError, quote
from .pickle_machine import Budget, PickleMachine
from .tensor_data import (COUNT_BYTES, LEGACY_MAGIC, LEGACY_PROTOCOL, StorageData, current_budget, declared_count,
                          storage_dtype)

# The first bytes of such a file: protocol 2, then the magic number as a 10-byte LONG1.
LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")


def is_legacy_torch(head: bytes) -> bool:
    return head.startswith(LEGACY_HEAD)


def load_legacy_torch(data: bytes, allowed: Mapping[tuple[str, str], Callable | None]) -> Any:
    """The object torch.save wrote into `data` (legacy layout), made only through `allowed`."""
    budget = Budget()
    token = current_budget.set(budget)
    try:
        return _load(data, allowed, budget)
    finally:
        current_budget.reset(token)


def _load(data: bytes, allowed, budget: Budget) -> Any:
    position = 0

    def read(table=None, persistent_load=None, start=None):
        nonlocal position
        machine = PickleMachine(data, table or {}, position if start is None else start, persistent_load, budget)
        value = machine.load()
        position = machine.position
        return value

    magic, protocol, system = read(), read(), read()
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL or not isinstance(system, dict):
        raise NetworkLoadError("the file is damaged: not torch's legacy checkpoint layout")
    if system.get("little_endian") is not True:
        raise NetworkLoadError("refused to load: a big-endian checkpoint (only little-endian files are read)")
    storages: dict[str, StorageData] = {}

    def declare(pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[2], str)
                and pid[5] is None):
            raise NetworkLoadError(f"the file is damaged: storage id {quote(pid)}")
        dtype, numel = storage_dtype(pid[1]), declared_count(pid[4], "a storage")
        known = storages.get(pid[2])
        if known is None:
            known = storages[pid[2]] = StorageData(dtype, numel)
            known.values = torch.empty(numel, dtype=dtype, device="meta")   # sizes only, until the bytes are read
        if (known.dtype, known.numel) != (dtype, numel):
            raise NetworkLoadError("the file is damaged: one storage declared twice, differently")
        return known

    object_start = position
    read(allowed, declare)   # the first reading: every storage declared, every tensor checked against its storage
    keys = read()
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and sorted(keys) == sorted(storages)):
        raise NetworkLoadError("the file is damaged: its storage index does not match its storages")
    for key in keys:
        storage = storages[key]
        if position + COUNT_BYTES > len(data):
            raise NetworkLoadError("the file is truncated or damaged (it ends before a storage's data)")
        count = int.from_bytes(data[position:position + COUNT_BYTES], "little", signed=True)
        position += COUNT_BYTES
        if count != storage.numel:
            raise NetworkLoadError(f"the file is damaged: a storage declared with {storage.numel:,} values holds "
                                   f"{count:,}")
        size = count * torch.empty(0, dtype=storage.dtype).element_size()
        if position + size > len(data):
            raise NetworkLoadError(f"the file is truncated or damaged: a storage of {count:,} values has only "
                                   f"{len(data) - position:,} bytes")
        storage.fill(memoryview(data)[position:position + size])
        position += size

    def filled(pid):
        return storages[pid[2]]

    return read(allowed, filled, start=object_start)
