"""genforce checkpoints (.pth, genforce/genforce; the networks SeFa and InterFaceGAN use): StyleGAN and StyleGAN2.

genforce's converters save {generator, discriminator, generator_smooth} (state dicts; generator_smooth is the
moving average, the one to explore). Its generators are the TensorFlow originals re-written name for name: each
parameter is a TF variable under another name and in torch's layout (conv [out, in, kh, kw], dense [out, in]),
with the same runtime scales (equalized learning rate, mapping lr multiplier 0.01, mod_bias + 1 at run time).
So the state dict is turned back into TF variable names and layouts here and handed to the TF conversions
(tf_stylegan2, tf_stylegan1), which map TF variables onto our modules.

genforce names: mapping.dense{i}, truncation.w_avg, and per synthesis layer
- StyleGAN2: early_layer.const; layer{k} (k = 0 for 4x4/Conv, then Conv0_up / Conv1 of each resolution), each
  with weight, bias, style.{weight,bias} (TF mod_weight / mod_bias), noise_strength and the noise buffer (TF
  noise{k}); output{b} for the ToRGB of block b (every block: skip, the last only: orig).
- StyleGAN: layer{k} with const (k = 0) or weight, bias, style.* (StyleMod), apply_noise.{weight, noise} (Noise,
  noise{k}); output{b} are the progressive-growing ToRGB_lod layers (lod0 is the last); synthesis.lod.
The constructor arguments are not stored: they follow from the shapes (resolution from the number of layers,
channels from the conv weights, mapping widths from the dense weights).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..networks.stylegan2 import channel_kwargs
from . import limits, tf_stylegan1, tf_stylegan2
from .assemble import build_network
from .errors import NetworkLoadError, quote
from .loaded import LoadedNetwork

ENTRIES = ("generator_smooth", "generator")   # the moving average first, as genforce's own synthesis does
MAPPING_LR_MULTIPLIER = 0.01                  # genforce's default for both families; not stored in the file


def _tf_name(name: str) -> str | None:
    """The TF variable a genforce mapping or truncation name stands for (None: one with no TF counterpart)."""
    if name == "truncation.w_avg":
        return "dlatent_avg"
    if name == "synthesis.lod":
        return "lod"
    match = re.fullmatch(r"mapping\.dense(\d+)\.(weight|bias)", name)
    return None if match is None else f"mapping/Dense{match[1]}/{match[2]}"


def _scope(layer: str, resolution_log2: int, stylegan1: bool) -> str:
    """The TF scope of genforce synthesis layer `layer` ('layer3', 'output1', 'early_layer')."""
    if layer == "early_layer":
        return "4x4/Const"
    match = re.fullmatch(r"(layer|output)(\d+)", layer)
    index = int(match[2])
    if match[1] == "output":
        res = 2 ** (index + 2)
        return f"ToRGB_lod{resolution_log2 - index - 2}" if stylegan1 else f"{res}x{res}/ToRGB"
    if stylegan1:   # layer 2b is the first of block b (Const at 4 px), layer 2b + 1 the second
        block, second = divmod(index, 2)
        res = 2 ** (block + 2)
        if block == 0:
            return f"4x4/{'Conv' if second else 'Const'}"
        return f"{res}x{res}/{'Conv1' if second else 'Conv0_up'}"
    if index == 0:
        return "4x4/Conv"
    block = (index + 1) // 2
    res = 2 ** (block + 2)
    return f"{res}x{res}/{'Conv0_up' if index % 2 else 'Conv1'}"


def _binomial(taps: list[float], gain: float) -> np.ndarray:
    kernel = np.outer(taps, taps)
    return kernel / kernel.sum() * gain ** 2


# The fixed filters genforce keeps as buffers: StyleGAN2's upsampling filter ([1, 3, 3, 1], gain 2 per axis, after
# each upsampling convolution and on the skip image) and StyleGAN's blur ([1, 2, 1] per channel). Ours are the
# same; a file with other ones cannot be mapped.
FIXED_FILTERS = {"filter.kernel": _binomial([1, 3, 3, 1], 2), "upsample.kernel": _binomial([1, 3, 3, 1], 2),
                 "blur.kernel": _binomial([1, 2, 1], 1)}


def _check_filter(name: str, tensor: torch.Tensor) -> None:
    expected = next(kernel for suffix, kernel in FIXED_FILTERS.items() if name.endswith(suffix))
    value = tensor.detach().to(torch.float32).numpy()
    if value.ndim != 4 or value.shape[1] != 1 or value.shape[2:] != expected.shape or \
            not np.allclose(value, expected[None, None], atol=1e-6):
        raise NetworkLoadError(f"{name} is a custom filter; only genforce's default filters are supported")


SG2_FIELDS = {"weight": "weight", "bias": "bias", "style.weight": "mod_weight", "style.bias": "mod_bias",
              "noise_strength": "noise_strength", "const": "const"}
SG1_FIELDS = {"weight": "weight", "bias": "bias", "style.weight": "StyleMod/weight", "style.bias": "StyleMod/bias",
              "apply_noise.weight": "Noise/weight", "const": "const"}


def tf_variables(state: dict, stylegan1: bool, resolution_log2: int) -> dict[str, np.ndarray]:
    """genforce's state dict as TF variables: TF names and TF layouts (conv [kh, kw, in, out], dense [in, out])."""
    fields = SG1_FIELDS if stylegan1 else SG2_FIELDS
    out = {}
    for name, tensor in state.items():
        if name.endswith(tuple(FIXED_FILTERS)):
            _check_filter(name, tensor)
            continue
        value = tensor.detach().to(torch.float32).numpy()
        match = re.fullmatch(r"synthesis\.(early_layer|layer\d+|output\d+)\.(.+)", name)
        if match is None:
            tf = _tf_name(name)
            if tf is None:
                raise NetworkLoadError(f"the genforce generator has a parameter this explorer does not know: "
                                       f"{quote(name)}")
            out[tf] = value.T if tf.startswith("mapping/Dense") and tf.endswith("weight") else value
            continue
        layer, field = match[1], match[2]
        if field in ("noise", "apply_noise.noise"):
            out[f"synthesis/noise{int(layer[5:])}"] = value
            continue
        if field not in fields:
            raise NetworkLoadError(f"the genforce generator has a parameter this explorer does not know: "
                                   f"{quote(name)}")
        tf = f"synthesis/{_scope(layer, resolution_log2, stylegan1)}/{fields[field]}"
        if field == "weight":
            value = value.transpose(2, 3, 1, 0)     # [out, in, kh, kw] -> [kh, kw, in, out]
        elif field == "style.weight":
            value = value.T
        out[tf] = value
    return out


def _shape(state: dict, name: str, dims: int) -> tuple[int, ...]:
    tensor = state.get(name)
    if tensor is None:
        raise NetworkLoadError(f"not a genforce generator (no {name})")
    if tensor.dim() != dims:
        raise NetworkLoadError(f"the genforce weights do not fit one generator: {name} has {tensor.dim()} "
                               f"dimensions, not {dims}")
    return tuple(tensor.shape)


def infer(state: dict) -> tuple[str, dict, dict[int, int]]:
    """(family, TF static kwargs, resolution -> channels) from the shapes of a genforce generator's state dict."""
    stylegan1 = any(name.endswith(".apply_noise.weight") for name in state)
    if "synthesis.early_layer.weight" in state or ("synthesis.layer0.weight" in state and stylegan1):
        raise NetworkLoadError("a genforce generator without a constant input (const_input=False): not supported")
    if "mapping.label_weight" in state:
        raise NetworkLoadError("a conditional genforce generator (label_size > 0): not supported yet")
    dense = sorted(int(m[1]) for m in (re.fullmatch(r"mapping\.dense(\d+)\.weight", n) for n in state) if m)
    if not dense or dense != list(range(len(dense))):
        raise NetworkLoadError("not a genforce generator (its mapping layers mapping.dense0, ... are missing)")
    if len(dense) > limits.MAX_MAPPING_LAYERS:
        raise NetworkLoadError(f"refused to load: {len(dense)} mapping layers")
    first, last = _shape(state, "mapping.dense0.weight", 2), _shape(state, f"mapping.dense{dense[-1]}.weight", 2)
    w_avg = _shape(state, "truncation.w_avg", 1)
    if w_avg[0] != last[0]:
        raise NetworkLoadError("a genforce generator with one w per layer (repeat_w=False): not supported")
    outputs = sorted(int(m[1]) for m in (re.fullmatch(r"synthesis\.output(\d+)\.weight", n) for n in state) if m)
    if not outputs:
        raise NetworkLoadError("not a genforce generator (no output layer synthesis.output*)")
    blocks = outputs[-1] + 1
    if blocks + 1 > int(np.log2(limits.MAX_RESOLUTION)):
        raise NetworkLoadError(f"refused to load: {blocks} synthesis blocks make more than {limits.MAX_RESOLUTION} px")
    resolution = 2 ** (blocks + 1)
    channels = {}
    for block in range(blocks):
        name = f"synthesis.layer{2 * block + 1}.weight" if stylegan1 else f"synthesis.layer{2 * block}.weight"
        channels[2 ** (block + 2)] = _shape(state, name, 4)[0]
    img_channels = _shape(state, f"synthesis.output{outputs[-1]}.weight", 4)[0]
    kwargs = dict(latent_size=first[1], dlatent_size=last[0], resolution=resolution, num_channels=img_channels,
                  mapping_layers=len(dense), mapping_fmaps=first[0], mapping_lrmul=MAPPING_LR_MULTIPLIER)
    if not stylegan1:
        kwargs["architecture"] = "skip" if outputs == list(range(blocks)) else "orig"
    return ("stylegan" if stylegan1 else "stylegan2"), kwargs, channels


def _stylegan1_channels(channels: dict[int, int]) -> dict:
    """fmap settings of our StyleGAN that give `channels` (genforce: min(fmaps_base // res, fmaps_max), which is
    TF's fmap_base / 2^stage with fmap_base = fmaps_base / 2 and decay 1)."""
    top = max(channels)
    settings = dict(fmap_base=channels[top] * top // 2, fmap_decay=1.0, fmap_max=max(channels.values()))
    for res, count in channels.items():
        if min(settings["fmap_base"] * 2 // res, settings["fmap_max"]) != count:
            raise NetworkLoadError(f"the genforce StyleGAN's channel counts ({', '.join(map(str, channels.values()))}"
                                   f") follow no fmaps_base / fmaps_max this explorer can build")
    return settings


def load_genforce(checkpoint: dict, path: Path) -> LoadedNetwork:
    entry = next((name for name in ENTRIES if name in checkpoint), None)
    state = checkpoint.get(entry)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise NetworkLoadError(f"the genforce checkpoint's {entry} is not a state dict of tensors")
    family, kwargs, channels = infer(state)
    stylegan1 = family == "stylegan"
    log2 = int(np.log2(kwargs["resolution"]))
    try:
        variables = tf_variables(state, stylegan1, log2)
    except (ValueError, IndexError) as error:   # a tensor of another rank than its name promises
        raise NetworkLoadError(f"the genforce weights do not fit one generator ({error})") from None
    lod = variables.pop("lod", None)
    if lod is not None and (lod.size != 1 or float(lod.reshape(-1)[0]) != 0):
        raise NetworkLoadError("this genforce StyleGAN was saved during progressive growing (lod is not 0); "
                               "only finished networks are supported")
    conversion = tf_stylegan1 if stylegan1 else tf_stylegan2
    config = conversion.config(kwargs, variables)
    if stylegan1:
        config.update(_stylegan1_channels(channels))
    else:
        for key in ("channel_base", "channel_max", "channels"):
            config.pop(key, None)
        config.update(channel_kwargs(channels))
    try:
        converted = conversion.state(variables, config)
    except KeyError as error:
        raise NetworkLoadError(f"the genforce generator lacks the weights of TF's {error.args[0]}") from None
    except (ValueError, IndexError) as error:
        raise NetworkLoadError(f"the genforce weights do not fit one generator ({error})") from None
    tensors = {name: torch.from_numpy(np.array(value, dtype=np.float32, order="C")) for name, value in
               converted.items()}
    generator = build_network(family, config, tensors, what="genforce weights",
                              optional=lambda name: name.endswith(("resample_filter", "blur_filter")))
    notes = () if entry == "generator_smooth" else ("this file has no generator_smooth: using its training "
                                                    "generator",)
    detail = f"{family} at {kwargs['resolution']} px, entry {entry}"
    return LoadedNetwork(generator, "genforce", str(path), detail, notes)
