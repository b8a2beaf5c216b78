"""NVlabs PyTorch pickles (stylegan2-ada-pytorch, stylegan3), loaded without running the source inside them.

Every network in such a pickle is a "persistent" object: pickle rebuilds it by calling
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where meta holds the whole source file of the
training code (`module_src`), the bare class name and the object's `__dict__`. NVlabs' loader executes
`module_src`. We never do: the meta becomes a `PersistentRecord`, the family is recognised from the recorded
module tree, and our own modules are built from the recorded constructor kwargs and filled with the recorded
parameters and buffers.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from .assemble import build_network
from .discriminators import build_discriminator, nvlabs_discriminator_kwargs, read_discriminator
from .errors import NetworkLoadError, quote
from .loaded import LoadedNetwork
from .pickle_machine import Record
from .restricted_pickle import DATA_GLOBALS, restricted_load

PERSISTENT_GLOBAL = ("torch_utils.persistence", "_reconstruct_persistent_obj")

# Positional constructor arguments of NVlabs' Generator, for files whose init_args are not empty.
GENERATOR_ARG_NAMES = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
# StyleGAN-Human's Generator takes `square` between img_resolution and img_channels.
HUMAN_GENERATOR_ARG_NAMES = ("z_dim", "c_dim", "w_dim", "img_resolution", "square", "img_channels")
HUMAN_BASE_SHAPE = (4, 2)   # its rectangular networks are twice as tall as wide


class PersistentRecord(Record):
    """A persistent object as plain data: class name, constructor arguments and its module's state."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def children(self) -> tuple:
        return (self.state,)

    def _table(self, key: str) -> dict:
        value = self.state.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise NetworkLoadError(f"the {self.class_name} in this pickle has a damaged {key} ({quote(value)})")
        return value

    @property
    def init_args(self) -> tuple:
        value = self.state.get("_init_args", ())
        if not isinstance(value, (tuple, list)):
            raise NetworkLoadError(f"the {self.class_name} in this pickle has damaged constructor arguments")
        return tuple(value)

    @property
    def init_kwargs(self) -> dict:
        return dict(self._table("_init_kwargs"))

    @property
    def modules(self) -> dict:
        return dict(self._table("_modules"))


def _record_persistent(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise NetworkLoadError("this pickle's persistent object record is not one NVlabs' code writes")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise NetworkLoadError(f"the persistent {quote(meta['class_name'])} in this pickle has no readable state")
    return PersistentRecord(meta["class_name"], state)


ALLOWED_GLOBALS = {**DATA_GLOBALS, PERSISTENT_GLOBAL: _record_persistent}


def collect_tensors(record: PersistentRecord, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
    """The record's parameters and buffers, and its submodules', under state-dict names."""
    tensors: OrderedDict[str, torch.Tensor] = OrderedDict()
    skip = record.state.get("_non_persistent_buffers_set") or ()
    if not isinstance(skip, (set, frozenset, list, tuple)):
        raise NetworkLoadError(f"module {prefix or 'G'} in this pickle has a damaged buffer list")
    for kind in ("_parameters", "_buffers"):
        for name, value in record._table(kind).items():
            if value is None or name in skip:
                continue
            if not isinstance(value, torch.Tensor):
                raise NetworkLoadError(f"{prefix}{quote(name)} in this pickle is not a tensor")
            tensors[f"{prefix}{name}"] = value.detach()
    for name, sub in record.modules.items():
        if sub is None:
            continue
        if not isinstance(sub, PersistentRecord):
            raise NetworkLoadError(f"module {prefix}{quote(name)} in this pickle is not a network module we can read")
        tensors.update(collect_tensors(sub, f"{prefix}{name}."))
    return tensors


def detect_family(record: PersistentRecord) -> tuple[str, str]:
    """(family, code base) recognised from the recorded module tree and kwargs, not from the source."""
    synthesis = record.modules.get("synthesis")
    if not isinstance(synthesis, PersistentRecord):
        raise NetworkLoadError(f"the {record.class_name} in this pickle has no synthesis network")
    submodules = synthesis.modules
    if isinstance(submodules.get("input"), PersistentRecord) and submodules["input"].class_name == "SynthesisInput":
        return "stylegan3", "stylegan3"
    if isinstance(submodules.get("b4"), PersistentRecord):
        code_base = "stylegan2-ada-pytorch" if "synthesis_kwargs" in record.init_kwargs else "stylegan3"
        return "stylegan2", code_base
    names = ", ".join(str(name) for name in list(submodules)[:8])
    raise NetworkLoadError(f"unrecognised synthesis network layout (modules: {names or 'none'})")


def generator_config(record: PersistentRecord) -> dict:
    """Constructor kwargs in our flat form: stylegan2-ada-pytorch nests synthesis kwargs, stylegan3 does not."""
    names = HUMAN_GENERATOR_ARG_NAMES if "square" in record.state else GENERATOR_ARG_NAMES
    kwargs = dict(zip(names, record.init_args))
    kwargs.update(record.init_kwargs)
    nested = kwargs.pop("synthesis_kwargs", None) or {}
    if not isinstance(nested, dict):
        raise NetworkLoadError(f"the generator's synthesis_kwargs are not a table ({quote(nested)})")
    kwargs.update(nested)
    kwargs["mapping_kwargs"] = kwargs.get("mapping_kwargs") or {}
    # StyleGAN-Human's fork of stylegan2-ada-pytorch: square=False starts the synthesis from a 4x2 constant.
    square = kwargs.pop("square", True)
    if square is not True:
        if square is not False:
            raise NetworkLoadError(f"the setting square={quote(square)} is not valid: it must be True or False")
        kwargs["base_shape"] = list(HUMAN_BASE_SHAPE)
    return _plain(kwargs)


def _plain(value):
    """EasyDicts and tuples to plain dicts and lists, numpy scalars to numbers (the data is bounded in depth)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rectangular_base(config: dict, tensors: dict) -> None:
    """A StyleGAN2 fork whose first constant is not square (and that records no setting saying so): the
    constant's shape gives the network's base_shape."""
    const = tensors.get("synthesis.b4.const")
    if "base_shape" not in config and isinstance(const, torch.Tensor) and const.dim() == 3 and \
            const.shape[1] != const.shape[2]:
        config["base_shape"] = list(const.shape[1:])


def build_from_record(record: PersistentRecord):
    family, code_base = detect_family(record)
    config, tensors = generator_config(record), collect_tensors(record)
    if family == "stylegan3" and "base_shape" in config:
        raise NetworkLoadError("StyleGAN-Human's rectangular StyleGAN3 pickle: not supported yet (its StyleGAN2 "
                               "pickles are)")
    if family == "stylegan2":
        _rectangular_base(config, tensors)
        if "square" in record.init_kwargs or "square" in record.state:
            code_base = "StyleGAN-Human (stylegan2-ada-pytorch fork)"
    generator = build_network(family, config, tensors, what=f"{family} weights in this pickle")
    return generator, family, code_base


def nvlabs_discriminator(record, code_base: str = "stylegan3"):
    """The Discriminator of the D entry of an NVlabs snapshot (code_base: the generator's)."""
    if not isinstance(record, PersistentRecord):
        raise NetworkLoadError(f"the D entry is a {type(record).__name__}, not a network")
    if record.class_name != "Discriminator":
        raise NetworkLoadError(f"the D entry is a {quote(record.class_name)}, not NVlabs' Discriminator")
    kwargs = nvlabs_discriminator_kwargs(record.init_args, record.init_kwargs, code_base)
    return build_discriminator(kwargs, collect_tensors(record), "discriminator weights in this pickle")


def load_nvlabs_pickle(data: bytes, path: Path) -> LoadedNetwork:
    obj = restricted_load(data, ALLOWED_GLOBALS)
    notes = []
    if isinstance(obj, dict):
        if isinstance(obj.get("G_ema"), PersistentRecord):
            picked = "G_ema"
        elif isinstance(obj.get("G"), PersistentRecord):
            # Without an EMA copy the raw training generator is all there is; say so.
            picked = "G"
            notes.append("this file has no G_ema: using its training generator G")
        else:
            raise NetworkLoadError("this NVlabs pickle holds no generator (no G_ema or G entry)")
        record = obj[picked]
    elif isinstance(obj, PersistentRecord):
        picked, record = obj.class_name, obj
    else:
        raise NetworkLoadError("this pickle is not an NVlabs network snapshot")
    if record.class_name != "Generator":
        raise NetworkLoadError(f"the {picked} entry is a {quote(record.class_name)}, not a Generator")
    generator, family, code_base = build_from_record(record)
    detail = f"{family} from the {code_base} code base, entry {picked}"
    discriminator = None
    if isinstance(obj, dict) and obj.get("D") is not None:
        discriminator = read_discriminator(lambda: nvlabs_discriminator(obj["D"], code_base), notes)
        if discriminator is not None:
            detail += ", with its discriminator D"
    return LoadedNetwork(generator, "nvlabs-pickle", str(path), detail, tuple(notes), discriminator=discriminator)
