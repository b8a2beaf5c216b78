"""StyleGAN2 / StyleGAN2-ADA TensorFlow networks: settings and variables in our StyleGAN2 layout."""
from __future__ import annotations

import re

import numpy as np

# Static kwargs this conversion understands.
KWARGS = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
          "label_fmaps", "mapping_fmaps", "mapping_nonlinearity", "mapping_lrmul", "fmap_base", "fmap_max",
          "fmap_min", "fmap_decay", "conv_clamp", "architecture", "resample_kernel", "nonlinearity", "use_noise"}


def _kwarg(kwargs, name, default):
    value = kwargs.get(name, default)
    return default if value is None else value


def channels(kwargs: dict) -> dict:
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


def config(kwargs: dict, variables: dict) -> dict:
    architecture = _kwarg(kwargs, "architecture", "skip")
    if any(re.fullmatch(r"synthesis/ToRGB_lod\d+/.*", name) for name in variables):
        architecture = "orig"
    resample = kwargs.get("resample_kernel", [1, 3, 3, 1])
    if resample is None or (isinstance(resample, (list, tuple)) and not resample):
        resample = [1]   # resample_kernel None means no filtering in TF: a one-tap filter
    return dict(
        z_dim=_kwarg(kwargs, "latent_size", 512), c_dim=_kwarg(kwargs, "label_size", 0),
        w_dim=_kwarg(kwargs, "dlatent_size", 512), img_resolution=_kwarg(kwargs, "resolution", 1024),
        img_channels=_kwarg(kwargs, "num_channels", 3),
        mapping_kwargs=dict(num_layers=_kwarg(kwargs, "mapping_layers", 8),
                            embed_features=kwargs.get("label_fmaps"), layer_features=kwargs.get("mapping_fmaps"),
                            activation=_kwarg(kwargs, "mapping_nonlinearity", "lrelu"),
                            lr_multiplier=_kwarg(kwargs, "mapping_lrmul", 0.01)),
        **channels(kwargs), num_fp16_res=0, conv_clamp=kwargs.get("conv_clamp"), architecture=architecture,
        resample_filter=resample,
        activation=_kwarg(kwargs, "nonlinearity", "lrelu"), use_noise=_kwarg(kwargs, "use_noise", True))


def state(variables: dict, config: dict) -> dict:
    """TF variable names and layouts -> ours: conv [kh, kw, in, out] -> [out, in, kh, kw], dense transposed,
    mod_bias + 1, and the upsampling convs' kernels (Conv0_up, Skip) flipped, as TF's transposed conv flips."""
    def conv(name, flip=False):
        w = variables[name]
        if flip:
            w = w[::-1, ::-1]
        return w.transpose(3, 2, 0, 1)

    out = {"mapping.w_avg": variables["dlatent_avg"]}
    if config["c_dim"]:
        out["mapping.embed.weight"] = variables["mapping/LabelEmbed/weight"].T
        out["mapping.embed.bias"] = variables["mapping/LabelEmbed/bias"]
    for i in range(config["mapping_kwargs"]["num_layers"]):
        out[f"mapping.fc{i}.weight"] = variables[f"mapping/Dense{i}/weight"].T
        out[f"mapping.fc{i}.bias"] = variables[f"mapping/Dense{i}/bias"]

    def layer(ours, tf, noise_index, flip=False):
        out[f"synthesis.{ours}.weight"] = conv(f"synthesis/{tf}/weight", flip)
        out[f"synthesis.{ours}.bias"] = variables[f"synthesis/{tf}/bias"]
        out[f"synthesis.{ours}.affine.weight"] = variables[f"synthesis/{tf}/mod_weight"].T
        out[f"synthesis.{ours}.affine.bias"] = variables[f"synthesis/{tf}/mod_bias"] + 1
        if config["use_noise"]:
            out[f"synthesis.{ours}.noise_strength"] = variables[f"synthesis/{tf}/noise_strength"]
            out[f"synthesis.{ours}.noise_const"] = variables[f"synthesis/noise{noise_index}"][0, 0]

    def torgb(res, tf):
        out[f"synthesis.b{res}.torgb.weight"] = conv(f"synthesis/{tf}/weight")
        out[f"synthesis.b{res}.torgb.bias"] = variables[f"synthesis/{tf}/bias"]
        out[f"synthesis.b{res}.torgb.affine.weight"] = variables[f"synthesis/{tf}/mod_weight"].T
        out[f"synthesis.b{res}.torgb.affine.bias"] = variables[f"synthesis/{tf}/mod_bias"] + 1

    resolution = config["img_resolution"]
    log2 = int(np.log2(resolution))
    out["synthesis.b4.const"] = variables["synthesis/4x4/Const/const"][0]
    layer("b4.conv1", "4x4/Conv", 0)
    for res in (2 ** i for i in range(2, log2 + 1)):
        if res > 4:
            layer(f"b{res}.conv0", f"{res}x{res}/Conv0_up", 2 * int(np.log2(res)) - 5, flip=True)
            layer(f"b{res}.conv1", f"{res}x{res}/Conv1", 2 * int(np.log2(res)) - 4)
            if config["architecture"] == "resnet":
                out[f"synthesis.b{res}.skip.weight"] = conv(f"synthesis/{res}x{res}/Skip/weight", flip=True)
        if config["architecture"] == "skip" or res == resolution:
            lod = log2 - int(np.log2(res))
            name = f"{res}x{res}/ToRGB" if f"synthesis/{res}x{res}/ToRGB/weight" in variables else f"ToRGB_lod{lod}"
            torgb(res, name)
    return out
