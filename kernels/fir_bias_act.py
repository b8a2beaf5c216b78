"""A separable FIR filter followed by the bias, the noise, the leaky ReLU and the clamp, as one compiled pass
(kernels/native/fir_bias_act.c): the second half of a StyleGAN2 upsampling layer on the CPU in float32, after
its transposed convolution. The eager composition it replaces, and which the tests hold it against:

    y = upfirdn2d(x, f, padding=padding, gain=gain) + bias; y += noise * noise_gain; leaky ReLU; clamp
"""
from __future__ import annotations

import ctypes

import torch

from .native import FLOAT_P, declared, noise_map, parallel, pointer
from .upfirdn2d import _padding4, _prepared_filter


def _declare(lib):
    i, f, p = ctypes.c_int, ctypes.c_float, FLOAT_P
    function = lib.fir_bias_act
    function.restype = ctypes.c_int
    function.argtypes = [p, p, i, i, i, i, p, p, i, i, i, i, i, p, p, ctypes.c_ssize_t, f, f, f, i, i, i]
    return lib, function


def fir_bias_act(x: torch.Tensor, f: torch.Tensor, padding, gain: float = 1.0, bias: torch.Tensor | None = None,
                 noise: torch.Tensor | None = None, noise_gain: float = 1.0, slope: float | None = None,
                 clamp: float | None = None) -> torch.Tensor | None:
    """The pass above on x [N, C, H, W] (any layout; float32 on the CPU, no gradient), f a separable FIR filter
    (1-D, or 2-D of rank one) convolved as upfirdn2d does (flipped), padding (x0, x1, y0, y1) or one int, noise
    [N or 1, 1, H', W'] or [H', W']. Returns [N, C, H', W'] laid out channels-last, or None where the compiled
    kernel does not apply (another type or device, a gradient, a filter of higher rank, no compiler)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.ndim != 4 or f is None:
        return None
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, bias, noise)):
        return None
    kernel = declared("fir_bias_act", _declare)
    if kernel is None:
        return None
    lib, function = kernel
    taps, factors = _prepared_filter(f, x, False, gain)
    if factors is None:
        return None
    taps_y, taps_x = (t.contiguous() for t in factors)
    if taps_y.shape != taps_x.shape:
        return None
    count = taps_x.shape[0]
    px0, px1, py0, py1 = _padding4(padding)
    batch_size, channels, height, width = x.shape
    out_h, out_w = height + py0 + py1 - count + 1, width + px0 + px1 - count + 1
    if out_h <= 0 or out_w <= 0:
        return None
    noise_stride = 0
    if noise is not None:
        mapped = noise_map(noise, batch_size, out_h, out_w)
        if mapped is None:
            return None
        noise, noise_stride = mapped
    x = x.contiguous(memory_format=torch.channels_last)
    bias = None if bias is None else bias.float().contiguous()
    y = torch.empty([batch_size, channels, out_h, out_w], dtype=torch.float32, memory_format=torch.channels_last)
    slope = -1.0 if slope is None else float(slope)
    clamp = -1.0 if clamp is None or clamp < 0 else float(clamp)

    def run(begin: int, end: int, threads: int) -> int:
        return function(pointer(x), pointer(y), batch_size, height, width, channels, pointer(taps_x), pointer(taps_y),
                        count, px0, px1, py0, py1, pointer(bias), pointer(noise), noise_stride, float(noise_gain),
                        slope, clamp, begin, end, threads)

    if any(status != 0 for status in parallel(lib, run, out_h, 1)):
        raise MemoryError("fir_bias_act: the compiled kernel could not allocate its row buffers")
    return y
