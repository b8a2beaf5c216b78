"""torch.save's zip layout (what rosinality's scripts write), read without torch.load.

The archive holds `<folder>/data.pkl` (the pickled object; each storage a persistent id ('storage', type, key,
location, element count)) and one record `<folder>/data/<key>` of raw bytes per storage. Each record's size is
checked against the count its id declares, and its compressed size against its expanded size (torch stores
records uncompressed; a deflated record of 2 GB fits in 2 MB), before it is read.
"""
from __future__ import annotations

import io
import zipfile
from typing import Any, Callable, Mapping

import torch

from . import limits
from .errors import NetworkLoadError, quote
from .pickle_machine import Budget, PickleMachine
from .tensor_data import StorageData, current_budget, declared_count, storage_dtype

READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
MAX_PICKLE_RECORD = 1 << 28


class _Archive:
    def __init__(self, data: bytes):
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except Exception as error:   # zipfile raises BadZipFile, ValueError, struct.error, ... for damaged files
            raise NetworkLoadError(f"the file is truncated or damaged (not a readable zip archive: {error})") from None
        if len(infos) > limits.MAX_ZIP_ENTRIES:
            raise NetworkLoadError(f"refused to load: a zip archive of {len(infos):,} entries")
        self.entries = {info.filename: info for info in infos}
        self.file_bytes = len(data)
        self.bytes_left = limits.MAX_ZIP_TOTAL_RATIO * len(data) + (1 << 20)

    def read(self, name: str, expected: int | None = None, most: int = limits.MAX_TENSOR_ELEMENTS * 8) -> bytes:
        info = self.entries.get(name)
        if info is None:
            raise NetworkLoadError(f"the file is damaged: the archive lacks {quote(name)}")
        if info.compress_type not in READABLE_COMPRESSION:
            raise NetworkLoadError(f"refused to load: {quote(name)} uses a compression torch never writes")
        if expected is not None and info.file_size != expected:
            raise NetworkLoadError(f"the file is damaged: {quote(name)} holds {info.file_size:,} bytes where "
                                   f"{expected:,} are declared")
        if info.file_size > most or info.compress_size > self.file_bytes:
            raise NetworkLoadError(f"refused to load: {quote(name)} declares {info.file_size:,} bytes")
        if info.file_size > limits.MAX_ZIP_RATIO * max(info.compress_size, 1) + 4096:
            raise NetworkLoadError(f"refused to load: {quote(name)} expands {info.compress_size:,} bytes to "
                                   f"{info.file_size:,} (a zip bomb)")
        self.bytes_left -= info.file_size
        if self.bytes_left < 0:
            raise NetworkLoadError("refused to load: the archive's records expand far beyond the file (a zip bomb)")
        try:
            with self.zip.open(info) as handle:
                raw = handle.read(info.file_size + 1)
        except Exception as error:
            raise NetworkLoadError(f"the file is truncated or damaged ({quote(name)}: {error})") from None
        if len(raw) != info.file_size:
            raise NetworkLoadError(f"the file is damaged: {quote(name)} holds other bytes than it declares")
        return raw


def load_torch_zip(data: bytes, allowed: Mapping[tuple[str, str], Callable | None]) -> Any:
    """The object torch.save wrote into the zip `data`, made only through `allowed`."""
    archive = _Archive(data)
    pickles = [name for name in archive.entries if name.endswith("data.pkl") and name.count("/") <= 1]
    if len(pickles) != 1:
        raise NetworkLoadError("a zip archive, but not one torch.save writes (no single data.pkl)")
    folder = pickles[0][:-len("data.pkl")]
    if folder + "byteorder" in archive.entries and archive.read(folder + "byteorder", most=16) != b"little":
        raise NetworkLoadError("refused to load: a big-endian checkpoint (only little-endian files are read)")
    storages: dict[str, StorageData] = {}

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[2], str)):
            raise NetworkLoadError(f"the file is damaged: storage id {quote(pid)}")
        key = pid[2]
        dtype, numel = storage_dtype(pid[1]), declared_count(pid[4], "a storage")
        if key not in storages:
            storage = StorageData(dtype, numel)
            size = numel * torch.empty(0, dtype=dtype).element_size()
            storage.fill(archive.read(f"{folder}data/{key}", expected=size))
            storages[key] = storage
        if (storages[key].dtype, storages[key].numel) != (dtype, numel):
            raise NetworkLoadError("the file is damaged: one storage declared twice, differently")
        return storages[key]

    budget = Budget()
    token = current_budget.set(budget)
    try:
        pickled = archive.read(pickles[0], most=MAX_PICKLE_RECORD)
        return PickleMachine(pickled, allowed, persistent_load=persistent_load, budget=budget).load()
    finally:
        current_budget.reset(token)
