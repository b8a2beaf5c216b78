"""StyleGAN (2019) TensorFlow networks: settings and variables in our StyleGAN layout."""
from __future__ import annotations

import numpy as np

from .errors import NetworkLoadError, quote

# Static kwargs this conversion understands.
KWARGS = {"latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "mapping_layers",
          "mapping_fmaps", "mapping_lrmul", "fmap_base", "fmap_decay", "fmap_max", "blur_filter",
          "mapping_nonlinearity", "nonlinearity", "use_wscale", "normalize_latents", "use_styles",
          "const_input_layer", "use_noise", "use_pixel_norm", "use_instance_norm", "fused_scale"}
# Settings our StyleGAN implements only at the original's defaults.
FIXED = {"mapping_nonlinearity": "lrelu", "nonlinearity": "lrelu", "use_wscale": True, "normalize_latents": True,
         "use_styles": True, "const_input_layer": True, "use_noise": True, "use_pixel_norm": False,
         "use_instance_norm": True}


def config(kwargs: dict, variables: dict) -> dict:
    for name, default in FIXED.items():
        if name in kwargs and kwargs[name] != default:
            raise NetworkLoadError(f"this StyleGAN network sets {name}={quote(kwargs[name])}; only {default!r} is "
                                   f"supported")
    return dict(z_dim=kwargs.get("latent_size", 512), c_dim=kwargs.get("label_size", 0),
                w_dim=kwargs.get("dlatent_size", 512), img_resolution=kwargs.get("resolution", 1024),
                img_channels=kwargs.get("num_channels", 3),
                mapping_kwargs=dict(num_layers=kwargs.get("mapping_layers", 8),
                                    layer_features=kwargs.get("mapping_fmaps", 512),
                                    lr_multiplier=kwargs.get("mapping_lrmul", 0.01)),
                fmap_base=kwargs.get("fmap_base", 8192), fmap_decay=kwargs.get("fmap_decay", 1.0),
                fmap_max=kwargs.get("fmap_max", 512), fused_scale=kwargs.get("fused_scale", "auto"),
                # blur_filter None means no blur in the original (the settings check makes it []).
                blur_filter=kwargs.get("blur_filter", [1, 2, 1]))


def state(variables: dict, config: dict) -> dict:
    """TF names and layouts -> ours (conv [kh, kw, in, out] -> [out, in, kh, kw], dense [in, out] -> [out, in])."""
    out = {"mapping.w_avg": variables["dlatent_avg"]}
    if config["c_dim"]:
        out["mapping.embed"] = variables["mapping/LabelConcat/weight"]
    for i in range(config["mapping_kwargs"]["num_layers"]):
        out[f"mapping.fc{i}.weight"] = variables[f"mapping/Dense{i}/weight"].T
        out[f"mapping.fc{i}.bias"] = variables[f"mapping/Dense{i}/bias"]
    log2 = int(np.log2(config["img_resolution"]))

    def epilogue(ours, tf, layer_index):
        out[f"{ours}.noise_strength"] = variables[f"{tf}/Noise/weight"]
        out[f"{ours}.bias"] = variables[f"{tf}/bias"]
        out[f"{ours}.affine.weight"] = variables[f"{tf}/StyleMod/weight"].T
        out[f"{ours}.affine.bias"] = variables[f"{tf}/StyleMod/bias"]
        out[f"{ours}.noise_const"] = variables[f"synthesis/noise{layer_index}"][0, 0]

    out["synthesis.b4.const.const"] = variables["synthesis/4x4/Const/const"][0]
    epilogue("synthesis.b4.const", "synthesis/4x4/Const", 0)
    out["synthesis.b4.conv.weight"] = variables["synthesis/4x4/Conv/weight"].transpose(3, 2, 0, 1)
    epilogue("synthesis.b4.conv", "synthesis/4x4/Conv", 1)
    for res_log in range(3, log2 + 1):
        r = 2 ** res_log
        for kind, tf_kind, index in (("conv0", "Conv0_up", 2 * res_log - 4), ("conv1", "Conv1", 2 * res_log - 3)):
            kernel = variables[f"synthesis/{r}x{r}/{tf_kind}/weight"]
            out[f"synthesis.b{r}.{kind}.weight"] = kernel.transpose(3, 2, 0, 1)
            epilogue(f"synthesis.b{r}.{kind}", f"synthesis/{r}x{r}/{tf_kind}", index)
    out["synthesis.torgb.weight"] = variables["synthesis/ToRGB_lod0/weight"].transpose(3, 2, 0, 1)
    out["synthesis.torgb.bias"] = variables["synthesis/ToRGB_lod0/bias"]
    return out
