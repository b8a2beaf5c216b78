"""Convolution with resampling, and StyleGAN2's modulated convolution.

Padding and filter conventions follow NVlabs' PyTorch code so that stored weights and `resample_filter`
buffers give identical numbers: `flip_weight=True` means a plain correlation (what `conv2d` does); the
upsampling layers of StyleGAN2 use `flip_weight=False`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .upfirdn2d import _padding4, filter_size, upfirdn2d, upfirdn2d_reference
from .few_outputs import MOST_OUTPUTS, few_outputs
from .fir_bias_act import fir_bias_act
from .winograd import (TAPS, TILE, use_fused, winograd_conv3x3, winograd_transforms_compiled,
                       winograd_transposed_conv)


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _resample_padding(f, up, down, padding):
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = _padding4(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return px0, px1, py0, py1


def conv2d_resample_reference(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Upsample with the FIR filter, convolve, downsample: the plain composition of the three steps."""
    px0, px1, py0, py1 = _resample_padding(f, up, down, padding)
    x = upfirdn2d_reference(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                            flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d_reference(x, f, down=down, flip_filter=flip_filter)
    return x


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Same numbers as `conv2d_resample_reference`.

    Upsampling runs as a strided transposed convolution followed by the FIR filter, so the convolution
    never multiplies the zeros that upsampling inserts; downsampling filters first and strides the convolution.
    """
    out_channels, in_channels_per_group, kh, kw = w.shape
    px0, px1, py0, py1 = _resample_padding(f, up, down, padding)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        x, fir_padding = _transposed_conv(x, w, up, (px0, px1, py0, py1), groups, flip_weight)
        x = upfirdn2d(x, f, padding=fir_padding, gain=up ** 2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


def _transposed_conv(x, w, up, resample_padding, groups, flip_weight):
    """The first half of an upsampling convolution: the strided transposed convolution (no inserted zeros
    multiplied). `resample_padding` is `_resample_padding`'s (x0, x1, y0, y1) for the whole resampling. Returns the
    output and the padding [x0, x1, y0, y1] of the FIR filter that completes the upsampling."""
    out_channels, in_channels_per_group, kh, kw = w.shape
    # conv_transpose2d wants [in, out/groups, kh, kw].
    if groups == 1:
        w = w.transpose(0, 1)
    else:
        w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
        w = w.transpose(1, 2).reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
    (pxt, pyt), fir_padding = _transposed_padding(kh, kw, up, resample_padding)
    x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
    return x, fir_padding


def _transposed_padding(kh, kw, up, resample_padding):
    """The padding (x, y) that an upsampling convolution's transposed convolution crops from its whole output, and
    the FIR filter's padding [x0, x1, y0, y1] after it."""
    px0, px1, py0, py1 = resample_padding
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    return (pxt, pyt), [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt]


def modulation_weights(weight, styles, demodulate=True):
    """Per-sample weights w'[n] = weight * s[n] (over input channels), demodulated by rsqrt(sum w'^2 + 1e-8).

    Returns ([N, out, in, kh, kw] weights, [N, out] demodulation coefficients or None).
    """
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    dcoefs = None
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * dcoefs.reshape(styles.shape[0], -1, 1, 1, 1)
    return w, dcoefs


def modulated_conv2d_reference(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                               demodulate=True, flip_weight=True):
    """One sample at a time: build that sample's modulated (and demodulated) kernel, convolve with it."""
    w, _ = modulation_weights(weight, styles, demodulate)
    outputs = [conv2d_resample_reference(x[n:n + 1], w[n], f=resample_filter, up=up, down=down, padding=padding,
                                         flip_weight=flip_weight) for n in range(x.shape[0])]
    x = torch.cat(outputs)
    if noise is not None:
        x = x + noise
    return x


def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """Modulated convolution of a batch.

    fused_modconv=True: the grouped batch path: one grouped convolution with a kernel per sample.
    fused_modconv=False: the shared-kernel path: scale activations by the styles, convolve with the
    shared kernel, scale the result by the demodulation coefficients (cheaper for large batches, and the
    path gradients through the kernel are cheapest in).
    Noise is added after the convolution (before the caller's bias and activation).
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape

    # In float16 the raw sums overflow; normalising first leaves the demodulated result unchanged.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / (in_channels * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    if not fused_modconv:
        dcoefs = None
        if demodulate:
            w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
            dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w, _ = modulation_weights(weight, styles, demodulate)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                        groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# -- The inference path of a StyleGAN2 synthesis layer ---------------------------------------------------------
#
# Measured on the 2-core development CPU (docs/BENCHMARKS.md): a layer spent as much time in the work around its
# convolution (modulating and demodulating a [out, in, 3, 3] kernel, then noise, bias, leaky ReLU, gain and
# clamp as five full passes over the output, with two temporaries) as in the convolution of the large layers,
# and oneDNN ran the large, few-channel layers and their FIR passes about twice as fast in channels-last layout.

# float32: from this side (the output's) on, activations are laid out channels-last; below it the plain layout
# is faster (many channels, small images). 64, not 128: the 64 px layers' neighbours (Winograd's passes, the
# 128 px transposed convolution) read channels-last, and the plain layout there cost two transposing copies of
# 8 MB (3.5 ms each) a frame: whole config F 256 syntheses 300-319 against 318-345 ms, config F 1024 562
# against 572 ms, the same or faster from 64 to 512 px (3 December 2026). bfloat16 convolutions reach AMX only
# channels-last: always (3x3 convs measured 1.6x the plain-layout bfloat16 speed for 512 channels at 64 px, 2.8x
# for 128 at 256 px, 4.6x for 32 at 1024 px).
CHANNELS_LAST_MIN_SIDE = 64
CHANNELS_LAST_DTYPES = (torch.bfloat16,)


# Upsampling convolutions run as polyphase kernels (the 3x3 kernel composed with the FIR filter, split into one
# 3x3 kernel per output phase, then a pixel shuffle) in these types always, in float32 from this output side on.
# It multiplies 4x the MACs of a transposed convolution but drops the transposed convolution and both FIR passes:
# measured 1.5-3.3x faster in bfloat16 (AMX) for every config F layer from 32 to 512 px; in float32 faster only
# at 1024 px (whole network 1.09x; the 256 px layer alone 0.6x). Without AMX (AVX-512 BF16 only, as on AMD's Zen
# 4) bfloat16 is not fast enough to pay 4x the MACs: config F 256 in bfloat16 took 444 ms with polyphase kernels,
# 278 ms with transposed convolutions (float32: 367 ms), so there only the float32 rule applies.
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bfloat16 (Linux reports them in /proc/cpuinfo; elsewhere: assume not)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in f)
    except OSError:
        return False


POLYPHASE_DTYPES = (torch.bfloat16,) if cpu_has_amx() else ()
POLYPHASE_MIN_SIDE = 1024

# float32 3x3 convolutions with at least this many input and output channels, from this input side on, run by
# Winograd's F(4x4, 3x3) (kernels/winograd.py): a quarter of the multiplies, as 36 matrix products at the BLAS
# rate. Measured on the 2-core AMD EPYC (AVX2) against oneDNN's channels-last convolution: 512 channels 2.4-2.6x
# at 32-64 px, 1.4x at 16 px, 0.9x at 8 px; 256 channels 1.7-1.9x at 64-128 px; 128 channels 1.0-1.1x (the
# transforms cost as much as they save), 64 channels 0.5x. Not for upsampling layers: their polyphase form (4x the
# output channels over the smaller input grid) measured 0.4-0.8x of the transposed convolution for config F's
# 512- and 256-channel layers, 1.06x for 256 to 128 channels at 256 px (matrix products with few rows).
WINOGRAD_MIN_CHANNELS = 256
WINOGRAD_MIN_SIDE = 16
# With the compiled transforms (kernels/native/winograd.c: one pass in, one pass out with the work after the
# convolution fused) the algorithm pays for fewer channels: (channels at least, input side at least) pairs, any
# of which selects it. Measured on a 2-core AMD EPYC (Zen 4, AVX-512), against oneDNN's channels-last convolution
# with the three passes after it: 128 channels 1.44x at 128 px, 1.48x at 256 px; 64 channels 1.29x at 512 px,
# 0.91x at 256 px; 32 channels 0.88-0.93x.
WINOGRAD_COMPILED_THRESHOLDS = ((128, 16),)
# The fused pass (kernels/winograd.py: transforms and products of a few tiles at a time, in the cache) carries it
# down to this many channels wherever that pass takes the layer (enough tiles, kernels that stay in the cache):
# 32 channels at 1024 px 1.4-2.1x, 64 at 512 px 1.8-2.4x, 64 at 64 px 1.6-1.7x, 16 at 256 px 1.3x against the
# direct convolution; the separate passes lose to it there (docs/BENCHMARKS.md).
WINOGRAD_FUSED_MIN_CHANNELS = 16


@dataclass(frozen=True)
class Polyphase:
    """An upsampling convolution as one convolution over the input with up*up phase kernels per output channel."""
    kernels: torch.Tensor         # [out * up * up, in, taps, taps], channel o * up * up + phase_y * up + phase_x
    up: int
    padding: tuple[int, int]      # (before, after) on both axes of the input


@dataclass(frozen=True)
class PreparedWeight:
    """What a layer's modulated convolution needs from its stored weight, computed once per weight: the sum of
    squares over each kernel (demodulation becomes a [N, in] x [in, out] product instead of a pass over the
    modulated [N, out, in, kh, kw] weights), for upsampling layers the polyphase kernels, for 3x3 layers with many
    channels the weight in Winograd's form."""
    energy: torch.Tensor          # [out, in]: sum over kh, kw of weight^2
    polyphase: Polyphase | None = None
    winograd: torch.Tensor | None = None    # [36, out, in]: winograd_kernels(weight), the correlation kernels
    # [36, up^2 * out, in]: polyphase_winograd_kernels(polyphase.kernels, up), where an upsampling layer runs so
    polyphase_winograd: torch.Tensor | None = None
    # [36, out, in]: transposed_winograd_kernels(weight, flip_weight), where an upsampling layer's transposed
    # convolution runs by Winograd's algorithm (use_transposed_winograd)
    transposed_winograd: torch.Tensor | None = None
    # matrix_weight(weight, up, flip_weight), where a layer on a small image runs as one matrix product (use_matrix)
    matrix: torch.Tensor | None = None


def prepare_weight(weight: torch.Tensor, resample_filter: torch.Tensor | None = None, up: int = 1,
                   padding: int = 0, flip_weight: bool = True, in_size: int | None = None) -> PreparedWeight:
    energy = weight.detach().float().square().sum(dim=[2, 3])
    polyphase = None
    if up > 1 and resample_filter is not None and in_size is not None:
        polyphase = polyphase_kernels(weight.detach().float(), resample_filter, up, padding, flip_weight, in_size)
    return PreparedWeight(energy=energy, polyphase=polyphase)


def polyphase_kernels(weight, f, up, padding, flip_weight, in_size) -> Polyphase | None:
    """The phase kernels of conv2d_resample(x, weight, f, up, padding) for square inputs of side `in_size`,
    or None when the phases do not share one tap count and offset (then the plain path runs).

    The reference zero-inserts x by `up`, pads by (p0, p1), correlates with the flipped FIR filter (times up^2)
    and then with the 3x3 kernel: one correlation with K = their full convolution (kh + fh - 1 taps). Output
    Y = up*u + p reads inputs (Y + k - p0) / up, so phase p uses the taps k = k0 + up*m with k0 = (p0 - p) mod up,
    starting at input u + (p + k0 - p0) / up.
    """
    out_channels, in_channels, kh, kw = weight.shape
    if kh != kw or f is None:
        return None
    weight, f = weight.detach().float(), f.float()
    taps_2d = f.outer(f) if f.ndim == 1 else f
    fh, fw = taps_2d.shape
    if fh != fw:
        return None
    p0, p1, _, _ = _resample_padding(f, up, 1, padding)
    correlation = taps_2d.flip([0, 1]) * up ** 2                        # what upfirdn2d correlates with
    conv_kernel = weight if flip_weight else weight.flip([2, 3])        # what the convolution correlates with
    length = kh + fh - 1
    # K = full convolution of the two correlation kernels, as shifted adds of the small FIR over the big kernel.
    composed = weight.new_zeros(out_channels, in_channels, length, length)
    for a in range(fh):
        for b in range(fw):
            composed[:, :, a:a + kh, b:b + kw] += correlation[a, b] * conv_kernel
    starts, counts = set(), set()
    phases = []
    for p in range(up):
        k0 = (p0 - p) % up
        offset = p + k0 - p0
        if offset % up:
            return None
        starts.add(offset // up)
        counts.add(len(range(k0, length, up)))
        phases.append(k0)
    if len(starts) != 1 or len(counts) != 1:
        return None
    taps, before = counts.pop(), -starts.pop()
    out_size = in_size * up + p0 + p1 - length + 1
    if out_size % up or before < 0:
        return None
    after = out_size // up - in_size - before + taps - 1
    if after < 0:
        return None
    kernels = torch.stack([torch.stack([composed[:, :, ky::up, kx::up] for kx in phases], dim=1) for ky in phases],
                          dim=1)                                            # [out, up, up, in, taps, taps]
    return Polyphase(kernels.reshape(out_channels * up * up, in_channels, taps, taps).contiguous(), up,
                     (before, after))


def demodulation_coefficients(energy: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """[N, out] rsqrt(sum_{i,k} (weight[o, i, k] * s[n, i])^2 + 1e-8), the same sum regrouped over i."""
    return (styles.square() @ energy.t() + 1e-8).rsqrt()


def modulated_conv2d_bias_act_reference(x, weight, styles, bias, noise=None, up=1, padding=0, resample_filter=None,
                                        demodulate=True, flip_weight=True, act="lrelu", alpha=None, gain=None,
                                        clamp=None, compute_dtype=None):
    """The plain composition: modulated convolution (noise added), then bias, activation, gain and clamp."""
    from .bias_act import bias_act_reference
    y = modulated_conv2d_reference(x, weight, styles, noise=noise, up=up, padding=padding,
                                   resample_filter=resample_filter, demodulate=demodulate, flip_weight=flip_weight)
    return bias_act_reference(y, bias, act=act, alpha=alpha, gain=gain, clamp=clamp)


def use_channels_last(x: torch.Tensor, up: int, dtype: torch.dtype, min_side: int | None = None) -> bool:
    """Whether a convolution of x (upsampled by `up`) computing in `dtype` runs faster channels-last."""
    if x.device.type != "cpu":
        return False
    min_side = CHANNELS_LAST_MIN_SIDE if min_side is None else min_side
    return dtype in CHANNELS_LAST_DTYPES or x.shape[-1] * up >= min_side


def use_polyphase(x: torch.Tensor, up: int, dtype: torch.dtype) -> bool:
    """Whether an upsampling convolution of x computing in `dtype` runs as polyphase kernels."""
    return up > 1 and (dtype in POLYPHASE_DTYPES or x.shape[-1] * up >= POLYPHASE_MIN_SIDE)


POLYPHASE_WINOGRAD = True   # the switch for the rule below (tests turn it off to reach the direct polyphase path)


def use_polyphase_winograd(polyphase: Polyphase | None, dtype: torch.dtype) -> bool:
    """Whether an upsampling layer's polyphase kernels run by Winograd's algorithm, the pixel shuffle and the work
    after the convolution in the compiled output transform: float32 3x3 phase kernels with even padding, where the
    transforms are compiled. Measured for config F's b1024.conv0 (64 to 32 channels, 512 to 1024 px): 135-179 ms
    against 200 ms for the polyphase kernels as one direct convolution; at 512 px equal (83 against 81 ms), so it
    runs where polyphase kernels do in float32 (POLYPHASE_MIN_SIDE)."""
    return (POLYPHASE_WINOGRAD and polyphase is not None and dtype == torch.float32
            and polyphase.kernels.shape[-2:] == (3, 3)
            and polyphase.padding[0] == polyphase.padding[1] and winograd_transforms_compiled())


# Upsampling layers of StyleGAN2 from this input side on (where they run channels-last) run their stride-2
# transposed convolution by Winograd's algorithm (kernels/winograd.py: F(4, 2) on the even outputs, 81 products
# for a 4 x 4 tile where the direct form has 144), the FIR filter and the rest after it as before. Measured on the
# 2-core AMD EPYC (Zen 4), the transposed convolution alone against oneDNN's with the per-frame modulated weight:
# 128 -> 64 channels at 256 px 40 against 56 ms, 256 -> 128 at 128 px 44-47 against 60-63 ms, 512 -> 256 at 64
# px 44 against 49 ms, 512 -> 512 at 32 px 29 against 34 ms; at 16 px and below slower than the plain layout's
# grouped convolution (13.6 against 8.0 ms at 16 px: 38 MB of transformed kernels read for few tiles).
TRANSPOSED_WINOGRAD_MIN_SIDE = 32


def use_transposed_winograd(x: torch.Tensor, weight: torch.Tensor, up: int, dtype: torch.dtype, padding: int,
                            resample_filter: torch.Tensor | None) -> bool:
    """Whether an upsampling layer's transposed convolution (3x3 kernel, stride 2, followed by its FIR filter) runs
    by Winograd's algorithm: float32 on the CPU, not as polyphase kernels, where the transforms are compiled and
    the transposed convolution is whole (no output cropped)."""
    out_channels, in_channels, kh, kw = weight.shape
    if not (x.device.type == "cpu" and dtype == torch.float32 and up == 2 and (kh, kw) == (TAPS, TAPS)
            and resample_filter is not None and isinstance(padding, int) and not use_polyphase(x, up, dtype)
            and min(x.shape[-2:]) >= TRANSPOSED_WINOGRAD_MIN_SIDE and use_channels_last(x, up, dtype)):
        return False
    cropped, _ = _transposed_padding(kh, kw, up, _resample_padding(resample_filter, up, 1, padding))
    return cropped == (0, 0) and winograd_transforms_compiled()


# Layers of many channels on small images run as one matrix product with the stored weight (`matrix_weight`): a
# 3x3 layer over the input's unfolded 3x3 neighbourhoods, an upsampling layer's transposed convolution as the weight
# times the input, folded back into the image. The styles scale the input's channels and the demodulation the
# output's, so nothing per frame touches the weight but the product, which reads it once; the other paths modulate
# it (9.4 MB at 512 channels) and oneDNN reorders it again, which is most of their time on these images. Measured
# for 512 channels (2-core AMD EPYC, Zen 4): upsampling from 4, 8, 16 px 4.9 -> 2.1, 7.8 -> 4.0, 12.4 -> 9.5 ms;
# 3x3 at 4 and 8 px 2.9 -> 1.6 and 4.3 -> 3.7 ms; at 16 px Winograd's 5.8 ms beats it (11.5 ms).
MATRIX_MAX_SIDE_UP = 16       # upsampling layers up to this input side
MATRIX_MAX_SIDE = 8           # 3x3 layers up to this side
MATRIX_MIN_CHANNELS = 256


def use_matrix(x: torch.Tensor, weight: torch.Tensor, up: int, dtype: torch.dtype, padding: int,
               resample_filter: torch.Tensor | None, flip_weight: bool) -> bool:
    """Whether a float32 CPU layer runs as one matrix product with its stored weight (`matrix_weight`): a 3x3
    correlation up to MATRIX_MAX_SIDE, or a whole (uncropped) stride-2 transposed convolution with its FIR filter
    after it up to MATRIX_MAX_SIDE_UP, of at least MATRIX_MIN_CHANNELS channels."""
    out_channels, in_channels, kh, kw = weight.shape
    if not (x.device.type == "cpu" and dtype == torch.float32 and (kh, kw) == (TAPS, TAPS)
            and isinstance(padding, int) and min(in_channels, out_channels) >= MATRIX_MIN_CHANNELS):
        return False
    if up == 1:
        return flip_weight and max(x.shape[-2:]) <= MATRIX_MAX_SIDE
    if up != 2 or resample_filter is None or max(x.shape[-2:]) > MATRIX_MAX_SIDE_UP or use_polyphase(x, up, dtype):
        return False
    cropped, _ = _transposed_padding(kh, kw, up, _resample_padding(resample_filter, up, 1, padding))
    return cropped == (0, 0)


def matrix_weight(weight: torch.Tensor, up: int = 1, flip_weight: bool = True) -> torch.Tensor:
    """A layer's weight [out, in, kh, kw] as the matrix that `use_matrix`'s product takes: [out, in * kh * kw] (the
    order F.unfold gives its columns) for a correlation; for an upsampling layer's transposed convolution
    [out * kh * kw, in] (the order F.fold sums), taps flipped where flip_weight (output 2u + k gets input u times
    weight[..., k] when not)."""
    weight = weight.detach().float()
    out_channels, in_channels, kh, kw = weight.shape
    if up == 1:
        return weight.reshape(out_channels, in_channels * kh * kw).contiguous()
    taps = weight.flip([2, 3]) if flip_weight else weight
    return taps.permute(0, 2, 3, 1).reshape(out_channels * kh * kw, in_channels).contiguous()


def use_winograd(x: torch.Tensor, weight: torch.Tensor, up: int, dtype: torch.dtype, tile: int = TILE) -> bool:
    """Whether the convolution of x with weight [out, in, kh, kw] (upsampling by `up`) computing in `dtype` runs
    by Winograd's algorithm (in F(tile x tile, 3x3), as the caller's prepared kernels are)."""
    out_channels, in_channels, kh, kw = weight.shape
    if not (x.device.type == "cpu" and dtype == torch.float32 and up == 1 and (kh, kw) == (3, 3)):
        return False
    channels, side = min(in_channels, out_channels), x.shape[-1]
    if channels >= WINOGRAD_MIN_CHANNELS and side >= WINOGRAD_MIN_SIDE:
        return True
    if not winograd_transforms_compiled():
        return False
    if any(channels >= c and side >= s for c, s in WINOGRAD_COMPILED_THRESHOLDS):
        return True
    tiles = x.shape[0] * math.ceil(x.shape[-2] / tile) * math.ceil(x.shape[-1] / tile)
    return channels >= WINOGRAD_FUSED_MIN_CHANNELS and use_fused(in_channels, out_channels, tiles, tile)


def modulated_conv2d_bias_act(x, weight, styles, bias, noise=None, up=1, padding=0, resample_filter=None,
                              demodulate=True, flip_weight=True, act="lrelu", alpha=None, gain=None, clamp=None,
                              prepared: PreparedWeight | None = None, compute_dtype: torch.dtype | None = None):
    """Same numbers as `modulated_conv2d_bias_act_reference` (float32: within float rounding), for inference only.

    The activation gain and the demodulation go into the per-sample kernel with the styles in one product
    (gain * lrelu(v) == lrelu(gain * v) for a positive gain), the bias into the convolution, so the output is
    written once by the convolution and then changed in place by the noise, the leaky ReLU and the clamp: three
    passes, no temporaries. `compute_dtype` (bfloat16, float16) runs the convolution and everything after it in
    that type; the kernel is modulated in float32 and rounded once.
    """
    from .bias_act import _resolve
    if act not in ("linear", "lrelu"):
        raise ValueError(f"the fused path takes linear or lrelu, not {act!r}")
    alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    if gain <= 0:
        raise ValueError("the fused path needs a positive gain (it moves the gain before the activation)")
    dtype = compute_dtype or x.dtype
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    styles = styles.float()
    b = None if bias is None else (bias.float() * gain).to(dtype)
    slope = alpha if act == "lrelu" else None
    polyphase = prepared.polyphase if prepared is not None and use_polyphase(x, up, dtype) else None
    # Winograd's algorithm: for a 3x3 layer, or an upsampling layer's polyphase kernels (then pixel-shuffled).
    winograd = None
    if prepared is not None and dtype == torch.float32:
        if prepared.winograd is not None and up == 1 and flip_weight and isinstance(padding, int):
            winograd = (prepared.winograd, padding, 1)
        elif polyphase is not None and prepared.polyphase_winograd is not None and x.device.type == "cpu":
            winograd = (prepared.polyphase_winograd, polyphase.padding[0], polyphase.up)
    if winograd is not None:
        # The styles scale the input's channels and the demodulation the output's as they are copied in and out;
        # the noise, leaky ReLU and clamp happen in the output transform where it is compiled.
        kernels, winograd_padding, shuffle = winograd
        out_scale = demodulation_coefficients(prepared.energy, styles) if demodulate else None
        return winograd_conv3x3(x, kernels, styles * gain, out_scale, b, padding=winograd_padding, noise=noise,
                                noise_gain=gain, slope=slope, clamp=clamp, shuffle=shuffle)

    if ((kh, kw) == (1, 1) and up == 1 and padding == 0 and out_channels <= MOST_OUTPUTS and noise is None
            and act == "linear" and dtype == torch.float32 and x.device.type == "cpu"):
        # ToRGB: one compiled pass from the channels-last activations to the plain-layout image (None where it is
        # not compiled: the paths below).
        w = weight.float().reshape(1, out_channels, in_channels) * (styles * gain).unsqueeze(1)
        if demodulate:
            energy = (prepared or prepare_weight(weight)).energy
            w = w * demodulation_coefficients(energy, styles).unsqueeze(2)
        y = few_outputs(x, w, b, clamp)
        if y is not None:
            return y
    if (prepared is not None and (prepared.matrix is not None or prepared.transposed_winograd is not None)
            and dtype == torch.float32 and x.device.type == "cpu" and isinstance(padding, int)):
        # These forms are made only where use_matrix and use_transposed_winograd allow them (with the call's
        # flip_weight); the checks here keep a PreparedWeight built elsewhere from giving a wrong size (a cropped
        # transposed convolution) or a true convolution where the matrix holds a correlation.
        whole, fir_padding = up == 1, None
        if up == 2 and resample_filter is not None:
            cropped, fir_padding = _transposed_padding(kh, kw, up, _resample_padding(resample_filter, up, 1, padding))
            whole = cropped == (0, 0)
        out_scale = demodulation_coefficients(prepared.energy, styles) if demodulate else None
        if prepared.matrix is not None and whole and (up == 2 or flip_weight):
            return _by_matrix(x, prepared.matrix, styles * gain, out_scale, b, noise, up, padding, resample_filter,
                              fir_padding, (kh, kw), act, alpha, gain, slope, clamp)
        if (prepared.transposed_winograd is not None and polyphase is None and up == 2
                and (kh, kw) == (TAPS, TAPS) and whole):
            # The styles scale the input's channels and the demodulation the transposed convolution's output, as
            # they are copied in and out; the FIR filter and the rest follow in one pass.
            z = winograd_transposed_conv(x, prepared.transposed_winograd, styles * gain, out_scale)
            if z is not None:
                return _fir_bias_act(z, resample_filter, fir_padding, up, b, noise, act, alpha, gain, slope, clamp)

    scale = styles.unsqueeze(1) * gain                                     # [N, 1, in]
    if demodulate:
        energy = (prepared or prepare_weight(weight)).energy
        scale = scale * demodulation_coefficients(energy, styles).unsqueeze(2)   # [N, out, in]
    if polyphase is not None:
        # Every phase kernel of output channel o is scaled like o's 3x3 kernel; the bias is the same per phase.
        phases = polyphase.up ** 2
        scale = scale.expand(batch_size, out_channels, in_channels).repeat_interleave(phases, dim=1)
        w = (polyphase.kernels.unsqueeze(0) * scale.unsqueeze(3).unsqueeze(4)).to(dtype)
        b = None if b is None else b.repeat_interleave(phases)
        kh = kw = w.shape[-1]
        out_channels *= phases
        direct = True
        padding = polyphase.padding
    else:
        w = (weight.float().unsqueeze(0) * scale.unsqueeze(3).unsqueeze(4)).to(dtype)
        if w.shape[1] != out_channels:
            w = w.expand(batch_size, out_channels, in_channels, kh, kw)
        direct = up == 1 and kh == kw and isinstance(padding, int) and kh == 2 * padding + 1
        if direct and not flip_weight and kh > 1:
            w = w.flip([3, 4])     # conv2d correlates; flip_weight=False asks for a true convolution

    channels_last = use_channels_last(x, up, dtype)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    x = x.to(dtype).contiguous(memory_format=memory_format)
    if channels_last and not direct and polyphase is None and dtype == torch.float32 and resample_filter is not None:
        # The transposed convolution, then its FIR filter with the bias, noise, leaky ReLU and clamp in one
        # compiled pass (None where it is not compiled: the eager steps below run instead).
        resample_padding = _resample_padding(resample_filter, up, 1, padding)
        halves = [_transposed_conv(x[n:n + 1], w[n].contiguous(memory_format=memory_format), up, resample_padding, 1,
                                   flip_weight) for n in range(batch_size)]
        fir_padding = halves[0][1]
        y = halves[0][0] if batch_size == 1 else torch.cat([half for half, _ in halves])
        return _fir_bias_act(y, resample_filter, fir_padding, up, b, noise, act, alpha, gain, slope, clamp)
    if channels_last:
        # A grouped convolution would need [1, N*C, H, W], which is no view of a channels-last batch: run the
        # samples one by one (the same arithmetic).
        outputs = [_conv_bias(x[n:n + 1], w[n].contiguous(memory_format=memory_format), b, up, padding,
                              resample_filter, flip_weight, direct, 1) for n in range(batch_size)]
        y = outputs[0] if batch_size == 1 else torch.cat(outputs)
    else:
        x = x.reshape(1, batch_size * in_channels, *x.shape[2:])
        w = w.reshape(batch_size * out_channels, in_channels, kh, kw)
        y = _conv_bias(x, w, None if b is None else b.repeat(batch_size), up, padding, resample_filter,
                       flip_weight, direct, batch_size)
        y = y.reshape(batch_size, out_channels, *y.shape[2:])
    if polyphase is not None:
        y = F.pixel_shuffle(y, polyphase.up)
    return _noise_act_clamp(y, noise, act, alpha, gain, clamp)


def _by_matrix(x, matrix, in_scale, out_scale, b, noise, up, padding, resample_filter, fir_padding, kernel_size, act,
               alpha, gain, slope, clamp):
    """A layer as one matrix product with `matrix_weight`: see use_matrix. fir_padding: for an upsampling layer,
    its FIR filter's padding after the whole transposed convolution."""
    batch_size, in_channels, height, width = x.shape
    x = x.float() * in_scale.reshape(batch_size, in_channels, 1, 1)
    kh, kw = kernel_size
    if up == 1:
        columns = F.unfold(x, kernel_size, padding=padding)                # [N, in * kh * kw, out_h * out_w]
        y = torch.matmul(matrix, columns).view(batch_size, -1, height + 2 * padding - kh + 1,
                                                width + 2 * padding - kw + 1)
        if out_scale is not None:
            y.mul_(out_scale.reshape(batch_size, -1, 1, 1))
        if b is not None:
            y.add_(b.reshape(1, -1, 1, 1))
        return _noise_act_clamp(y, noise, act, alpha, gain, clamp)
    # The whole transposed convolution: each input pixel times the weight, summed into the output by F.fold.
    contributions = torch.matmul(matrix, x.reshape(batch_size, in_channels, height * width))
    z = F.fold(contributions, ((height - 1) * up + kh, (width - 1) * up + kw), kernel_size, stride=up)
    if out_scale is not None:
        z.mul_(out_scale.reshape(batch_size, -1, 1, 1))
    return _fir_bias_act(z, resample_filter, fir_padding, up, b, noise, act, alpha, gain, slope, clamp)


def _fir_bias_act(y, resample_filter, fir_padding, up, b, noise, act, alpha, gain, slope, clamp):
    """The second half of an upsampling layer after its transposed convolution y: the FIR filter, bias, noise,
    leaky ReLU and clamp, in one compiled pass where there is one, else in eager steps."""
    fused = fir_bias_act(y, resample_filter, fir_padding, up ** 2, b, noise, gain, slope, clamp)
    if fused is not None:
        return fused
    y = upfirdn2d(y, resample_filter, padding=fir_padding, gain=up ** 2)
    if b is not None:
        y.add_(b.reshape(1, -1, 1, 1))
    return _noise_act_clamp(y, noise, act, alpha, gain, clamp)


def _noise_act_clamp(y, noise, act, alpha, gain, clamp):
    """The work after the convolution, in place: noise (scaled by the gain), leaky ReLU, clamp."""
    if noise is not None:
        y.add_(noise.to(y.dtype), alpha=gain)
    if act == "lrelu":
        torch.nn.functional.leaky_relu_(y, alpha)
    if clamp >= 0:
        y.clamp_(-clamp, clamp)
    return y


def _conv_bias(x, w, b, up, padding, resample_filter, flip_weight, direct, groups):
    """The convolution of one group of samples, with the bias added in it where the convolution can."""
    if direct:
        if isinstance(padding, tuple):
            before, after = padding
            if before != after:
                x = F.pad(x, [before, after, before, after])
                before = 0
            return F.conv2d(x, w, b, padding=before, groups=groups)
        return F.conv2d(x, w, b, padding=padding, groups=groups)
    y = conv2d_resample(x, w, f=resample_filter, up=up, padding=padding, groups=groups, flip_weight=flip_weight)
    if b is not None:
        y.add_(b.reshape(1, -1, 1, 1))
    return y

