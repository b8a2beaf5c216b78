"""Tensor ops of the StyleGAN family. Each fast op has a plain `*_reference` twin that tests hold it against."""
from .bias_act import ACTIVATIONS, bias_act, bias_act_reference, default_gain
from .modulated_conv import (conv2d_resample, conv2d_resample_reference, modulated_conv2d,
                             modulated_conv2d_reference)
from .upfirdn2d import (downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_reference, upsample2d)

__all__ = [
    "ACTIVATIONS", "bias_act", "bias_act_reference", "default_gain", "conv2d_resample",
    "conv2d_resample_reference", "modulated_conv2d", "modulated_conv2d_reference", "downsample2d", "filter2d",
    "setup_filter", "upfirdn2d", "upfirdn2d_reference", "upsample2d",
]
from .adain import adain, adain_reference, instance_norm_reference  # noqa: E402

__all__ += ["adain", "adain_reference", "instance_norm_reference"]
