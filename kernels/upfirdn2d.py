"""Upsample, FIR-filter, downsample: the resampling primitive of StyleGAN2 and StyleGAN3.

`upfirdn2d(x, f, up, down, padding)` means: insert `up - 1` zeros between input pixels, pad (or crop, for
negative values) by `padding`, convolve with the FIR filter `f` (a true convolution, so the filter is flipped
before a correlation unless `flip_filter`), and keep every `down`-th pixel.

`upfirdn2d_reference` does exactly that, step by step. `upfirdn2d` computes the same numbers faster:
- a separable filter (1-D, or a 2-D outer product such as the stored [1,3,3,1] x [1,3,3,1] kernel) runs as two
  1-D passes instead of one 2-D pass;
- upsampling runs as a strided transposed convolution, so no arithmetic is spent on inserted zeros;
- downsampling runs as a strided convolution, so no discarded pixel is computed.
Every pass is depthwise (`groups=C`) over the [N, C, H, W] tensor: writing the blur as a one-channel
convolution over N*C images instead was measured ~5x slower on CPU.
- long separable filters (StyleGAN3's 12-tap ones) and small images run as two matrix products instead: each
  axis's upsample-pad-filter-downsample is a banded matrix, and a matrix product runs near the CPU's peak while
  a depthwise convolution with many taps runs far below it (2-5x faster measured for sides of 80-176 px;
  no faster from ~280 px, where the band matrices waste most of their arithmetic).
"""
from __future__ import annotations

import weakref
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

IntPair = Union[int, Sequence[int]]


def _pair(value: IntPair) -> tuple[int, int]:
    """(x, y) from an int or a pair."""
    if isinstance(value, int):
        return value, value
    value = tuple(int(v) for v in value)
    assert len(value) == 2
    return value[0], value[1]


def _padding4(padding: IntPair) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, an (x, y) pair or four values."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    assert len(padding) == 4
    return padding[0], padding[1], padding[2], padding[3]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D or 2-D filter; None means the 1x1 identity filter."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[-1], f.shape[-2]


def setup_filter(f, device=None, normalize: bool = True, flip_filter: bool = False, gain: float = 1,
                 separable: bool | None = None) -> torch.Tensor:
    """A float32 FIR filter tensor, as NVlabs' networks store it in their `resample_filter` buffers.

    A 1-D filter of fewer than 8 taps becomes its 2-D outer product unless `separable` says otherwise.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[np.newaxis]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = f.outer(f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _separable_factors(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(fy, fx) with f == outer(fy, fx), or None when the 2-D filter is not rank one."""
    if f.ndim == 1:
        return f, f
    # Take the row and column through the largest tap; f is rank one when their outer product
    # divided by that tap reproduces it.
    flat_index = int(f.abs().argmax())
    i, j = divmod(flat_index, f.shape[1])
    pivot = f[i, j]
    if pivot == 0:
        return None
    fy = f[:, j] / pivot
    fx = f[i, :]
    if not torch.allclose(fy.outer(fx), f, rtol=1e-6, atol=1e-8 * float(f.abs().max())):
        return None
    return fy, fx


def _pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Pad with zeros where a value is positive, crop where it is negative."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]


def _prepare(f, x, flip_filter, gain):
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2)
    f = f.to(dtype=x.dtype, device=x.device)
    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:
        # A convolution, not a correlation: flip before handing to conv2d.
        f = f.flip(list(range(f.ndim)))
    return f


def upfirdn2d_reference(x: torch.Tensor, f: torch.Tensor | None, up: IntPair = 1, down: IntPair = 1,
                        padding: IntPair = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """The definition, one step at a time: insert zeros, pad, convolve with the full filter, subsample."""
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    padx0, padx1, pady0, pady1 = _padding4(padding)
    batch_size, num_channels, in_height, in_width = x.shape

    x = x.reshape([batch_size, num_channels, in_height, 1, in_width, 1])
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape([batch_size, num_channels, in_height * upy, in_width * upx])

    x = _pad_or_crop(x, padx0, padx1, pady0, pady1)

    f = _prepare(f, x, flip_filter, gain)
    if f.ndim == 1:
        f = f.outer(f)  # a 1-D filter applies along both axes
    weight = f[np.newaxis, np.newaxis].repeat([num_channels, 1, 1, 1])
    x = F.conv2d(x, weight, groups=num_channels)

    return x[:, :, ::downy, ::downx]


def _depthwise_1d(x, taps, axis, stride, transpose):
    """One depthwise pass of a 1-D filter along H (axis=2) or W (axis=3)."""
    channels = x.shape[1]
    if axis == 3:
        weight = taps.reshape(1, 1, 1, -1)
        stride2 = (1, stride)
    else:
        weight = taps.reshape(1, 1, -1, 1)
        stride2 = (stride, 1)
    weight = weight.expand(channels, 1, *weight.shape[2:])
    if transpose:
        return F.conv_transpose2d(x, weight, stride=stride2, groups=channels)
    return F.conv2d(x, weight, stride=stride2, groups=channels)


MATMUL_MIN_TAPS = 8        # filters this long run as matrix products at any size ...
MATMUL_MAX_SIZE = 128      # ... and shorter ones while both image sides are at most this
MATMUL_SIZE_LIMIT = 512    # (input side x up) beyond this the band matrices waste more than the product gains
# Below this many channels, larger images run as blocked band products (`fir_rows_blocked`) instead of depthwise
# convolutions, which PyTorch runs far below memory speed for so few channels: the skip architecture's RGB
# upsampling from 512 to 1024 px took 36 ms that way and 7 ms blocked (8 channels: 55-61 against 16 ms); from 16
# channels the depthwise convolutions are as fast (28 against 30 ms at 512 px), and faster at 32 (61 against 89).
FEW_CHANNELS = 16
FEW_CHANNELS_BLOCK = 32     # outputs per block of those products
_axis_matrices: dict = {}


_taps_keys: dict = {}
KEPT_PER_TENSOR_MAX = 512  # entries of each per-tensor cache below before it starts again


def _kept_per_tensor(cache: dict, tensor: torch.Tensor, key: tuple, compute):
    """compute(), kept in `cache` per tensor object and version (plus `key`): the filters a network passes are the
    same buffers every frame, and an in-place change (loading a state dict) bumps the version, so a changed filter
    makes a new entry. A change through `tensor.data` bumps no version and is not seen. Tensors that need a
    gradient, inference tensors (no version counter) and tracing compute every call."""
    if tensor.requires_grad or tensor.is_inference() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return compute()
    full_key = (id(tensor), tensor._version, *key)
    entry = cache.get(full_key)
    if entry is not None and entry[0]() is tensor:     # the same object, not a new one at a reused address
        return entry[1]
    value = compute()
    if len(cache) >= KEPT_PER_TENSOR_MAX:
        cache.clear()
    cache[full_key] = (weakref.ref(tensor), value)
    return value


def _taps_key(taps: torch.Tensor) -> tuple:
    """What identifies a filter in the band-matrix caches: dtype, device and values (numpy has no bfloat16,
    so the values are read as float32, which holds every bfloat16 exactly). Reading the values copies them to
    the host, on a GPU a sync per call, so the key is kept per filter object."""
    return _kept_per_tensor(_taps_keys, taps, (), lambda: _read_taps_key(taps))


def _read_taps_key(taps: torch.Tensor) -> tuple:
    return taps.dtype, str(taps.device), taps.detach().cpu().float().numpy().tobytes()


def _axis_matrix(length, taps, up, down, pad0, pad1) -> torch.Tensor:
    """[length, out_length] matrix A with (x @ A) = zero-insert by `up`, pad, correlate with `taps`, keep every
    `down`-th sample, along the last axis."""
    key = (length, up, down, pad0, pad1, _taps_key(taps))
    matrix = _axis_matrices.get(key)
    if matrix is None:
        count = taps.shape[0]
        out_length = (length * up + pad0 + pad1 - count) // down + 1
        i = torch.arange(length, device=taps.device)[:, None]
        o = torch.arange(out_length, device=taps.device)[None, :]
        k = i * up + pad0 - o * down          # the tap that joins input i to output o
        inside = (k >= 0) & (k < count)
        matrix = torch.where(inside, taps.detach()[k.clamp(0, count - 1)], torch.zeros((), dtype=taps.dtype,
                                                                                         device=taps.device))
        if len(_axis_matrices) > 256:
            _axis_matrices.clear()
        _axis_matrices[key] = matrix
    return matrix


_prepared_filters: dict = {}


def _prepared_filter(f, x, flip_filter, gain):
    """(_prepare(...), its separable factors or None), kept per stored filter: preparing and testing one costs
    about 0.3 ms (and a device sync on a GPU) per call, a tenth of a 64 px network's frame."""
    def prepare():
        prepared = _prepare(f, x, flip_filter, gain)
        return prepared, (prepared, prepared) if prepared.ndim == 1 else _separable_factors(prepared)
    if f is None:
        return prepare()
    return _kept_per_tensor(_prepared_filters, f, (x.dtype, x.device, flip_filter, float(gain)), prepare)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: IntPair = 1, down: IntPair = 1,
              padding: IntPair = 0, flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Same result as `upfirdn2d_reference`, computed without wasted work (see the module docstring)."""
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    padx0, padx1, pady0, pady1 = _padding4(padding)
    f, factors = _prepared_filter(f, x, flip_filter, gain)
    channels = x.shape[1]
    height, width = x.shape[2], x.shape[3]

    if factors is not None and not f.requires_grad and max(height, width) * max(upx, upy) <= MATMUL_SIZE_LIMIT and (
            max(factors[0].shape[0], factors[1].shape[0]) >= MATMUL_MIN_TAPS or max(height, width) <= MATMUL_MAX_SIZE):
        fy, fx = factors
        # The correlation kernel is the flipped filter; the matrix applies it as a correlation.
        columns = _axis_matrix(width, fx, upx, downx, padx0, padx1)
        rows = _axis_matrix(height, fy, upy, downy, pady0, pady1)
        return rows.t() @ (x @ columns)

    if (factors is not None and channels < FEW_CHANNELS and x.device.type == "cpu" and FEW_CHANNELS_BLOCK % upx == 0
            and FEW_CHANNELS_BLOCK % upy == 0 and not (torch.is_grad_enabled() and (x.requires_grad or f.requires_grad))):
        # Few channels (an RGB image) on the CPU: the depthwise convolutions below run far below memory speed there.
        fy, fx = factors
        x = fir_rows_blocked(x.transpose(2, 3), fx, upx, downx, padx0, padx1, FEW_CHANNELS_BLOCK)
        return fir_rows_blocked(x.transpose(2, 3), fy, upy, downy, pady0, pady1, FEW_CHANNELS_BLOCK)

    if upx == 1 and upy == 1:
        x = _pad_or_crop(x, padx0, padx1, pady0, pady1)
        if factors is None:
            weight = f[np.newaxis, np.newaxis].expand(channels, 1, *f.shape)
            return F.conv2d(x, weight, stride=(downy, downx), groups=channels)
        fy, fx = factors
        x = _depthwise_1d(x, fx, axis=3, stride=downx, transpose=False)
        return _depthwise_1d(x, fy, axis=2, stride=downy, transpose=False)

    # Upsampling. A transposed convolution with stride `up` computes, for every output index i,
    # sum_j x[j] * g[i - j*up] where g is the correlation kernel flipped back, i.e. the full
    # "zero-insert and convolve" result; the reference's window then starts at (taps - 1 - pad0).
    fw, fh = filter_size(f)
    in_height, in_width = x.shape[2], x.shape[3]
    if factors is None:
        weight = f.flip([0, 1])[np.newaxis, np.newaxis].expand(channels, 1, *f.shape)
        x = F.conv_transpose2d(x, weight, stride=(upy, upx), groups=channels)
    else:
        fy, fx = factors
        x = _depthwise_1d(x, fx.flip(0), axis=3, stride=upx, transpose=True)
        x = _depthwise_1d(x, fy.flip(0), axis=2, stride=upy, transpose=True)
    out_height = in_height * upy + pady0 + pady1 - fh + 1
    out_width = in_width * upx + padx0 + padx1 - fw + 1
    start_y, start_x = fh - 1 - pady0, fw - 1 - padx0
    end_y, end_x = start_y + out_height, start_x + out_width
    x = _pad_or_crop(x, -start_x, end_x - x.shape[3], -start_y, end_y - x.shape[2])
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl=upfirdn2d):
    """Filter with `f`, padding so that the output keeps the input's size."""
    padx0, padx1, pady0, pady1 = _padding4(padding)
    fw, fh = filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return impl(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl=upfirdn2d):
    """Upsample by `up` with the FIR filter `f`; the gain up**2 keeps the signal's magnitude."""
    upx, upy = _pair(up)
    padx0, padx1, pady0, pady1 = _padding4(padding)
    fw, fh = filter_size(f)
    p = [padx0 + (fw + upx - 1) // 2, padx1 + (fw - upx) // 2, pady0 + (fh + upy - 1) // 2, pady1 + (fh - upy) // 2]
    return impl(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl=upfirdn2d):
    """Low-pass with `f`, then keep every `down`-th pixel."""
    downx, downy = _pair(down)
    padx0, padx1, pady0, pady1 = _padding4(padding)
    fw, fh = filter_size(f)
    p = [padx0 + (fw - downx + 1) // 2, padx1 + (fw - downx) // 2, pady0 + (fh - downy + 1) // 2,
         pady1 + (fh - downy) // 2]
    return impl(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)


# Blocked band products (used by filtered_lrelu on large images). A full band matrix wastes most of its
# arithmetic on zeros once a side reaches a few hundred samples, and a depthwise convolution with many taps runs
# far below the CPU's peak. Cutting each axis into blocks of `block` outputs keeps the matrix product but with a
# small dense [window, block] matrix: every block of outputs reads one window of inputs through the same matrix,
# because the upsample-pad-filter-downsample is periodic with period block * down / up inputs.
_block_matrices: dict = {}


def _block_plan(length, count, up, down, pad0, pad1, block):
    """(out_length, margin, step, window, blocks) for a blocked pass; inputs are shifted right by `margin`."""
    out_length = (length * up + pad0 + pad1 - count) // down + 1
    assert (block * down) % up == 0
    step = block * down // up
    margin = -((-pad0) // up)                                # ceil(pad0 / up): first input row of block 0
    window = (count - 1 + margin * up - pad0 + (block - 1) * down) // up + 1
    blocks = -(-out_length // block)
    return out_length, margin, step, window, blocks


def _block_matrix(taps, up, down, pad0, margin, window, block) -> torch.Tensor:
    """[window, block] matrix joining a block's input window to its outputs (taps as a correlation kernel)."""
    key = (up, down, pad0, margin, window, block, _taps_key(taps))
    matrix = None if taps.requires_grad else _block_matrices.get(key)
    if matrix is None:
        count = taps.shape[0]
        j = torch.arange(window, device=taps.device)[:, None]
        r = torch.arange(block, device=taps.device)[None, :]
        k = (j - margin) * up + pad0 - r * down
        inside = (k >= 0) & (k < count)
        matrix = torch.where(inside, taps[k.clamp(0, count - 1)], torch.zeros((), dtype=taps.dtype,
                                                                                device=taps.device))
        if not taps.requires_grad:
            if len(_block_matrices) > 256:
                _block_matrices.clear()
            _block_matrices[key] = matrix
    return matrix


def fir_rows_blocked(x: torch.Tensor, taps: torch.Tensor, up: int = 1, down: int = 1, pad0: int = 0, pad1: int = 0,
                     block: int = 32) -> torch.Tensor:
    """upfirdn along H (axis 2) of [N, C, H, W] with 1-D correlation taps, as blocked products: the same numbers
    as zero-insert, pad, correlate, subsample, up to float rounding. Returns a view of a fresh buffer (not
    contiguous where the output length is not a whole number of blocks).

    `x` may be any view (a transposed one filters along W): its one copy into a zero-padded buffer also lays it
    out, and a single batched product then reads every block of every channel through overlapping windows of
    that buffer without materialising them. No gradient flows through here (inference only).
    """
    n, c, length, width = x.shape
    count = taps.shape[0]
    out_length, margin, step, window, _ = _block_plan(length, count, up, down, pad0, pad1, block)
    # Rows of the padded buffer that outputs below out_length read; each channel gets a whole number of steps
    # so that one stride walks every block of every channel. Windows of a channel's last blocks may run into
    # the next channel's rows; only outputs at or beyond out_length read those, and they are cut off.
    needed = (count - 1 + margin * up - pad0 + (out_length - 1) * down) // up + 1
    blocks = max(-(-out_length // block), -(-needed // step))
    rows = blocks * step
    buffer = x.new_zeros(n * c * rows + window - step, width)
    first = max(-margin, 0)                                   # input rows cropped away at the start
    copied = min(length - first, rows - max(margin, 0))
    buffer[:n * c * rows].view(n, c, rows, width).narrow(2, max(margin, 0), copied).copy_(x.narrow(2, first, copied))
    windows = buffer.as_strided((n * c * blocks, window, width), (step * width, width, 1))
    matrix = _block_matrix(taps.to(x.dtype), up, down, pad0, margin, window, block)
    y = torch.matmul(matrix.t(), windows)
    return y.view(n, c, blocks * block, width).narrow(2, 0, out_length)
