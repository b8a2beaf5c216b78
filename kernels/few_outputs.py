"""A 1x1 convolution to a few output channels, as StyleGAN2's ToRGB layers run it on the CPU in float32: one
compiled pass (kernels/native/few_outputs.c) from the channels-last activations to the plain-layout image, at
memory speed where oneDNN's 1x1 convolution to 3 channels ran at a third of it. The eager composition it replaces,
and which the tests hold it against:

    y = clamp(conv2d(x, weight[n]) + bias, -clamp, clamp)      (weight[n]: sample n's modulated [out, in] kernel)
"""
from __future__ import annotations

import ctypes

import torch

from .native import FLOAT_P, declared, parallel, pointer

MOST_OUTPUTS = 4     # the kernel's limit (few_outputs.c): ToRGB's 3, a grey image's 1, RGBA's 4


def _declare(lib):
    i, f, p, n = ctypes.c_int, ctypes.c_float, FLOAT_P, ctypes.c_ssize_t
    function = lib.few_outputs
    function.restype = ctypes.c_int
    function.argtypes = [p, i, n, i, p, i, p, f, p, n, n, i]
    lanes = lib.few_outputs_lanes
    lanes.restype = ctypes.c_int
    return lib, function, lanes()


def few_outputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                clamp: float | None = None) -> torch.Tensor | None:
    """y[n, k] = clamp(sum_c x[n, c] * weight[n, k, c] + bias[k]) for x [N, C, H, W] (any layout; float32 on the
    CPU, no gradient) and weight [N, K, C] with K <= MOST_OUTPUTS; clamp None or negative: none. Returns [N, K, H, W]
    in the plain layout, or None where the compiled kernel does not apply."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.ndim != 4 or weight.shape[1] > MOST_OUTPUTS:
        return None
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return None
    kernel = declared("few_outputs", _declare)
    if kernel is None:
        return None
    lib, function, lanes = kernel
    batch_size, channels, height, width = x.shape
    outputs = weight.shape[1]
    x = x.contiguous(memory_format=torch.channels_last)
    weight = weight.float().reshape(batch_size, outputs, channels).contiguous()
    bias = None if bias is None else bias.float().contiguous()
    clamp = -1.0 if clamp is None or clamp < 0 else float(clamp)
    y = torch.empty([batch_size, outputs, height, width], dtype=torch.float32)
    pixels = height * width
    status = parallel(lib, lambda begin, end, threads: function(
        pointer(x), batch_size, pixels, channels, pointer(weight), outputs, pointer(bias), clamp, pointer(y), begin,
        end, threads), -(-pixels // lanes), 1)
    if any(s != 0 for s in status):
        return None
    return y
