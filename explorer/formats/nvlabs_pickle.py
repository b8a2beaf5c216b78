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
from dataclasses import dataclass

import torch

from ..networks import build_generator
from .errors import NetworkLoadError
from .restricted_pickle import DATA_GLOBALS, restricted_load

PERSISTENT_GLOBAL = ("torch_utils.persistence", "_reconstruct_persistent_obj")

# Positional constructor arguments of NVlabs' Generator, for files whose init_args are not empty.
GENERATOR_ARG_NAMES = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


@dataclass
class PersistentRecord:
    """A persistent object as plain data: class name, constructor arguments and its module's state."""
    class_name: str
    version: int
    state: dict
    module_src_lines: int

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args", ()))

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs", {}))

    @property
    def modules(self) -> dict:
        return dict(self.state.get("_modules", {}))


def _record_persistent(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class" or "class_name" not in meta:
        raise NetworkLoadError("this pickle's persistent object record is not one NVlabs' code writes")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise NetworkLoadError(f"the persistent {meta['class_name']} in this pickle has no readable state")
    return PersistentRecord(class_name=str(meta["class_name"]), version=int(meta.get("version", 0)), state=state,
                            module_src_lines=str(meta.get("module_src", "")).count("\n"))


ALLOWED_GLOBALS = {**DATA_GLOBALS, PERSISTENT_GLOBAL: _record_persistent}


def collect_tensors(record: PersistentRecord, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
    """The record's parameters and buffers, and its submodules', under state-dict names."""
    tensors: OrderedDict[str, torch.Tensor] = OrderedDict()
    state = record.state
    skip = set(state.get("_non_persistent_buffers_set", ()) or ())
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is not None and name not in skip:
                tensors[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else value
    for name, sub in (state.get("_modules") or {}).items():
        if sub is None:
            continue
        if not isinstance(sub, PersistentRecord):
            raise NetworkLoadError(f"module {prefix + name} in this pickle is not a network module we can read")
        tensors.update(collect_tensors(sub, prefix + name + "."))
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
    raise NetworkLoadError(f"unrecognised synthesis network layout (modules: {', '.join(submodules) or 'none'})")


def generator_config(record: PersistentRecord) -> dict:
    """Constructor kwargs in our flat form: stylegan2-ada-pytorch nests synthesis kwargs, stylegan3 does not."""
    kwargs = dict(zip(GENERATOR_ARG_NAMES, record.init_args))
    kwargs.update(record.init_kwargs)
    nested = kwargs.pop("synthesis_kwargs", None) or {}
    kwargs.update(dict(nested))
    kwargs["mapping_kwargs"] = dict(kwargs.get("mapping_kwargs") or {})
    return _plain(kwargs)


def _plain(value):
    """EasyDicts and tuples to plain dicts and lists, so the config can be written as JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def build_from_record(record: PersistentRecord):
    family, code_base = detect_family(record)
    config = generator_config(record)
    try:
        generator = build_generator(family, config)
    except TypeError as error:
        raise NetworkLoadError(f"this {family} generator has constructor arguments we do not support: {error}")
    tensors = collect_tensors(record)
    result = generator.load_state_dict(tensors, strict=False)
    if result.missing_keys or result.unexpected_keys:
        problems = [f"missing {k}" for k in result.missing_keys[:3]] + [f"unexpected {k}" for k in
                                                                          result.unexpected_keys[:3]]
        raise NetworkLoadError(f"the {family} weights in this pickle do not fit its recorded configuration: "
                               + "; ".join(problems))
    return generator.eval().requires_grad_(False), family, code_base


@dataclass
class PickleContents:
    generator: torch.nn.Module
    family: str
    code_base: str
    picked: str          # which entry of the file was used, e.g. 'G_ema'
    notes: list


def load_nvlabs_pickle(data: bytes) -> PickleContents:
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
        raise NetworkLoadError(f"the {picked} entry is a {record.class_name}, not a Generator")
    generator, family, code_base = build_from_record(record)
    return PickleContents(generator, family, code_base, picked, notes)
