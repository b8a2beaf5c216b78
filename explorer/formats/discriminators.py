"""The discriminator a network file holds besides its generator, read as safely as the generator.

NVlabs training snapshots keep it as `D` (a persistent Discriminator record: blocks b{res} and the epilogue b4,
in stylegan2-ada-pytorch and stylegan3 alike), rosinality's train.py checkpoints as `d` (a state dict of its
own Discriminator: convs.0 fromRGB, convs.k residual blocks, final_conv, final_linear), this project's trainer
checkpoints as `D` (our state dict). Each becomes explorer.networks.discriminator.Discriminator, its settings
checked and its size bounded by the file's own tensors before anything is allocated, like the generator.

A discriminator is never needed to show the generator: `read_discriminator` turns every failure into a note
("discriminator not read: ...") and the generator loads all the same.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

import torch

from ..networks.discriminator import Discriminator, discriminator_channels
from . import limits
from .assemble import UNLISTED_ELEMENTS, check_finite, fit_report
from .configs import (CONV_CLAMP, FP16_RESOLUTIONS, LATENT, MAPPING, SettingError, _checked, _fail, boolean, choice,
                      integer, optional, power_of_two, taps)
from .errors import NetworkLoadError, one_line, quote
from .pickle_machine import LoadCancelled, check_cancelled

# NVlabs' resampling filter; the only one this module's blocks use.
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)
MAX_GROUP = 1 << 16
NOT_READ = "discriminator not read: "

# NVlabs' Discriminator(c_dim, img_resolution, img_channels, ...) and the tables it passes on.
NVLABS_ARG_NAMES = ("c_dim", "img_resolution", "img_channels")
NVLABS_TOP = {
    "c_dim": integer(0, limits.MAX_CLASSES), "img_resolution": power_of_two(8, limits.MAX_RESOLUTION),
    "img_channels": integer(1, limits.MAX_IMG_CHANNELS), "architecture": choice("orig", "skip", "resnet"),
    "channel_base": integer(1, limits.MAX_CHANNEL_BASE), "channel_max": integer(1, limits.MAX_CHANNELS),
    "num_fp16_res": FP16_RESOLUTIONS, "conv_clamp": CONV_CLAMP, "cmap_dim": optional(LATENT),
    "block_kwargs": None, "mapping_kwargs": None, "epilogue_kwargs": None,
}
NVLABS_BLOCK = {"activation": choice("lrelu"), "resample_filter": taps(False), "fp16_channels_last": boolean,
                "freeze_layers": integer(0, 1 << 16)}
NVLABS_EPILOGUE = {"mbstd_group_size": optional(integer(1, MAX_GROUP)),
                   "mbstd_num_channels": integer(0, limits.MAX_CHANNELS), "activation": choice("lrelu")}


def read_discriminator(build: Callable[[], Discriminator], notes: list[str]) -> Discriminator | None:
    """build() or, when it fails, None with a note saying why (cancelling still cancels the whole load)."""
    try:
        return build()
    except LoadCancelled:
        raise
    except NetworkLoadError as error:
        notes.append(NOT_READ + str(error))
    except MemoryError:
        notes.append(NOT_READ + "not enough memory")
    except Exception as error:   # a damaged entry that reached a check we do not have
        notes.append(NOT_READ + f"{type(error).__name__}: {one_line(str(error), 160)}")
    return None


def minimum_elements(table: Mapping[int, int], img_channels: int, architecture: str, mbstd_channels: int,
                     c_dim: int) -> int:
    """A lower bound of the values in a discriminator's parameters: its convolutions and dense layers."""
    resolutions = sorted((res for res in table if res > 4), reverse=True)
    total = 0
    for res in resolutions:
        width, out = table[res], table[res // 2]
        total += width * width * 9 + width * out * 9
        if architecture == "skip" or res == resolutions[0]:
            total += img_channels * width
        if architecture == "resnet":
            total += width * out
    width = table[4]
    return total + (width + mbstd_channels) * width * 9 + width * width * 16 + width + c_dim * width


def build_discriminator(kwargs: dict, tensors: Mapping[str, torch.Tensor], what: str) -> Discriminator:
    """Our Discriminator with checked `kwargs`, filled with `tensors` (NVlabs' state-dict names; the blocks'
    b{res}.resample_filter, which ours does not save, is checked and kept)."""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise NetworkLoadError(f"the file is damaged: {name} is not a tensor")
    table = kwargs.get("channels") or discriminator_channels(kwargs["img_resolution"], kwargs["channel_base"],
                                                             kwargs["channel_max"])
    mbstd_channels = kwargs.get("mbstd_num_channels", 1)
    if mbstd_channels and table[4] % mbstd_channels:
        raise SettingError(f"mbstd_num_channels={mbstd_channels} does not divide the {table[4]} channels at 4x4")
    needed = minimum_elements(table, kwargs["img_channels"], kwargs.get("architecture", "resnet"), mbstd_channels,
                              kwargs.get("c_dim", 0))
    held = sum(t.numel() for t in tensors.values())
    if needed > limits.MAX_PARAMETERS or needed > held + UNLISTED_ELEMENTS:
        raise NetworkLoadError(f"the {what} do not fit the discriminator their settings describe: it needs at "
                               f"least {needed:,} values and the file holds {held:,} (nothing was allocated)")
    check_finite(tensors)
    check_cancelled()
    block_filters = {name: tensors[name] for name in tensors if re.fullmatch(r"b\d+\.resample_filter", name)}
    tensors = {name: tensor for name, tensor in tensors.items() if name not in block_filters}
    try:
        D = Discriminator(**kwargs)
    except MemoryError:
        raise NetworkLoadError("not enough memory to build this discriminator") from None
    except Exception as error:   # a combination of settings the constructor refuses
        raise NetworkLoadError(f"the settings describe no discriminator this explorer can build "
                               f"({type(error).__name__}: {error})") from None
    problems = fit_report(D.state_dict(), tensors, lambda name: name.endswith("resample_filter"))
    for name, tensor in block_filters.items():
        block = getattr(D, name.split(".")[0], None)
        if block is None or tuple(tensor.shape) != tuple(block.resample_filter.shape):
            problems.append(f"unexpected {name}")
        else:
            block.resample_filter.copy_(tensor)
    if problems:
        raise NetworkLoadError(f"the {what} do not fit the discriminator their settings describe: "
                               + "; ".join(problems[:3]))
    try:
        D.load_state_dict(dict(tensors), strict=False)
    except Exception as error:
        raise NetworkLoadError(f"the {what} could not be loaded ({type(error).__name__}: {error})") from None
    return D.eval().requires_grad_(False)


# -- NVlabs pickles ------------------------------------------------------------------------------------------------

def _table(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(name, value, "a table of settings")
    return dict(value)


def nvlabs_discriminator_kwargs(init_args: tuple, init_kwargs: dict, code_base: str = "stylegan3") -> dict:
    """Our Discriminator's arguments from the ones NVlabs' training scripts recorded (their scripts record every
    one; the defaults of a missing conv_clamp differ: None in stylegan2-ada-pytorch, 256 in stylegan3)."""
    recorded = dict(zip(NVLABS_ARG_NAMES, init_args))
    recorded.update(init_kwargs)
    for name in ("img_resolution", "img_channels"):
        if name not in recorded:
            raise SettingError(f"the discriminator's settings lack {name}")
    top = _checked(NVLABS_TOP, recorded)
    block = _checked(NVLABS_BLOCK, _table("block_kwargs", top.pop("block_kwargs", None)), "block_kwargs.")
    epilogue = _checked(NVLABS_EPILOGUE, _table("epilogue_kwargs", top.pop("epilogue_kwargs", None)),
                        "epilogue_kwargs.")
    mapping = _checked(MAPPING, _table("mapping_kwargs", top.pop("mapping_kwargs", None)), "mapping_kwargs.")
    taps_given = block.get("resample_filter")
    if taps_given is not None and [t / sum(taps_given) for t in taps_given] != \
            [t / sum(RESAMPLE_TAPS) for t in RESAMPLE_TAPS]:
        raise SettingError(f"the resample filter {quote(taps_given)} is not NVlabs' [1, 3, 3, 1], the only one "
                           f"supported")
    top.pop("num_fp16_res", None)   # float16 is a speed-up of training on GPUs; the weights are float32
    kwargs = dict(img_resolution=top["img_resolution"], img_channels=top["img_channels"],
                  channel_base=top.get("channel_base", 32768), channel_max=top.get("channel_max", 512),
                  conv_clamp=top.get("conv_clamp", 256 if code_base == "stylegan3" else None),
                  architecture=top.get("architecture", "resnet"),
                  mbstd_group_size=epilogue.get("mbstd_group_size", 4),
                  mbstd_num_channels=epilogue.get("mbstd_num_channels", 1), c_dim=top.get("c_dim", 0))
    if kwargs["c_dim"]:
        kwargs["cmap_dim"] = top.get("cmap_dim")
        kwargs["mapping_kwargs"] = mapping
    return kwargs


# -- rosinality checkpoints ----------------------------------------------------------------------------------------

ROSINALITY_GROUP = 4   # rosinality's stddev_group


def _rosinality_blur_ok(tensor) -> bool:
    """rosinality's downsampling blur: the [1, 3, 3, 1] outer product, normalised to sum 1."""
    taps_1d = torch.tensor(RESAMPLE_TAPS)
    kernel = torch.outer(taps_1d, taps_1d)
    return isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == (4, 4) and bool(
        torch.allclose(tensor.to(torch.float32), kernel / kernel.sum()))


def rosinality_discriminator(state) -> Discriminator:
    """The Discriminator of a rosinality state dict (checkpoint['d']), under NVlabs' names."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise NetworkLoadError("the checkpoint's d is not a state dict of tensors")
    blocks = len([k for k in state if re.fullmatch(r"convs\.\d+\.conv1\.0\.weight", k)])
    try:
        from_rgb = state["convs.0.0.weight"]
        if from_rgb.dim() != 4 or blocks < 1:
            raise KeyError("convs.1.conv1.0.weight" if blocks < 1 else "a 4-dimensional convs.0.0.weight")
        if 2 ** min(blocks + 2, 64) > limits.MAX_RESOLUTION:
            raise NetworkLoadError(f"{blocks} residual blocks make more than {limits.MAX_RESOLUTION} px")
        size = 2 ** (blocks + 2)
        table = {size: from_rgb.shape[0]}
        converted = {f"b{size}.fromrgb.weight": from_rgb, f"b{size}.fromrgb.bias": state["convs.0.1.bias"]}
        for k in range(1, blocks + 1):
            res = size // 2 ** (k - 1)
            for kernel_name in (f"convs.{k}.conv2.0.kernel", f"convs.{k}.skip.0.kernel"):
                if kernel_name in state and not _rosinality_blur_ok(state[kernel_name]):
                    raise NetworkLoadError(f"{kernel_name} is a custom blur kernel; only rosinality's default "
                                           f"[1, 3, 3, 1] is supported")
            conv1 = state[f"convs.{k}.conv2.1.weight"]
            if conv1.dim() != 4:
                raise NetworkLoadError(f"convs.{k}.conv2.1.weight has {conv1.dim()} dimensions, not 4")
            table[res // 2] = conv1.shape[0]
            converted.update({
                f"b{res}.conv0.weight": state[f"convs.{k}.conv1.0.weight"],
                f"b{res}.conv0.bias": state[f"convs.{k}.conv1.1.bias"],
                f"b{res}.conv1.weight": conv1, f"b{res}.conv1.bias": state[f"convs.{k}.conv2.2.bias"],
                f"b{res}.skip.weight": state[f"convs.{k}.skip.1.weight"],
            })
        converted.update({"b4.conv.weight": state["final_conv.0.weight"], "b4.conv.bias": state["final_conv.1.bias"],
                          "b4.fc.weight": state["final_linear.0.weight"], "b4.fc.bias": state["final_linear.0.bias"],
                          "b4.out.weight": state["final_linear.1.weight"],
                          "b4.out.bias": state["final_linear.1.bias"]})
    except KeyError as error:
        raise NetworkLoadError(f"not a rosinality discriminator state dict (no {error.args[0]})") from None
    for res, width in table.items():
        if not 1 <= width <= limits.MAX_CHANNELS:
            raise NetworkLoadError(f"{width} channels at {res} px is more than any discriminator has")
    kwargs = dict(img_resolution=size, img_channels=from_rgb.shape[1], channels=table, conv_clamp=None,
                  mbstd_group_size=ROSINALITY_GROUP, architecture="resnet")
    if not 1 <= kwargs["img_channels"] <= limits.MAX_IMG_CHANNELS:
        raise NetworkLoadError(f"a fromRGB for {kwargs['img_channels']} image channels")
    return build_discriminator(kwargs, converted, "rosinality discriminator weights")


# -- this project's trainer ---------------------------------------------------------------------------------------

TRAINER_OPTIONS = {"resolution": power_of_two(8, limits.MAX_RESOLUTION),
                   "channel_base": integer(1, limits.MAX_CHANNEL_BASE), "channel_max": integer(1, limits.MAX_CHANNELS),
                   "conv_clamp": CONV_CLAMP}


def trainer_discriminator(options: dict, state) -> Discriminator:
    """The D of a stylegan-explorer training checkpoint; its settings are those TrainingOptions gives."""
    if not isinstance(state, dict):
        raise NetworkLoadError("the checkpoint's D is not a state dict")
    checked = _checked(TRAINER_OPTIONS, {k: options.get(k) for k in TRAINER_OPTIONS})
    kwargs = dict(img_resolution=checked["resolution"], img_channels=3, channel_base=checked["channel_base"],
                  channel_max=checked["channel_max"], conv_clamp=checked["conv_clamp"], mbstd_group_size=4)
    return build_discriminator(kwargs, state, "discriminator weights of this training checkpoint")
