"""The original TensorFlow pickles of StyleGAN (2019) and StyleGAN2 / StyleGAN2-ADA, read without TensorFlow.

Such a file is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects; Gs (the moving average) is the one
to explore. Each network pickles as a state dict: version, name, static_kwargs, components (sub-networks,
keyed 'mapping' / 'synthesis'), build_module_src (the TF source, never executed here), build_func_name and
variables [(name, ndarray)]. The pickle machine makes each Network a `TFNetworkRecord`; the variables are then
mapped by name onto our modules by the family's conversion (tf_stylegan1, tf_stylegan2).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from . import limits, tf_stylegan1, tf_stylegan2
from .assemble import build_network
from .configs import integer, number, optional, power_of_two
from .errors import NetworkLoadError, quote
from .loaded import LoadedNetwork
from .numpy_data import as_array
from .pickle_machine import Record
from .restricted_pickle import DATA_GLOBALS, restricted_load


class TFNetworkRecord(Record):
    """A TF Network's pickled state as plain data, each field checked when BUILD brings it."""

    def __init__(self, *args):
        if args:
            raise NetworkLoadError("the file is damaged: a TensorFlow network made with arguments")
        self.version, self.name, self.build_func_name = None, "", ""
        self.static_kwargs: dict = {}
        self.components: dict = {}
        self.variables: list[tuple[str, np.ndarray]] = []

    def set_state(self, state) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("variables"), list):
            raise NetworkLoadError("a TensorFlow network record without variables")
        self.version = state.get("version")
        self.name = _text(state.get("name", ""), "network name")
        self.build_func_name = _text(state.get("build_func_name", ""), "build function name")
        self.static_kwargs = _table(state.get("static_kwargs"), "settings")
        self.components = _table(state.get("components"), "components")
        variables = []
        for item in state["variables"]:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
                raise NetworkLoadError(f"the file is damaged: TensorFlow variable {quote(item)}")
            variables.append((item[0], as_array(item[1])))
        self.variables = variables

    def children(self) -> tuple:
        return self.static_kwargs, self.components


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise NetworkLoadError(f"the file is damaged: TensorFlow {what} {quote(value)}")
    return value


def _table(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise NetworkLoadError(f"the file is damaged: TensorFlow network {what} {quote(value)}")
    return dict(value)


ALLOWED_GLOBALS = {**DATA_GLOBALS, ("dnnlib.tflib.network", "Network"): TFNetworkRecord}

# Static kwargs that only concern training, graph building or default call arguments: the weights mean the same
# whatever they say, so an unknown one of these is noted, not refused.
NEUTRAL_KWARGS = {
    "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob",
    "structure", "resolution_w", "resolution_h", "is_training", "is_validation", "is_template_graph",
    "components", "dtype", "randomize_noise", "force_clean_graph", "dlatent_avg_beta", "w_avg_beta",
    "fused_modconv", "return_dlatents", "func_name", "mapping_func", "synthesis_func", "num_fp16_res",
}
UNNOTED_KWARGS = {"truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure"}
# The numeric settings both families share, checked before any is computed with.
NUMERIC_KWARGS = {
    "latent_size": integer(1, limits.MAX_LATENT_DIM), "dlatent_size": integer(1, limits.MAX_LATENT_DIM),
    "label_size": integer(0, limits.MAX_CLASSES), "resolution": power_of_two(4, limits.MAX_RESOLUTION),
    "num_channels": integer(1, limits.MAX_IMG_CHANNELS), "mapping_layers": integer(1, limits.MAX_MAPPING_LAYERS),
    "mapping_fmaps": optional(integer(1, limits.MAX_LATENT_DIM)),
    "label_fmaps": optional(integer(1, limits.MAX_LATENT_DIM)), "mapping_lrmul": number(0, 1e3, low_open=True),
    "fmap_base": number(1, limits.MAX_CHANNEL_BASE), "fmap_decay": number(0, 4),
    "fmap_min": integer(1, limits.MAX_CHANNELS), "fmap_max": integer(1, limits.MAX_CHANNELS),
}
# The prefixes sub-network variables carry when a file lists them under the top network (the networks' own
# names), mapped to the component keys they have otherwise.
COMPONENT_PREFIXES = {"G_mapping/": "mapping/", "G_synthesis/": "synthesis/"}
FAMILIES = {"stylegan": tf_stylegan1, "stylegan2": tf_stylegan2}


def collect_variables(network: TFNetworkRecord, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a network and its components, named 'mapping/Dense0/weight', 'synthesis/4x4/...'.

    Component keys and sub-network names differ between files ('mapping' vs 'G_mapping'); both map to the key.
    (The loaded data is acyclic and shallow: the pickle machine checked it.)"""
    variables = {}
    for name, value in network.variables:
        for long, short in COMPONENT_PREFIXES.items():
            if name.startswith(long):
                name = short + name[len(long):]
        variables[prefix + name] = value
    for key, component in network.components.items():
        key = re.sub(r"^G_", "", key)
        if isinstance(component, TFNetworkRecord):
            variables.update(collect_variables(component, prefix + key + "/"))
    return variables


def _check_lod(variables: dict) -> None:
    """A network saved during progressive growing (lod > 0) blends in lower-resolution outputs: refuse it."""
    for name in ("lod", "synthesis/lod"):
        if name in variables:
            values = variables[name].reshape(-1)
            if values.size != 1 or not np.issubdtype(values.dtype, np.number):
                raise NetworkLoadError(f"the file is damaged: {name} is not one number")
            if float(values[0]) != 0:
                raise NetworkLoadError(f"this network was saved during progressive growing ({name} = "
                                       f"{float(values[0]):g}); only finished networks (lod 0) are supported")


def _static_kwargs(Gs: TFNetworkRecord) -> dict:
    """Gs's settings; the sub-networks get the same ones from Gs at build time, which a file may list only there."""
    kwargs = {}
    for component in Gs.components.values():
        if isinstance(component, TFNetworkRecord):
            kwargs.update(component.static_kwargs)
    kwargs.pop("dlatent_broadcast", None)   # set by the top network for its mapping: always num_ws
    kwargs.update(Gs.static_kwargs)
    for name, check in NUMERIC_KWARGS.items():
        if kwargs.get(name) is not None:
            kwargs[name] = check(name, kwargs[name])
    return kwargs


def _tensors(state: dict) -> dict[str, torch.Tensor]:
    tensors = {}
    for name, value in state.items():
        if not np.issubdtype(value.dtype, np.number) and value.dtype != np.bool_:
            raise NetworkLoadError(f"the file is damaged: {name} is not numbers")
        tensors[name] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))   # keeps 0-d arrays 0-d
    return tensors


def load_tf_pickle(data: bytes, path: Path) -> LoadedNetwork:
    obj = restricted_load(data, ALLOWED_GLOBALS)
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetworkRecord) for n in obj)):
        raise NetworkLoadError("a TensorFlow pickle, but not the (G, D, Gs) tuple of networks StyleGAN writes")
    Gs = obj[2]
    if type(Gs.version) is not int or Gs.version not in (2, 3, 4):
        raise NetworkLoadError(f"TensorFlow network pickle version {quote(Gs.version)} is not supported (2 to 4 are)")
    variables = collect_variables(Gs)
    _check_lod(variables)
    kwargs = _static_kwargs(Gs)
    synthesis = Gs.components.get("synthesis") or Gs.components.get("G_synthesis")
    synthesis_func = synthesis.build_func_name if isinstance(synthesis, TFNetworkRecord) else ""
    is_stylegan1 = (any(name.endswith("/StyleMod/weight") for name in variables) or
                    Gs.build_func_name.endswith("G_style"))
    family = "stylegan" if is_stylegan1 else "stylegan2"
    conversion = FAMILIES[family]
    unknown = sorted(set(kwargs) - conversion.KWARGS - NEUTRAL_KWARGS)
    if unknown:
        raise NetworkLoadError(f"this {family} TensorFlow pickle has settings that change the network and that this "
                               f"explorer does not know: {', '.join(unknown)}")
    notes = tuple(f"ignored the setting {name}={quote(kwargs[name])} (it does not change the network)"
                  for name in sorted(set(kwargs) & NEUTRAL_KWARGS - UNNOTED_KWARGS))
    try:
        config = conversion.config(kwargs, variables)
    except (TypeError, ValueError, OverflowError) as error:
        raise NetworkLoadError(f"the {family} TensorFlow network's settings are not valid ({error})") from None
    try:
        state = conversion.state(variables, config)
    except KeyError as error:
        raise NetworkLoadError(f"the {family} TensorFlow network lacks the variable {error.args[0]}") from None
    except (ValueError, IndexError) as error:   # a variable of another rank than its name promises
        raise NetworkLoadError(f"the TensorFlow weights do not fit the network its settings describe: a variable "
                               f"has the wrong number of dimensions ({error})") from None
    generator = build_network(family, config, _tensors(state), what="TensorFlow weights",
                              optional=lambda name: name.endswith(("resample_filter", "blur_filter")))
    funcs = "/".join(name.rsplit(".", 1)[-1] for name in (Gs.build_func_name, synthesis_func) if name)
    detail = f"{family} ({funcs or Gs.name}), entry Gs"
    return LoadedNetwork(generator, "tf-pickle", str(path), detail, notes)
