"""Constructor arguments from a file, checked (types, ranges, derived sizes) before any network is built.

A file states its generator's settings; the network constructors trust them. A setting of the wrong type fails
only when rendering (`conv_clamp: "skip"`), an absurd one costs seconds or gigabytes while building
(`num_fp16_res` of -2^31, a resolution of 2^20). Every setting a family's constructor takes is listed here with
what it may be; anything else is refused by name. The result is the config with plain Python values.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from kernels import ACTIVATIONS

from . import limits
from .errors import NetworkLoadError, quote

Check = Callable[[str, object], object]


class SettingError(NetworkLoadError):
    pass


def _fail(name: str, value, wanted: str):
    raise SettingError(f"the setting {name}={quote(value)} is not valid: it must be {wanted}")


def _plain_number(value):
    if isinstance(value, np.generic) and value.ndim == 0 and value.dtype.kind in "iuf":
        return value.item()
    return value


def integer(low: int, high: int) -> Check:
    def check(name, value):
        value = _plain_number(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            _fail(name, value, f"a whole number from {low:,} to {high:,}")
        return value
    return check


def number(low: float, high: float, low_open: bool = False) -> Check:
    def check(name, value):
        value = _plain_number(value)
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not (low < value if low_open else low <= value) or value > high):
            _fail(name, value, f"a number above {low:g} and at most {high:g}" if low_open else
                  f"a number from {low:g} to {high:g}")
        return value if isinstance(value, int) else float(value)
    return check


def optional(inner: Check) -> Check:
    def check(name, value):
        return None if value is None else inner(name, value)
    return check


def choice(*options) -> Check:
    def check(name, value):
        for option in options:
            if type(value) is type(option) and value == option:
                return value
        _fail(name, value, "one of " + ", ".join(map(repr, options)))
    return check


def boolean(name, value):
    value = _plain_number(value) if not isinstance(value, np.bool_) else bool(value)
    if not isinstance(value, bool):
        _fail(name, value, "True or False")
    return value


def power_of_two(low: int, high: int) -> Check:
    base = integer(low, high)

    def check(name, value):
        value = base(name, value)
        if value & (value - 1):
            _fail(name, value, f"a power of two from {low} to {high}")
        return value
    return check


def taps(allow_empty: bool) -> Check:
    """A FIR filter given as a setting: a short list of numbers whose sum is not zero (filters are normalised)."""
    def check(name, value):
        if value is None and allow_empty:
            return []
        if not isinstance(value, (list, tuple)) or len(value) > limits.MAX_FILTER_TAPS or (
                not value and not allow_empty):
            _fail(name, value, f"a list of up to {limits.MAX_FILTER_TAPS} numbers")
        values = [number(-1e6, 1e6)(name, v) for v in value]
        if values and abs(sum(values)) < 1e-8:
            _fail(name, value, "filter taps whose sum is not zero")
        return values
    return check


def odd(low: int, high: int) -> Check:
    base = integer(low, high)

    def check(name, value):
        value = base(name, value)
        if value % 2 == 0:
            _fail(name, value, f"an odd number from {low} to {high}")
        return value
    return check


ACTIVATION = choice(*ACTIVATIONS)
LATENT = integer(1, limits.MAX_LATENT_DIM)
FP16_RESOLUTIONS = integer(0, limits.MAX_FP16_RESOLUTIONS)
CONV_CLAMP = optional(number(0, 1e9, low_open=True))

TOP = {
    "z_dim": LATENT, "c_dim": integer(0, limits.MAX_CLASSES), "w_dim": LATENT,
    "img_resolution": power_of_two(4, limits.MAX_RESOLUTION), "img_channels": integer(1, limits.MAX_IMG_CHANNELS),
}
MAPPING = {
    "num_layers": integer(1, limits.MAX_MAPPING_LAYERS), "embed_features": optional(LATENT),
    "layer_features": optional(LATENT), "activation": ACTIVATION, "lr_multiplier": number(0, 1e3, low_open=True),
    "w_avg_beta": optional(number(0, 1)),
}
STYLEGAN1_MAPPING = {"num_layers": integer(1, limits.MAX_MAPPING_LAYERS), "layer_features": LATENT,
                     "lr_multiplier": number(0, 1e3, low_open=True)}
STYLEGAN2_SYNTHESIS = {
    "channel_base": integer(1, limits.MAX_CHANNEL_BASE), "channel_max": integer(1, limits.MAX_CHANNELS),
    "num_fp16_res": FP16_RESOLUTIONS, "channels": None,   # checked against the resolution below
    "conv_clamp": CONV_CLAMP, "architecture": choice("orig", "skip", "resnet"), "resample_filter": taps(False),
    "use_noise": boolean, "activation": ACTIVATION, "kernel_size": odd(1, 7), "channels_last": boolean,
    "fp16_channels_last": boolean, "fused_modconv_default": choice(True, False, "inference_only"),
    "base_shape": None,   # checked against the resolution below
}
STYLEGAN3_SYNTHESIS = {
    "channel_base": integer(1, limits.MAX_CHANNEL_BASE), "channel_max": integer(1, limits.MAX_CHANNELS),
    "num_layers": integer(1, limits.MAX_SG3_LAYERS), "num_critical": integer(0, limits.MAX_SG3_LAYERS - 1),
    "first_cutoff": number(0, limits.MAX_RESOLUTION, low_open=True),
    "first_stopband": number(0, limits.MAX_RESOLUTION, low_open=True),
    "last_stopband_rel": number(0, 16, low_open=True), "margin_size": integer(0, limits.MAX_MARGIN),
    "output_scale": number(-1e6, 1e6), "num_fp16_res": FP16_RESOLUTIONS, "conv_kernel": odd(1, 7),
    "filter_size": integer(1, 32), "lrelu_upsampling": integer(1, 8), "use_radial_filters": boolean,
    "conv_clamp": CONV_CLAMP, "magnitude_ema_beta": number(0, 1),
}
STYLEGAN1_SYNTHESIS = {
    "fmap_base": number(1, limits.MAX_CHANNEL_BASE), "fmap_decay": number(0, 4),
    "fmap_max": integer(1, limits.MAX_CHANNELS), "blur_filter": taps(True), "fused_scale": choice("auto", True, False),
}
FAMILIES = {
    "stylegan": (STYLEGAN1_MAPPING, STYLEGAN1_SYNTHESIS),
    "stylegan2": (MAPPING, STYLEGAN2_SYNTHESIS),
    "stylegan3": (MAPPING, STYLEGAN3_SYNTHESIS),
}


def _checked(schema: dict, values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or key not in schema:
            raise SettingError(f"the setting {prefix}{quote(key)} is not one this explorer knows")
        check = schema[key]
        out[key] = value if check is None else check(prefix + key, value)
    return out


def check_config(family: str, config) -> dict:
    """The checked config (plain values); SettingError (a NetworkLoadError) names the first bad setting."""
    if family not in FAMILIES:
        raise NetworkLoadError(f"unknown generator family {quote(family)}")
    if not isinstance(config, dict):
        raise NetworkLoadError(f"the {family} settings are not a table of names and values")
    mapping_schema, synthesis_schema = FAMILIES[family]
    config = dict(config)
    for key in TOP:
        if key not in config:
            raise SettingError(f"the {family} settings lack {key}")
    mapping = config.pop("mapping_kwargs", None) or {}
    if not isinstance(mapping, dict):
        _fail("mapping_kwargs", mapping, "a table of mapping network settings")
    top = _checked(TOP, {k: config.pop(k) for k in TOP})
    synthesis = _checked(synthesis_schema, config)
    checked = {**top, "mapping_kwargs": _checked(mapping_schema, mapping, "mapping_kwargs."), **synthesis}
    DERIVED_CHECKS[family](checked)
    return checked


def _block_resolutions(resolution: int) -> list[int]:
    return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


def _check_stylegan2(config: dict) -> None:
    _check_base_shape(config)
    resolutions = _block_resolutions(config["img_resolution"])
    channels = config.get("channels")
    if channels is not None:
        if not isinstance(channels, (list, tuple)) or len(channels) != len(resolutions):
            _fail("channels", channels, f"a list of {len(resolutions)} channel counts, one per resolution")
        config["channels"] = [integer(1, limits.MAX_CHANNELS)("channels", c) for c in channels]
    else:
        base = config.get("channel_base", 32768)
        if base // config["img_resolution"] < 1:
            _fail("channel_base", base, f"at least the resolution ({config['img_resolution']}), or the last "
                                        f"blocks have no channels")


def _check_base_shape(config: dict) -> None:
    """A non-square network's first constant [height, width]: the image is img_resolution * base_shape / 4."""
    shape = config.get("base_shape")
    if shape is None:
        return
    side = integer(1, limits.MAX_BASE_SIDE)
    if not isinstance(shape, (list, tuple)) or len(shape) != 2:
        _fail("base_shape", shape, "a [height, width] pair")
    shape = [side("base_shape", value) for value in shape]
    if max(shape) * config["img_resolution"] // 4 > limits.MAX_RESOLUTION:
        _fail("base_shape", shape, f"small enough that the image is at most {limits.MAX_RESOLUTION} px on a side")
    config["base_shape"] = shape


def _check_stylegan3(config: dict) -> None:
    """The sampling rates and filter sizes the constructor derives, computed the same way before it runs:
    a small first cutoff or stopband makes filters of millions of taps."""
    layers = config.get("num_layers", 14)
    critical = config.get("num_critical", 2)
    if critical >= layers:
        _fail("num_critical", critical, f"below num_layers ({layers})")
    resolution = config["img_resolution"]
    first_cutoff, first_stopband = config.get("first_cutoff", 2), config.get("first_stopband", 2 ** 2.1)
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * config.get("last_stopband_rel", 2 ** 0.3)
    exponents = np.minimum(np.arange(layers + 1) / (layers - critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    channels = np.rint(np.minimum((config.get("channel_base", 32768) / 2) / cutoffs, config.get("channel_max", 512)))
    if channels[:-1].min() < 1:
        _fail("channel_base", config.get("channel_base"), "large enough that every layer has channels")
    filter_size, upsampling = config.get("filter_size", 6), config.get("lrelu_upsampling", 2)
    for index in range(layers + 1):
        before, after = rates[max(index - 1, 0)], rates[index]
        wide = max(before, after) * (1 if index == layers else upsampling)
        for factor in (wide / before, wide / after):
            if filter_size * factor > limits.MAX_DESIGNED_TAPS:
                raise SettingError(f"the StyleGAN3 settings (first_cutoff {first_cutoff:g}, first_stopband "
                                   f"{first_stopband:g}) make filters of {int(filter_size * factor):,} taps, "
                                   f"more than {limits.MAX_DESIGNED_TAPS}")


def _check_stylegan1(config: dict) -> None:
    base, decay, most = config.get("fmap_base", 8192), config.get("fmap_decay", 1.0), config.get("fmap_max", 512)
    for stage in range(1, int(math.log2(config["img_resolution"]))):
        if min(int(base / (2.0 ** (stage * decay))), most) < 1:
            _fail("fmap_base", base, f"large enough that the {2 ** (stage + 1)} px layers have channels")


DERIVED_CHECKS = {"stylegan": _check_stylegan1, "stylegan2": _check_stylegan2, "stylegan3": _check_stylegan3}


# -- how large the settings make a network ------------------------------------------------------------------------

def _mapping_elements(config: dict, stylegan1: bool, default_layers: int = 8) -> int:
    mapping, z_dim, c_dim, w_dim = config["mapping_kwargs"], config["z_dim"], config["c_dim"], config["w_dim"]
    layers = mapping.get("num_layers", default_layers)
    if stylegan1:
        width = mapping.get("layer_features", 512)
        features = [z_dim * (2 if c_dim else 1)] + [width] * (layers - 1) + [w_dim]
        embed = c_dim * z_dim
    else:
        embed_features = (mapping.get("embed_features") or w_dim) if c_dim else 0
        width = mapping.get("layer_features") or w_dim
        features = [z_dim + embed_features] + [width] * (layers - 1) + [w_dim]
        embed = c_dim * embed_features
    return embed + sum(a * b for a, b in zip(features, features[1:]))


def _stylegan2_elements(config: dict) -> int:
    resolutions = _block_resolutions(config["img_resolution"])
    if config.get("channels") is not None:
        table = dict(zip(resolutions, config["channels"]))
    else:
        table = {res: min(config.get("channel_base", 32768) // res, config.get("channel_max", 512))
                 for res in resolutions}
    k2, w_dim = config.get("kernel_size", 3) ** 2, config["w_dim"]
    noise = config.get("use_noise", True)
    skip = config.get("architecture", "skip") == "skip"
    base_height, base_width = config.get("base_shape") or (4, 4)
    total = table[4] * base_height * base_width
    for res in resolutions:
        out = table[res]
        inputs = [out] if res == 4 else [table[res // 2], out]          # conv0 (from the block below), conv1
        height, width = base_height * res // 4, base_width * res // 4
        total += sum(c * out * k2 + w_dim * c + (height * width if noise else 0) for c in inputs)
        if skip or res == resolutions[-1]:
            total += (config["img_channels"] + w_dim) * out
    return total + _mapping_elements(config, False)


STYLEGAN3_MAPPING_LAYERS = 2   # StyleGAN3's default mapping depth


def _stylegan3_elements(config: dict) -> int:
    layers, w_dim = config.get("num_layers", 14), config["w_dim"]
    critical = config.get("num_critical", 2)
    resolution = config["img_resolution"]
    first_cutoff = config.get("first_cutoff", 2)
    exponents = np.minimum(np.arange(layers + 1) / (layers - critical), 1)
    cutoffs = first_cutoff * (resolution / 2 / first_cutoff) ** exponents
    channels = np.rint(np.minimum((config.get("channel_base", 32768) / 2) / cutoffs, config.get("channel_max", 512)))
    channels[-1] = config["img_channels"]
    channels = [int(c) for c in channels]
    kernel = config.get("conv_kernel", 3)
    total = channels[0] * channels[0]
    for index in range(layers + 1):
        before, out = channels[max(index - 1, 0)], channels[index]
        k = 1 if index == layers else kernel
        total += out * before * k * k + w_dim * before
    return total + _mapping_elements(config, False, default_layers=STYLEGAN3_MAPPING_LAYERS)


def _stylegan1_elements(config: dict) -> int:
    base, decay, most = config.get("fmap_base", 8192), config.get("fmap_decay", 1.0), config.get("fmap_max", 512)
    w_dim = config["w_dim"]

    def nf(stage):
        return min(int(base / (2.0 ** (stage * decay))), most)

    total = nf(1) * 16
    for res in _block_resolutions(config["img_resolution"]):
        stage = int(math.log2(res)) - 1
        inputs = [nf(stage)] if res == 4 else [nf(stage - 1), nf(stage)]
        total += sum(c * nf(stage) * 9 for c in inputs) + 2 * (2 * w_dim * nf(stage) + res * res)
    return total + nf(int(math.log2(config["img_resolution"])) - 1) * config["img_channels"] + \
        _mapping_elements(config, True)


def minimum_elements(family: str, config: dict) -> int:
    """A lower bound of the values in the parameters and buffers of the network a checked config describes
    (its convolutions, styles, noise images and mapping layers): what its file must hold at least."""
    return {"stylegan": _stylegan1_elements, "stylegan2": _stylegan2_elements,
            "stylegan3": _stylegan3_elements}[family](config)
