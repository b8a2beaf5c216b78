"""Filtered leaky ReLU (StyleGAN3): bias, upsample with the FIR filter fu, leaky ReLU times gain, clamp,
downsample with fd. Running the nonlinearity at a higher sampling rate and low-passing around it keeps the
aliasing it creates out of the signal.

`filtered_lrelu_reference` composes the plain reference ops step by step. `filtered_lrelu` composes the fast
ones: separable filters as 1-D depthwise passes, upsampling as a strided transposed convolution (no work on
inserted zeros), downsampling as a strided convolution (no work on dropped samples); StyleGAN3-R's radially
symmetric 2-D filters as 2-D depthwise convolutions. Without autograd (the explorer's render path) it goes a
few channels at a time, so the 2x-rate intermediates stay in cache, and runs separable filters as blocked band
products (`fir_rows_blocked`): measured 2-5x faster for a whole call on StyleGAN3-T 256 px layers. Where the
compiled kernel is available (kernels/native/filtered_lrelu.c, float32 and bfloat16 on the CPU) it answers instead:
one streaming pass over rows, 4-8x the eager path per layer, with R's radial filters as sums of a few separable
terms (`low_rank_factors`).
"""
from __future__ import annotations

import ctypes
import math
from typing import NamedTuple

import torch

from .native import FLOAT_P, declared, parallel, pointer
from .bias_act import bias_act, bias_act_reference
from .upfirdn2d import (_kept_per_tensor, _padding4, _prepare, _prepared_filter, _separable_factors, fir_rows_blocked,
                        upfirdn2d, upfirdn2d_reference)

# Channels per chunk: as many as keep one chunk's 2x-rate intermediate near this many elements (~5 MB of
# float32, within the shared cache), measured fastest among 1, 4, 16 and all channels of [1, 128, 278, 278].
CHUNK_ELEMENTS = 4 * 566 * 566
# Outputs per block of the blocked band products: larger blocks mean fewer, bigger products but more zeros
# multiplied in each window (window ~ block * down / up + taps / up); measured best of 8-64.
UP_BLOCK = 16
DOWN_BLOCK = 8
# Below this side (at the upsampled rate) upfirdn2d's whole-axis band matrices are faster (measured: blocked
# 0.5x as fast at 40 px, 0.7x at 72 px, 1.1x at 104 px, 1.4x at 168 px, 2.6x at 296 px).
BLOCKED_MIN_SIDE = 96
# StyleGAN3-R's radially symmetric 2-D downsampling filters are, to float32's precision, sums of two to four
# separable ones (their singular values fall from 1 to 1e-7 within three to five terms). A term is 1-D passes along
# W and then H; the compiled kernel takes such a sum where it has fewer multiply-adds than the 2-D pass. A sum is
# used when the filter it stands for differs from the real one by at most this much of the filter's absolute sum,
# which bounds any output's error by as much of the largest input (float32 alone rounds a 144-tap sum about as
# far): measured on R's filters, 2-3 terms for the layers of 36-148 px and 1024 channels, 4 for two (BENCHMARKS.md).
LOW_RANK_TOLERANCE = 1e-6
MAX_LOW_RANK = 4            # the compiled kernel's MAX_RANK
FOLDED_TAPS = 12            # the one filter length whose symmetric terms the kernel folds (StyleGAN3's: 6 per factor)
# (An infinite input can meet two terms' taps of opposite signs: where the 2-D pass gives +-inf, a sum of terms may
# give NaN. Finite inputs, and every StyleGAN3 layer's clamped activations, are unaffected.)


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
    grad_needed = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, fu, fd, b))
    if grad_needed or not isinstance(up, int) or not isinstance(down, int):
        return _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, upfirdn2d, bias_act)
    padding = _padding4(padding)
    y = _filtered_lrelu_native(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    if y is not None:
        return y
    up_taps = down_taps = None
    if max(x.shape[2], x.shape[3]) * up >= BLOCKED_MIN_SIDE:
        up_taps = _axis_taps(fu, x, flip_filter, up ** 2, up, UP_BLOCK)
        down_taps = _axis_taps(fd, x, flip_filter, 1, down, DOWN_BLOCK)
    x = bias_act(x, b)
    side = (x.shape[2] * up + padding[2] + padding[3]) * (x.shape[3] * up + padding[0] + padding[1])
    chunk = max(1, CHUNK_ELEMENTS // max(side, 1))
    if chunk >= x.shape[1]:
        return _filtered_lrelu_chunk(x, fu, fd, up_taps, down_taps, up, down, padding, gain, slope, clamp, flip_filter)
    return torch.cat([_filtered_lrelu_chunk(x[:, i:i + chunk], fu, fd, up_taps, down_taps, up, down, padding, gain,
                                            slope, clamp, flip_filter) for i in range(0, x.shape[1], chunk)], dim=1)


def _axis_taps(f, x, flip_filter, gain, factor, block):
    """(fy, fx) correlation taps when `f` is separable and the blocked products can resample by `factor`."""
    if f is None or block % factor != 0:
        return None
    f = _prepare(f, x, flip_filter, gain)
    if f.ndim == 1:
        return f, f
    return _separable_factors(f)


def _filtered_lrelu_chunk(x, fu, fd, up_taps, down_taps, up, down, padding, gain, slope, clamp, flip_filter):
    """Upsample, leaky ReLU, downsample of a few channels (bias already added); no autograd."""
    px0, px1, py0, py1 = padding
    if up_taps is not None:
        fy, fx = up_taps
        # Each pass filters along H of a transposed view, so W is filtered first and H second.
        x = fir_rows_blocked(x.transpose(2, 3), fx, up, 1, px0, px1, UP_BLOCK)
        x = fir_rows_blocked(x.transpose(2, 3), fy, up, 1, py0, py1, UP_BLOCK)
        # x is a fresh buffer of our own: the activation may work in place (same ops as bias_act's).
        torch.nn.functional.leaky_relu_(x, slope)
        if gain != 1:
            x.mul_(gain)
        if clamp is not None and clamp >= 0:
            x.clamp_(-clamp, clamp)
    else:
        x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
        x = bias_act(x, None, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    if down_taps is not None:
        fy, fx = down_taps
        x = fir_rows_blocked(x.transpose(2, 3), fx, 1, down, 0, 0, DOWN_BLOCK)
        return fir_rows_blocked(x.transpose(2, 3), fy, 1, down, 0, 0, DOWN_BLOCK)
    return upfirdn2d(x, fd, down=down, flip_filter=flip_filter)


# -- the compiled kernel (kernels/native/filtered_lrelu.c) ---------------------------------------------------------

def _declare(lib):
    function = lib.filtered_lrelu_channels_last
    function.restype = ctypes.c_int
    p, i, f = FLOAT_P, ctypes.c_int, ctypes.c_float
    function.argtypes = [p] * 3 + [i] * 4 + [p] * 2 + [i] * 6 + [p] * 3 + [i] * 3 + [f] * 3 + [i] * 3
    lib.filtered_lrelu_channel_block.restype = ctypes.c_int
    lib.filtered_lrelu_down_pass.restype = ctypes.c_int
    lib.filtered_lrelu_down_pass.argtypes = [p] * 3 + [i] * 2
    return lib, function, lib.filtered_lrelu_channel_block()


def _filtered_lrelu_native(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """The whole op as one compiled pass (float32 or bfloat16 CPU inference with both filters, the upsampling one
    separable), or None where it does not apply and the eager path runs. Returns [N, C, H, W] laid out
    channels-last, in x's type."""
    if (x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16) or fu is None or fd is None
            or x.ndim != 4 or x.shape[1] == 0 or x.shape[0] == 0):
        return None
    kernel = declared("filtered_lrelu", _declare)
    if kernel is None:
        return None
    lib, function, channel_block = kernel
    as_float = x.new_empty(0, dtype=torch.float32)          # the filters are prepared in float32
    up_taps, up_factors = _prepared_filter(fu, as_float, flip_filter, up ** 2)
    if up_factors is None:
        return None
    up_y, up_x = (t.contiguous() for t in up_factors)
    plan = _down_plan(fd, as_float, flip_filter, down)
    if up_y.shape[0] != up_x.shape[0] or plan is None:
        return None
    down_y, down_x, down_2d, down_rank, down_count = plan
    px0, px1, py0, py1 = padding
    batch_size, channels, height, width = x.shape
    out_h = _out_size(height, up, py0, py1, up_y.shape[0], down, down_count)
    out_w = _out_size(width, up, px0, px1, up_x.shape[0], down, down_count)
    if out_h <= 0 or out_w <= 0:
        return None
    # A bfloat16 preview's activations are filtered in float32 (the kernel's one type) and handed back rounded.
    dtype = x.dtype
    x = x.to(torch.float32).contiguous(memory_format=torch.channels_last)
    bias = None if b is None else b.to(torch.float32).contiguous()
    y = torch.empty([batch_size, channels, out_h, out_w], dtype=torch.float32, memory_format=torch.channels_last)
    clamp_value = -1.0 if clamp is None or clamp < 0 else float(clamp)

    def run(begin: int, end: int, threads: int) -> int:
        return function(pointer(x), pointer(bias), pointer(y), batch_size, channels, height, width, pointer(up_x),
                        pointer(up_y), up_x.shape[0], up, px0, px1, py0, py1, pointer(down_x), pointer(down_y),
                        pointer(down_2d), down_count, down, down_rank, float(slope), float(gain), clamp_value, begin,
                        end, threads)

    if any(status != 0 for status in parallel(lib, run, channels, channel_block)):
        raise MemoryError("filtered_lrelu: the compiled kernel could not allocate its row buffers")
    return y if dtype == torch.float32 else y.to(dtype)


class DownPlan(NamedTuple):
    """The downsampling filter as the compiled kernel takes it: `terms` separable filters (y_taps, x_taps
    [terms, count]), or the 2-D taps [count, count] (y_taps and x_taps None)."""
    y_taps: torch.Tensor | None
    x_taps: torch.Tensor | None
    taps_2d: torch.Tensor | None
    terms: int
    count: int


def _down_plan(fd, as_float, flip_filter, down) -> DownPlan | None:
    """fd prepared for the kernel (float32 taps): its separable factors, else a sum of a few separable terms
    (`low_rank_factors`), else the 2-D taps; None for a 2-D filter that is not square."""
    taps, factors = _prepared_filter(fd, as_float, flip_filter, 1)
    if taps.ndim == 2 and taps.shape[0] != taps.shape[1]:
        return None
    if factors is not None:
        factors = tuple(t.reshape(1, -1) for t in factors)
    else:
        factors = _low_rank_kept(fd, taps, flip_filter, down)
    if factors is None:
        return DownPlan(None, None, taps.contiguous(), 1, taps.shape[-1])
    y_taps, x_taps = (t.contiguous() for t in factors)
    if y_taps.shape[-1] != x_taps.shape[-1]:
        return None
    return DownPlan(y_taps, x_taps, None, y_taps.shape[0], taps.shape[-1])


DOWN_PASSES = ("2-D", "separable terms", "folded symmetric terms")    # by the kernel's filtered_lrelu_down_pass


def down_pass(fd: torch.Tensor, down: int, flip_filter: bool = False) -> str | None:
    """How the compiled kernel runs this downsampling filter (one of DOWN_PASSES, with the number of terms), or
    None where the kernel is unavailable: for tests and benchmarks."""
    kernel = declared("filtered_lrelu", _declare)
    plan = _down_plan(fd, torch.empty(0), flip_filter, down)
    if kernel is None or plan is None:
        return None
    kind = kernel[0].filtered_lrelu_down_pass(pointer(plan.x_taps), pointer(plan.y_taps), pointer(plan.taps_2d),
                                              plan.count, plan.terms)
    return DOWN_PASSES[kind] if kind == 0 else f"{DOWN_PASSES[kind]} ({plan.terms})"


_low_rank_filters: dict = {}


def _low_rank_kept(f, taps, flip_filter, down):
    """`low_rank_factors` of a 2-D filter's prepared taps, kept per stored filter (an SVD per frame and layer
    would cost more than it saves on small layers)."""
    return _kept_per_tensor(_low_rank_filters, f, (flip_filter, down, taps.dtype), lambda: low_rank_factors(taps, down))


def low_rank_factors(taps: torch.Tensor, down: int, tolerance: float = LOW_RANK_TOLERANCE):
    """(fy, fx), each [terms, K], with sum_t outer(fy[t], fx[t]) within `tolerance` of the square 2-D correlation
    taps in the l1 sense (see LOW_RANK_TOLERANCE), in the fewest terms; None where that takes more than
    MAX_LOW_RANK terms or as many multiply-adds per output as the 2-D pass (K * K): each term filters `down` rows
    along W per output row and then one along H, K taps each, or K / 2 where the terms are symmetric (the kernel
    adds mirrored samples first)."""
    if taps.ndim != 2 or taps.shape[0] != taps.shape[1]:
        return None
    size = taps.shape[0]
    f = taps.detach().to(torch.float64).cpu()
    total = float(f.abs().sum())
    if total == 0 or not torch.isfinite(f).all():
        return None
    u, s, vh = torch.linalg.svd(f)
    for terms in range(1, MAX_LOW_RANK + 1):
        fy = u[:, :terms] * s[:terms].sqrt()
        fx = vh[:terms].t() * s[:terms].sqrt()
        if float((fy @ fx.t() - f).abs().sum()) > tolerance * total:
            continue
        fy, fx = _exactly_symmetric(fy.t()), _exactly_symmetric(fx.t())
        # The kernel folds symmetric terms of FOLDED_TAPS taps only (its fir_folded_12).
        symmetric = size == FOLDED_TAPS and torch.equal(fy, fy.flip(-1)) and torch.equal(fx, fx.flip(-1))
        cost = terms * (size // 2 if symmetric else size) * (down + 1)
        return (fy.to(taps.dtype), fx.to(taps.dtype)) if cost < size * size else None
    return None


def _exactly_symmetric(terms: torch.Tensor) -> torch.Tensor:
    """The terms made exactly symmetric (t[k] == t[K - 1 - k]) where each already is to float64's rounding (a
    symmetric filter's singular vectors are symmetric or antisymmetric): the compiled kernel then adds each
    window's mirrored samples before multiplying. Others are returned as they are."""
    mirrored = terms.flip(-1)
    if not torch.allclose(terms, mirrored, rtol=0, atol=1e-12 * float(terms.abs().max())):
        return terms.contiguous()
    return ((terms + mirrored) / 2).contiguous()


def _out_size(n, up, pad0, pad1, up_count, down, down_count):
    upsampled = n * up + pad0 + pad1 - up_count + 1
    return 0 if upsampled < down_count else (upsampled - down_count) // down + 1
