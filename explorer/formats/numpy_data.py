"""numpy arrays, scalars and dtypes in pickles, made from their recorded bytes and nothing else.

An ndarray pickles as `_reconstruct(ndarray, (0,), b'b')` followed by BUILD with (version, shape, dtype,
is_fortran, raw bytes); a dtype as `dtype('f4', False, True)` followed by BUILD with its byte order; a scalar as
`scalar(dtype, raw bytes)`. Only numeric dtypes pass (never object arrays), and the shape must describe exactly
the bytes the file holds, checked before anything is allocated.
"""
from __future__ import annotations

import math

import numpy as np

from . import limits
from .errors import NetworkLoadError, quote
from .pickle_machine import GlobalRef, Record

# dtype spellings a network file uses: floats, integers, booleans.
NUMERIC_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}
BYTE_ORDERS = {"<", ">", "|", "="}


class DtypeRecord(Record):
    """numpy.dtype(spec, align, copy), its byte order set by BUILD."""

    def __init__(self, spec, align=False, copy=False):
        if not isinstance(spec, str) or spec not in NUMERIC_DTYPES:
            raise NetworkLoadError(f"refused to load: numpy dtype {quote(spec)} (only numbers are allowed)")
        self.spec = spec
        self.byte_order = "="

    def set_state(self, state) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or not isinstance(state[1], str) or \
                state[1] not in BYTE_ORDERS:
            raise NetworkLoadError(f"the file is damaged: numpy dtype state {quote(state)}")
        self.byte_order = state[1]

    @property
    def dtype(self) -> np.dtype:
        dtype = np.dtype(self.spec)
        return dtype.newbyteorder(self.byte_order) if self.byte_order in "<>" else dtype


def _check_shape(shape) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > limits.MAX_TENSOR_DIMS or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= limits.MAX_TENSOR_ELEMENTS for n in shape):
        raise NetworkLoadError(f"the file is damaged: array shape {quote(shape)}")
    if math.prod(shape) > limits.MAX_TENSOR_ELEMENTS:
        raise NetworkLoadError(f"refused to load: an array of shape {list(shape)} is larger than any network's")
    return shape


class ArrayRecord(Record):
    """numpy.core.multiarray._reconstruct(ndarray, ...): the array is made when BUILD brings its bytes."""

    def __init__(self, subtype, shape, dtype):
        if not (isinstance(subtype, GlobalRef) and subtype.key == ("numpy", "ndarray")):
            raise NetworkLoadError(f"refused to load: numpy array subtype {quote(subtype)}")
        self.array: np.ndarray | None = None

    def set_state(self, state) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise NetworkLoadError(f"the file is damaged: numpy array state {quote(state)}")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, DtypeRecord):
            raise NetworkLoadError(f"refused to load: numpy array of dtype {quote(dtype)}")
        shape = _check_shape(shape)
        if isinstance(raw, str):   # protocol 2 spells bytes as latin-1 text
            raw = raw.encode("latin-1")
        if not isinstance(raw, (bytes, bytearray)):
            raise NetworkLoadError("the file is damaged: a numpy array without its bytes")
        expected = math.prod(shape) * dtype.dtype.itemsize
        if len(raw) != expected:
            raise NetworkLoadError(f"the file is damaged: a numpy array of shape {list(shape)} needs {expected:,} "
                                   f"bytes and has {len(raw):,}")
        array = np.frombuffer(raw, dtype=dtype.dtype).reshape(shape, order="F" if fortran else "C")
        self.array = array.astype(array.dtype.newbyteorder("="), copy=True)

    def value(self) -> np.ndarray:
        if self.array is None:
            raise NetworkLoadError("the file is damaged: a numpy array without its data")
        return self.array


def from_buffer(raw, dtype, shape, order="C"):
    """numpy.core.numeric._frombuffer, how protocol 5 pickles an array: its bytes, dtype, shape and order."""
    if not isinstance(dtype, DtypeRecord) or not isinstance(raw, (bytes, bytearray)) or order not in ("C", "F"):
        raise NetworkLoadError(f"refused to load: numpy array of {quote(dtype)} from {type(raw).__name__}")
    shape = _check_shape(tuple(shape) if isinstance(shape, list) else shape)
    expected = math.prod(shape) * dtype.dtype.itemsize
    if len(raw) != expected:
        raise NetworkLoadError(f"the file is damaged: a numpy array of shape {list(shape)} needs {expected:,} "
                               f"bytes and has {len(raw):,}")
    array = np.frombuffer(bytes(raw), dtype=dtype.dtype).reshape(shape, order=order)
    return array.astype(array.dtype.newbyteorder("="), copy=True)


def make_scalar(dtype, raw=None):
    if not isinstance(dtype, DtypeRecord) or not isinstance(raw, (bytes, bytearray, str)):
        raise NetworkLoadError(f"refused to load: numpy scalar of {quote(dtype)}")
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if len(raw) != dtype.dtype.itemsize:
        raise NetworkLoadError(f"the file is damaged: a numpy {dtype.spec} scalar of {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype.dtype, count=1)[0]


def as_array(value) -> np.ndarray:
    """An array from what a pickle holds for one: an array record, a numpy scalar or a plain number."""
    if isinstance(value, ArrayRecord):
        return value.value()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (np.generic, int, float)) and not isinstance(value, bool):
        return np.asarray(value)
    raise NetworkLoadError(f"the file is damaged: {quote(value)} where an array should be")


def _dtype_class(spec: str):
    """numpy.dtypes.Float32DType and its kin, called without arguments: the dtype they stand for."""
    def make():
        return DtypeRecord(spec)
    return make


NUMPY_GLOBALS: dict = {("numpy", "ndarray"): None, ("numpy", "dtype"): DtypeRecord}
for _core in ("numpy.core", "numpy._core"):
    NUMPY_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = ArrayRecord
    NUMPY_GLOBALS[(f"{_core}.multiarray", "scalar")] = make_scalar
    NUMPY_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = from_buffer
for _name, _spec in (("Float64DType", "f8"), ("Float32DType", "f4"), ("Float16DType", "f2"), ("Int64DType", "i8"),
                     ("Int32DType", "i4"), ("UInt8DType", "u1"), ("BoolDType", "b1")):
    NUMPY_GLOBALS[("numpy.dtypes", _name)] = _dtype_class(_spec)
