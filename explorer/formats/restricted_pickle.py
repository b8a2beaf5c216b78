"""An unpickler that runs nothing a file asks for: every global is looked up in an allowlist.

Network pickles name globals (the functions and classes pickle calls to rebuild objects). A stock unpickler
imports and calls whatever a file names, so a pickle can run `os.system`. Here each (module, name) pair must be
in the loader's table, which maps it to a harmless stand-in of our own; anything else stops the load with an
error that names the global, before it is called.
"""
from __future__ import annotations

import collections
import io
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch


class ForbiddenGlobal(pickle.UnpicklingError):
    """The file asked for a global that is not on the loader's allowlist."""

    def __init__(self, module: str, name: str):
        super().__init__(f"refused to load: the file asks for '{module}.{name}', which is not allowed "
                         f"(nothing from the file was run)")
        self.module, self.name = module, name


class EasyDict(dict):
    """Stand-in for dnnlib's EasyDict: a dict whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _safe_load_from_bytes(data: bytes):
    # The stock torch.storage._load_from_bytes calls torch.load without weights_only: a nested unpickler that
    # would run what the bytes ask. weights_only=True restricts it to tensors and storages.
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        # torch's message advises retrying without weights_only: exactly what must not happen. Name the global.
        found = re.search(r"GLOBAL ([\w.]+)\.(\w+)", str(error))
        if found:
            raise ForbiddenGlobal(found.group(1), found.group(2)) from None
        raise pickle.UnpicklingError("a tensor record inside the file is damaged or not tensor data") from None


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    return torch.nn.Parameter(data, requires_grad=requires_grad)


def _numpy_reconstruct(subtype, shape, dtype):
    # ndarray pickles as _reconstruct(ndarray, (0,), b'b') followed by __setstate__; only plain ndarrays pass.
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refused to load: numpy array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_scalar(dtype, data=None):
    if dtype.hasobject:
        raise pickle.UnpicklingError("refused to load: numpy object scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(obj, align=False, copy=False):
    dtype = np.dtype(obj, align=align)
    if dtype.hasobject:
        raise pickle.UnpicklingError("refused to load: numpy object dtype")
    return dtype


def _latin1_bytes(text, encoding="latin1"):
    # Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1'); only that spelling is accepted.
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused to load: _codecs.encode with {encoding!r}")
    return str(text).encode("latin1")


def _make_set(items=()):
    return set(items)


def _make_frozenset(items=()):
    return frozenset(items)


# Globals that carry plain data (tensors, arrays, containers) in every network file format.
DATA_GLOBALS: dict[tuple[str, str], Callable] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): _make_set,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "frozenset"): _make_frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _safe_load_from_bytes,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
}
for _numpy_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    DATA_GLOBALS[(_numpy_core, "_reconstruct")] = _numpy_reconstruct
    DATA_GLOBALS[(_numpy_core, "scalar")] = _numpy_scalar
DATA_GLOBALS[("numpy", "ndarray")] = np.ndarray
DATA_GLOBALS[("numpy", "dtype")] = _numpy_dtype
for _dtype_class in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "UInt8DType",
                     "BoolDType"):
    DATA_GLOBALS[("numpy.dtypes", _dtype_class)] = getattr(np.dtypes, _dtype_class)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals only through `allowed`; persistent ids (torch.save's zip layout) are refused."""

    def __init__(self, file, allowed: Mapping[tuple[str, str], Callable]):
        super().__init__(file)
        self.allowed = dict(allowed)

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(module, name) from None


def restricted_load(data: bytes, allowed: Mapping[tuple[str, str], Callable]) -> Any:
    return RestrictedUnpickler(io.BytesIO(data), allowed).load()


@dataclass
class ClassRecord:
    """A pickled object of a class we do not run: its recorded name and state, as plain data."""
    module: str
    name: str
    args: tuple = ()
    state: Any = None
    extra: dict = field(default_factory=dict)

    def __setstate__(self, state):
        # pickle's BUILD opcode lands here for objects made through a record factory.
        self.state = state


def record_factory(module: str, name: str) -> Callable:
    """A callable standing in for a class: calling it (pickle's REDUCE/NEWOBJ) makes a ClassRecord."""

    def make(*args):
        return ClassRecord(module, name, args)

    make.__name__ = name
    return make
