"""Filtered leaky ReLU (StyleGAN3): bias, upsample with the FIR filter fu, leaky ReLU times gain, clamp,
downsample with fd. Running the nonlinearity at a higher sampling rate and low-passing around it keeps the
aliasing it creates out of the signal.

`filtered_lrelu_reference` composes the plain reference ops step by step. `filtered_lrelu` composes the fast
ones: separable filters as 1-D depthwise passes, upsampling as a strided transposed convolution (no work on
inserted zeros), downsampling as a strided convolution (no work on dropped samples); StyleGAN3-R's radially
symmetric 2-D filters as 2-D depthwise convolutions.
"""
from __future__ import annotations

import math

import torch

from .bias_act import bias_act, bias_act_reference
from .upfirdn2d import _padding4, upfirdn2d, upfirdn2d_reference


def _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, upfirdn, activation):
    px0, px1, py0, py1 = _padding4(padding)
    x = activation(x, b)
    x = upfirdn(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    x = activation(x, None, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn(x, fd, down=down, flip_filter=flip_filter)


def filtered_lrelu_reference(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2,
                             clamp=None, flip_filter=False):
    return _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, upfirdn2d_reference,
                           bias_act_reference)


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None,
                   flip_filter=False):
    return _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, upfirdn2d, bias_act)
