"""The original TensorFlow pickles of StyleGAN (2019) and StyleGAN2 / StyleGAN2-ADA, read without TensorFlow.

Such a file is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects; Gs (the moving average) is the one
to explore. Each network pickles as a state dict: version, name, static_kwargs, components (sub-networks,
keyed 'mapping' / 'synthesis'), build_module_src (the TF source, never executed here), build_func_name and
variables [(name, ndarray)]. The restricted unpickler turns the Network global into `TFNetworkRecord`; the
variables are then mapped by name onto our modules.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..networks import build_generator
from .errors import NetworkLoadError
from .restricted_pickle import DATA_GLOBALS, restricted_load


class TFNetworkRecord:
    """A TF Network's pickled state as plain data."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or "variables" not in state:
            raise NetworkLoadError("a TensorFlow network record without variables")
        self.version = state.get("version")
        self.name = state.get("name", "")
        self.static_kwargs = dict(state.get("static_kwargs") or {})
        self.components = dict(state.get("components") or {})
        self.build_func_name = state.get("build_func_name", "")
        self.variables = list(state["variables"])


ALLOWED_GLOBALS = {**DATA_GLOBALS, ("dnnlib.tflib.network", "Network"): TFNetworkRecord}

# Static kwargs that only concern training, graph building or default call arguments: the weights mean the same
# whatever they say, so an unknown one of these is noted, not refused.
NEUTRAL_KWARGS = {
    "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob",
    "structure", "resolution_w", "resolution_h", "is_training", "is_validation", "is_template_graph",
    "components", "dtype", "randomize_noise", "force_clean_graph", "dlatent_avg_beta", "w_avg_beta",
    "fused_modconv", "return_dlatents", "func_name", "mapping_func", "synthesis_func", "num_fp16_res",
}
# The prefixes sub-network variables carry when a file lists them under the top network (the networks' own
# names), mapped to the component keys they have otherwise.
COMPONENT_PREFIXES = {"G_mapping/": "mapping/", "G_synthesis/": "synthesis/"}


def collect_variables(network: TFNetworkRecord, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a network and its components, named 'mapping/Dense0/weight', 'synthesis/4x4/...'.

    Component keys and sub-network names differ between files ('mapping' vs 'G_mapping'); both map to the key.
    """
    variables = {}
    for name, value in network.variables:
        name = str(name)
        for long, short in COMPONENT_PREFIXES.items():
            if name.startswith(long):
                name = short + name[len(long):]
        variables[prefix + name] = np.asarray(value)
    for key, component in network.components.items():
        key = re.sub(r"^G_", "", str(key))
        if isinstance(component, TFNetworkRecord):
            variables.update(collect_variables(component, prefix + key + "/"))
    return variables


def _kwarg(kwargs, name, default):
    value = kwargs.get(name, default)
    return default if value is None else value


def stylegan2_channels(kwargs: dict) -> dict:
    """Channel settings from TF's nf(stage) = clip(fmap_base / 2^(stage * fmap_decay), fmap_min, fmap_max), the
    block of resolution 2^r having nf(r - 1) channels; channel_base = 2 * fmap_base when fmap_decay is 1."""
    base, decay = _kwarg(kwargs, "fmap_base", 16384), _kwarg(kwargs, "fmap_decay", 1.0)
    least, most = _kwarg(kwargs, "fmap_min", 1), _kwarg(kwargs, "fmap_max", 512)
    log2 = int(np.log2(_kwarg(kwargs, "resolution", 1024)))
    table = {2 ** r: int(np.clip(int(base / (2.0 ** ((r - 1) * decay))), least, most)) for r in range(2, log2 + 1)}
    settings = dict(channel_base=base * 2, channel_max=most)
    if any(min(base * 2 // res, most) != count for res, count in table.items()):
        settings["channels"] = [table[res] for res in sorted(table)]
    return settings


def stylegan2_config(kwargs: dict, variables: dict) -> dict:
    architecture = _kwarg(kwargs, "architecture", "skip")
    if any(re.fullmatch(r"synthesis/ToRGB_lod\d+/.*", name) for name in variables):
        architecture = "orig"
    return dict(
        z_dim=_kwarg(kwargs, "latent_size", 512), c_dim=_kwarg(kwargs, "label_size", 0),
        w_dim=_kwarg(kwargs, "dlatent_size", 512), img_resolution=_kwarg(kwargs, "resolution", 1024),
        img_channels=_kwarg(kwargs, "num_channels", 3),
        mapping_kwargs=dict(num_layers=_kwarg(kwargs, "mapping_layers", 8),
                            embed_features=kwargs.get("label_fmaps"), layer_features=kwargs.get("mapping_fmaps"),
                            activation=_kwarg(kwargs, "mapping_nonlinearity", "lrelu"),
                            lr_multiplier=_kwarg(kwargs, "mapping_lrmul", 0.01)),
        **stylegan2_channels(kwargs), num_fp16_res=0, conv_clamp=kwargs.get("conv_clamp"), architecture=architecture,
        # resample_kernel None means no filtering in TF: a one-tap filter.
        resample_filter=list(kwargs.get("resample_kernel", [1, 3, 3, 1]) or [1]),
        activation=_kwarg(kwargs, "nonlinearity", "lrelu"), use_noise=_kwarg(kwargs, "use_noise", True))


STYLEGAN2_KWARGS = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
                    "label_fmaps", "mapping_fmaps", "mapping_nonlinearity", "mapping_lrmul", "fmap_base", "fmap_max",
                    "fmap_min", "fmap_decay", "conv_clamp", "architecture", "resample_kernel", "nonlinearity",
                    "use_noise"}


def stylegan2_state(variables: dict, config: dict) -> dict:
    """TF variable names and layouts -> ours: conv [kh, kw, in, out] -> [out, in, kh, kw], dense transposed,
    mod_bias + 1, and the upsampling convs' kernels (Conv0_up, Skip) flipped, as TF's transposed conv flips."""
    def conv(name, flip=False):
        w = variables[name]
        if flip:
            w = w[::-1, ::-1]
        return w.transpose(3, 2, 0, 1)

    state = {"mapping.w_avg": variables["dlatent_avg"]}
    if config["c_dim"]:
        state["mapping.embed.weight"] = variables["mapping/LabelEmbed/weight"].T
        state["mapping.embed.bias"] = variables["mapping/LabelEmbed/bias"]
    for i in range(config["mapping_kwargs"]["num_layers"]):
        state[f"mapping.fc{i}.weight"] = variables[f"mapping/Dense{i}/weight"].T
        state[f"mapping.fc{i}.bias"] = variables[f"mapping/Dense{i}/bias"]

    def layer(ours, tf, noise_index, flip=False):
        state[f"synthesis.{ours}.weight"] = conv(f"synthesis/{tf}/weight", flip)
        state[f"synthesis.{ours}.bias"] = variables[f"synthesis/{tf}/bias"]
        state[f"synthesis.{ours}.affine.weight"] = variables[f"synthesis/{tf}/mod_weight"].T
        state[f"synthesis.{ours}.affine.bias"] = variables[f"synthesis/{tf}/mod_bias"] + 1
        if config["use_noise"]:
            state[f"synthesis.{ours}.noise_strength"] = variables[f"synthesis/{tf}/noise_strength"]
            state[f"synthesis.{ours}.noise_const"] = variables[f"synthesis/noise{noise_index}"][0, 0]

    def torgb(res, tf):
        state[f"synthesis.b{res}.torgb.weight"] = conv(f"synthesis/{tf}/weight")
        state[f"synthesis.b{res}.torgb.bias"] = variables[f"synthesis/{tf}/bias"]
        state[f"synthesis.b{res}.torgb.affine.weight"] = variables[f"synthesis/{tf}/mod_weight"].T
        state[f"synthesis.b{res}.torgb.affine.bias"] = variables[f"synthesis/{tf}/mod_bias"] + 1

    resolution = config["img_resolution"]
    log2 = int(np.log2(resolution))
    state["synthesis.b4.const"] = variables["synthesis/4x4/Const/const"][0]
    layer("b4.conv1", "4x4/Conv", 0)
    for res in (2 ** i for i in range(2, log2 + 1)):
        if res > 4:
            layer(f"b{res}.conv0", f"{res}x{res}/Conv0_up", 2 * int(np.log2(res)) - 5, flip=True)
            layer(f"b{res}.conv1", f"{res}x{res}/Conv1", 2 * int(np.log2(res)) - 4)
            if config["architecture"] == "resnet":
                state[f"synthesis.b{res}.skip.weight"] = conv(f"synthesis/{res}x{res}/Skip/weight", flip=True)
        if config["architecture"] == "skip" or res == resolution:
            lod = log2 - int(np.log2(res))
            name = f"{res}x{res}/ToRGB" if f"synthesis/{res}x{res}/ToRGB/weight" in variables else f"ToRGB_lod{lod}"
            torgb(res, name)
    return state


def _check_lod(variables: dict) -> None:
    """A network saved during progressive growing (lod > 0) blends in lower-resolution outputs: refuse it."""
    for name in ("lod", "synthesis/lod"):
        if name in variables and float(np.asarray(variables[name]).reshape(-1)[0]) != 0:
            raise NetworkLoadError(f"this network was saved during progressive growing ({name} = "
                                   f"{float(np.asarray(variables[name]).reshape(-1)[0]):g}); only finished networks "
                                   f"(lod 0) are supported")


def _static_kwargs(Gs: TFNetworkRecord) -> dict:
    """Gs's settings; the sub-networks get the same ones from Gs at build time, which a file may list only there."""
    kwargs = {}
    for component in Gs.components.values():
        if isinstance(component, TFNetworkRecord):
            kwargs.update(component.static_kwargs)
    kwargs.pop("dlatent_broadcast", None)   # set by the top network for its mapping: always num_ws
    kwargs.update(Gs.static_kwargs)
    return kwargs


def load_tf_pickle(data: bytes, path: Path):
    from . import LoadedNetwork
    obj = restricted_load(data, ALLOWED_GLOBALS)
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetworkRecord) for n in obj)):
        raise NetworkLoadError("a TensorFlow pickle, but not the (G, D, Gs) tuple of networks StyleGAN writes")
    Gs = obj[2]
    if Gs.version not in (2, 3, 4):
        raise NetworkLoadError(f"TensorFlow network pickle version {Gs.version} is not supported (2 to 4 are)")
    variables = collect_variables(Gs)
    _check_lod(variables)
    kwargs = _static_kwargs(Gs)
    synthesis = Gs.components.get("synthesis") or Gs.components.get("G_synthesis")
    synthesis_func = getattr(synthesis, "build_func_name", "") or ""
    is_stylegan1 = (any(name.endswith("/StyleMod/weight") for name in variables) or
                    Gs.build_func_name.endswith("G_style"))
    family = "stylegan" if is_stylegan1 else "stylegan2"
    if is_stylegan1:
        from ..networks.stylegan1 import tf_config, tf_state, TF_KWARGS
        known, config_fn, state_fn = TF_KWARGS, tf_config, tf_state
    else:
        known, config_fn, state_fn = STYLEGAN2_KWARGS, stylegan2_config, stylegan2_state
    unknown = sorted(set(kwargs) - known - NEUTRAL_KWARGS)
    if unknown:
        raise NetworkLoadError(f"this {family} TensorFlow pickle has settings that change the network and that this "
                               f"explorer does not know: {', '.join(unknown)}")
    notes = [f"ignored the setting {name}={kwargs[name]!r} (it does not change the network)"
             for name in sorted(set(kwargs) & NEUTRAL_KWARGS - {"truncation_psi", "truncation_cutoff",
                                                                 "style_mixing_prob", "structure"})]
    config = config_fn(kwargs, variables)
    try:
        state = state_fn(variables, config)
    except KeyError as error:
        raise NetworkLoadError(f"the {family} TensorFlow network lacks the variable {error.args[0]}")
    try:
        generator = build_generator(family, config)
    except (ValueError, AssertionError) as error:
        raise NetworkLoadError(f"the {family} TensorFlow network's settings describe no network we can build: "
                               f"{error}")
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)) for name, value in state.items()}
    try:
        result = generator.load_state_dict(tensors, strict=False)
    except RuntimeError as error:   # a variable whose shape does not fit the settings
        mismatch = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error))
        raise NetworkLoadError(f"the TensorFlow weights do not fit the network its settings describe: {mismatch}")
    missing = [k for k in result.missing_keys if not k.endswith(("resample_filter", "blur_filter"))]
    if missing or result.unexpected_keys:
        raise NetworkLoadError(f"the TensorFlow weights do not fit the network they describe (missing {missing[:3]}, "
                               f"unexpected {result.unexpected_keys[:3]})")
    funcs = "/".join(name.rsplit(".", 1)[-1] for name in (Gs.build_func_name, synthesis_func) if name)
    detail = f"{family} ({funcs or Gs.name}), entry Gs"
    return LoadedNetwork(generator.eval().requires_grad_(False), "tf-pickle", str(path), detail, notes)
