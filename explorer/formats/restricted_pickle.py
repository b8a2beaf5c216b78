"""The globals plain data needs in every pickled network format, each mapped to a stand-in of our own.

Network pickles name globals (the functions and classes pickle calls to rebuild objects). A stock unpickler
imports and calls whatever a file names, so a pickle can run `os.system`. Here each (module, name) pair must be
in the loader's table, which maps it to a harmless stand-in; anything else stops the load with an error that
names the global, before it is called (see pickle_machine for what else is bounded and refused).
"""
from __future__ import annotations

import collections
from typing import Any, Callable, Mapping

from .errors import NetworkLoadError, quote
from .numpy_data import NUMPY_GLOBALS
from .pickle_machine import Budget, ForbiddenGlobal, PickleMachine, Record, check_key
from .tensor_data import TENSOR_GLOBALS, current_budget

__all__ = ["DATA_GLOBALS", "EasyDict", "ForbiddenGlobal", "PlainOrderedDict", "restricted_load"]


class EasyDict(dict):
    """Stand-in for dnnlib's EasyDict: a dict whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PlainOrderedDict(collections.OrderedDict, Record):
    """collections.OrderedDict; a state dict's BUILD (its `_metadata` of module versions) is read and dropped."""

    def set_state(self, state) -> None:
        if not isinstance(state, dict):
            raise NetworkLoadError(f"the file is damaged: an OrderedDict state {quote(state)}")


def _latin1_bytes(text, encoding="latin1"):
    # Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1'); only that spelling is accepted.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise NetworkLoadError(f"refused to load: _codecs.encode of {quote(text)} with {quote(encoding)}")
    return text.encode("latin1")


def _plain_items(items) -> list:
    items = list(items) if isinstance(items, (list, tuple, set, frozenset)) else None
    if items is None:
        raise NetworkLoadError("the file is damaged: a set made from something that is not a list")
    for item in items:
        check_key(item)
    return items


def _plain_pairs(pairs) -> list:
    if isinstance(pairs, dict):
        return list(pairs.items())   # its keys were checked when the pickle machine made it
    if not isinstance(pairs, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise NetworkLoadError("the file is damaged: a table made from something that is not key-value pairs")
    for key, _ in pairs:
        check_key(key)
    return list(pairs)


def _make_set(items=()):
    return set(_plain_items(items))


def _make_frozenset(items=()):
    return frozenset(_plain_items(items))


def _ordered_dict(pairs=()):
    return PlainOrderedDict(_plain_pairs(pairs))


def _easydict(pairs=()):
    return EasyDict(_plain_pairs(pairs))


# Globals that carry plain data (tensors, arrays, containers) in every network file format.
DATA_GLOBALS: dict[tuple[str, str], Callable | None] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _make_set,
    ("builtins", "frozenset"): _make_frozenset,
    ("_codecs", "encode"): _latin1_bytes,
    ("dnnlib.util", "EasyDict"): _easydict,
    ("dnnlib", "EasyDict"): _easydict,
    **TENSOR_GLOBALS,
    **NUMPY_GLOBALS,
}


def restricted_load(data: bytes, allowed: Mapping[tuple[str, str], Callable | None]) -> Any:
    """The value pickled in `data`, made only through `allowed`; NetworkLoadError (one line) otherwise."""
    budget = Budget()
    token = current_budget.set(budget)
    try:
        return PickleMachine(data, allowed, budget=budget).load()
    finally:
        current_budget.reset(token)
