"""3x3 convolutions by Winograd's minimal filtering algorithm F(4x4, 3x3) (Lavin and Gray, 2016), for the float32
inference path on the CPU.

A 4x4 block of outputs of a 3x3 correlation needs 144 multiplies directly and 36 in Winograd's form: the 6x6 input
tile d and the kernel g are carried to a transformed space (B^T d B, G g G^T), multiplied elementwise there, and
the product is carried back (A^T m A). Summed over input channels, the 36 elementwise products become 36 matrix
products [tiles, in] x [in, out], which run at the BLAS rate, where oneDNN's direct convolution of 256-512
channels runs far below it (docs/BENCHMARKS.md). The price is rounding: the transforms hold factors up to 8 and
1/24, so results differ from a direct float32 convolution by a few times its own rounding (about 5e-5 at unit
activations, measured), well inside the project's 1e-4 on the image.

The modulated convolution of StyleGAN2 scales the kernel by s[in] and d[out]; both commute with the transforms, so
the stored weight is transformed once (`winograd_kernels`) and the per-frame scales go into the two passes that
copy the input in and the output out: no per-frame work on the kernel at all.
With few channels the products are cheap and the passes between them are what costs: the transformed input and
the products of a whole layer go through memory (at 32 channels and 1024 px, 290 MB each way). There the compiled
fused pass (`winograd_fused` in kernels/native/winograd.c) takes a few dozen tiles at a time through all three
steps while they are in the cache.
"""
from __future__ import annotations

import ctypes
import math
import weakref
from typing import NamedTuple

import torch

from .native import FLOAT_P, declared, library, noise_map, parallel, pointer
from .native import threads as native_threads
from .native import uses_openmp

TILE = 4                      # outputs per tile side (F(4x4, 3x3); F(6x6, 3x3) where asked for: tile=6)
TAPS = 3                      # kernel side
SPAN = TILE + TAPS - 1        # input tile side

# The interpolation points 0, 1, -1, 2, -2 and infinity (Lavin and Gray's choice for F(4, 3)).
_BT = ((4, 0, -5, 0, 1, 0),
       (0, -4, -4, 1, 1, 0),
       (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0),
       (0, 2, -1, -2, 1, 0),
       (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0),
      (-1 / 6, -1 / 6, -1 / 6),
      (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6),
      (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0),
       (0, 1, -1, 2, -2, 0),
       (0, 1, 1, 4, 4, 0),
       (0, 1, -1, 8, -8, 1))

# F(6x6, 3x3): the points 0, 1, -1, 1/2, -1/2, 2, -2 and infinity. 64 products for 36 outputs instead of 36 for 16
# (a fifth fewer per output), at a larger rounding (measured 1.5x F(4x4)'s on 256-512 channel layers).
_BT6 = ((1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0),
        (0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0),
        (0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0),
        (0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0),
        (0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0),
        (0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0),
        (0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0),
        (0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1))
_G6 = ((1, 0, 0),
       (-2 / 9, -2 / 9, -2 / 9),
       (-2 / 9, 2 / 9, -2 / 9),
       (1 / 90, 1 / 45, 2 / 45),
       (1 / 90, -1 / 45, 2 / 45),
       (32 / 45, 16 / 45, 8 / 45),
       (32 / 45, -16 / 45, 8 / 45),
       (0, 0, 1))
_AT6 = ((1, 1, 1, 1, 1, 1, 1, 0),
        (0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0),
        (0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0),
        (0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0),
        (0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0),
        (0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1))
# (B^T, G, A^T) by tile size.
_MATRICES = {4: (_BT, _G, _AT), 6: (_BT6, _G6, _AT6)}

_transforms: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}

# The tile the networks take where the transforms are compiled: F(6x6, 3x3) has a fifth fewer products per output
# than F(4x4, 3x3), and its transforms touch a fifth fewer values, at 1.5-3x F(4x4)'s rounding per layer. Measured
# (2-core AMD EPYC, Zen 4): StyleGAN3-T 256 1.075 against 1.158 s; StyleGAN2 config F 1024 0.525-0.564 against
# 0.558-0.603 s and config F 256 0.242 against 0.259 s, the 32 and 64 channel layers at 1024 and 512 px 47-50 against
# 63-69 ms and 31-36 against 41 ms; the images moved little (config F 1024 1.96e-5 from the reference path against
# 1.86e-5; StyleGAN3 about 5e-7 from NVlabs'). The eager transforms are dense products, cheaper at F(4x4).
COMPILED_TILE = 6
# ... from this output side on: below it a layer has few tiles, and F(6x6)'s products have fewer rows still
# (StyleGAN2's 512 channel layers at 16 and 32 px: 7.5 and 13.7 ms against F(4x4)'s 5.2 and 11.1; equal at 64 px;
# whole config F 1024 0.435 s against 0.437 with F(6x6) everywhere and 0.461 with F(4x4), config F 256 0.232
# against 0.234 and 0.239). StyleGAN3 takes F(6x6) at every side (explorer/networks/stylegan3.py).
COMPILED_TILE_MIN_SIDE = 128


def network_tile(side: int, min_side: int | None = None) -> int:
    """The Winograd tile a network's layer with outputs of this side is prepared for: COMPILED_TILE where the
    transforms are compiled and the side is at least `min_side` (default COMPILED_TILE_MIN_SIDE), else TILE."""
    min_side = COMPILED_TILE_MIN_SIDE if min_side is None else min_side
    return COMPILED_TILE if side >= min_side and winograd_transforms_compiled() else TILE


def tile_of(kernels: torch.Tensor) -> int:
    """The tile size that `winograd_kernels` made these kernels for: SPAN^2 of them, SPAN = tile + 2."""
    for tile in _MATRICES:
        if kernels.shape[0] == (tile + TAPS - 1) ** 2:
            return tile
    raise ValueError(f"not Winograd kernels: {kernels.shape[0]} transformed taps")


def _input_and_output_transforms(device: torch.device, tile: int = TILE) -> tuple[torch.Tensor, torch.Tensor]:
    """kron(B^T, B^T) [SPAN^2, SPAN^2] and kron(A^T, A^T) [tile^2, SPAN^2]: both 2-D transforms of a tile,
    flattened row-major, as one matrix product each."""
    if (device, tile) not in _transforms:
        bt, _, at = (torch.tensor(m, dtype=torch.float64) for m in _MATRICES[tile])
        _transforms[device, tile] = (torch.kron(bt, bt).float().to(device), torch.kron(at, at).float().to(device))
    return _transforms[device, tile]


def polyphase_winograd_kernels(phase_kernels: torch.Tensor, up: int, tile: int = TILE) -> torch.Tensor:
    """An upsampling layer's polyphase kernels [out * up^2, in, 3, 3] (channel o * up^2 + phase, as
    kernels/modulated_conv.py builds them) in Winograd's form for F(tile x tile, 3x3) with phase-major channels
    (phase * out + o), as `winograd_conv3x3(..., shuffle=up)` reads them."""
    phases = up * up
    out_channels = phase_kernels.shape[0] // phases
    phase_major = phase_kernels.reshape(out_channels, phases, *phase_kernels.shape[1:]).transpose(0, 1)
    return winograd_kernels(phase_major.reshape(phases * out_channels, *phase_kernels.shape[1:]), tile)


def winograd_kernels(weight: torch.Tensor, tile: int = TILE) -> torch.Tensor:
    """[out, in, 3, 3] correlation kernels -> [SPAN^2, out, in] transformed kernels G g G^T (computed in float64)
    for F(tile x tile, 3x3), tile 4 (SPAN 6) or 6 (SPAN 8)."""
    out_channels, in_channels, kh, kw = weight.shape
    if (kh, kw) != (TAPS, TAPS):
        raise ValueError(f"Winograd F({tile}x{tile}, 3x3) takes 3x3 kernels, not {kh}x{kw}")
    span = tile + TAPS - 1
    g = torch.tensor(_MATRICES[tile][1], dtype=torch.float64, device=weight.device)
    transformed = g @ weight.detach().double() @ g.t()                    # [out, in, span, span]
    return transformed.permute(2, 3, 0, 1).reshape(span * span, out_channels, in_channels).float().contiguous()


def winograd_conv3x3(x: torch.Tensor, kernels: torch.Tensor, in_scale: torch.Tensor | None = None,
                     out_scale: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                     padding: int = 1, noise: torch.Tensor | None = None, noise_gain: float = 1.0,
                     slope: float | None = None, clamp: float | None = None, shuffle: int = 1) -> torch.Tensor:
    """y[n, o] = bias[o] + out_scale[n, o] * sum_i correlate(x[n, i] * in_scale[n, i], g[o, i]), float32, then
    (each optional) y += noise * noise_gain, leaky ReLU of `slope`, clamp to [-clamp, clamp].

    x: [N, in, H, W]; kernels: `winograd_kernels(g)`; in_scale [N, in], out_scale [N, out], bias [out], noise
    [N or 1, 1, H', W'] (each optional); `padding` zeros on every side. Returns [N, out, H' = H + 2 * padding - 2,
    W' = W + ...], laid out channels-last. With the compiled transforms (kernels/native/winograd.c) everything
    after the products happens in the output transform's one pass.

    shuffle > 1: g holds an upsampling layer's polyphase kernels, phase-major (`polyphase_winograd_kernels`):
    shuffle^2 * out kernels, and the result is pixel-shuffled to [N, out, H' * shuffle, W' * shuffle] (the noise
    at that size) before the bias and what follows.
    """
    if clamp is not None and clamp < 0:
        clamp = None
    y = _winograd_native(x, kernels, in_scale, out_scale, bias, padding, noise, noise_gain, slope, clamp, shuffle)
    if y is not None:
        return y
    phases = shuffle * shuffle
    y = _winograd_eager(x, kernels, in_scale, None if out_scale is None else out_scale.repeat(1, phases),
                        None if bias is None else bias.repeat(phases), padding)
    if shuffle > 1:
        # Phase-major channels (py, px, o) to pixels (Y * shuffle + py, X * shuffle + px) of channel o.
        batch_size, _, height, width = y.shape
        y = (y.reshape(batch_size, shuffle, shuffle, -1, height, width).permute(0, 3, 4, 1, 5, 2)
             .reshape(batch_size, -1, height * shuffle, width * shuffle).contiguous(memory_format=torch.channels_last))
    if noise is not None:
        y.add_(noise.to(y.dtype), alpha=noise_gain)
    if slope is not None:
        torch.nn.functional.leaky_relu_(y, slope)
    if clamp is not None:
        y.clamp_(-clamp, clamp)
    return y


# From this many tiles on, the 36 products run as 36 separate products: measured 1.4-2x the rate of one batched
# product (torch.bmm) for 64-128 channels over 4096-16384 tiles, the same for 512 channels over 256 tiles, and
# slower for few tiles (512 channels at 16 px: 64 tiles) (2-core AMD EPYC, Zen 4). Where the transforms are
# compiled, each product is a 1x1 convolution (oneDNN: 58-89 against MKL's 45-86 GMAC/s for StyleGAN3-T's shapes;
# whole StyleGAN3-T 256 7% faster even with a copy after each), whose output the output transform reads in place.
SEPARATE_PRODUCTS_MIN_TILES = 1024


def batched_products(a: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """a[i] @ kernels[i]^T for the 36 products: [36, tiles, in] x [36, out, in] -> [36, tiles, out]."""
    b = kernels.transpose(1, 2)
    if a.shape[1] < SEPARATE_PRODUCTS_MIN_TILES:
        return torch.bmm(a, b)
    out = a.new_empty([a.shape[0], a.shape[1], b.shape[2]])
    for i in range(a.shape[0]):
        torch.mm(a[i], b[i], out=out[i])
    return out


def separate_products(a: torch.Tensor, kernels: torch.Tensor) -> list[torch.Tensor]:
    """The same 36 products as `batched_products`, each a [tiles, out] matrix of its own: 1x1 convolutions over
    the tiles (oneDNN) where there are many, slices of one batched product where there are few."""
    count, tiles, in_channels = a.shape
    out_channels = kernels.shape[1]
    if tiles < SEPARATE_PRODUCTS_MIN_TILES:
        return list(batched_products(a, kernels).unbind(0))
    products = []
    for i in range(count):
        # [tiles, in] read as a channels-last [1, in, tiles, 1] image; the output's memory is [tiles, out].
        y = torch.nn.functional.conv2d(a[i].view(1, tiles, 1, in_channels).permute(0, 3, 1, 2),
                                       kernels[i].view(out_channels, in_channels, 1, 1))
        products.append(y.permute(0, 2, 3, 1).reshape(tiles, out_channels))
    return products


def native_products(compiled, a: torch.Tensor, u: torch.Tensor) -> list[torch.Tensor] | None:
    """a [count, rows, in] times u [count, in, padded] (`padded_kernels`) -> count matrices [rows, padded] (the
    output channels and then zeros to whole vectors) by the compiled register blocks (winograd_products in
    winograd.c), where the library has OpenMP; None elsewhere (the caller's `separate_products`). Raises
    MemoryError where a thread's buffer cannot be allocated."""
    lib = compiled.lib
    count, rows, in_channels = a.shape
    # Without OpenMP the library would run them on one thread: PyTorch's products are threaded.
    if not a.is_contiguous() or not uses_openmp(lib):
        return None
    padded = u.shape[2]
    m = torch.empty([count, rows, padded], dtype=torch.float32)
    if lib.winograd_products(pointer(a), pointer(u), pointer(m), count, rows, in_channels, padded, native_threads()):
        raise MemoryError("winograd: the compiled products could not allocate their buffers")
    return list(m.unbind(0))


def _winograd_eager(x, kernels, in_scale, out_scale, bias, padding):
    batch_size, in_channels, height, width = x.shape
    out_channels = kernels.shape[1]
    tile = tile_of(kernels)
    span = tile + TAPS - 1
    out_h, out_w = height + 2 * padding - TAPS + 1, width + 2 * padding - TAPS + 1
    tiles_y, tiles_x = math.ceil(out_h / tile), math.ceil(out_w / tile)
    padded_h, padded_w = tile * tiles_y + TAPS - 1, tile * tiles_x + TAPS - 1
    transform_in, transform_out = _input_and_output_transforms(x.device, tile)

    # The input, channels innermost, inside a zero border that covers the padding and the last partial tiles.
    padded = x.new_zeros(batch_size, padded_h, padded_w, in_channels, dtype=torch.float32)
    inside = padded[:, padding:padding + height, padding:padding + width]
    x_hwc = x.permute(0, 2, 3, 1)
    if in_scale is None:
        inside.copy_(x_hwc)
    else:
        torch.mul(x_hwc, in_scale.float().reshape(batch_size, 1, 1, in_channels), out=inside)

    # Every span x span tile (stride tile) as one column of a [span^2, tiles * in] matrix: one copy, then both
    # transforms of every tile in one product (the transforms' zeros cost multiplies, but one large product beats
    # the dozen passes over the data that the sparse form takes in eager operations).
    c = in_channels
    tiles = padded.as_strided((span, span, batch_size, tiles_y, tiles_x, c),
                              (padded_w * c, c, padded_h * padded_w * c, tile * padded_w * c, tile * c, 1))
    transformed = transform_in @ tiles.reshape(span * span, -1)
    products = batched_products(transformed.view(span * span, -1, c), kernels)   # [span^2, N * tiles, out]
    blocks = transform_out @ products.view(span * span, -1)               # [tile^2, N * tiles * out]

    # Back to [N, out_h, out_w, out] with the output scale and the bias in the same pass, written through a view
    # of the output that has the blocks' shape (a second buffer only where the last tiles are partial).
    blocks = blocks.view(tile, tile, batch_size, tiles_y, tiles_x, out_channels).permute(2, 3, 0, 4, 1, 5)
    y = torch.empty(batch_size, out_channels, out_h, out_w, dtype=torch.float32, device=x.device,
                    memory_format=torch.channels_last)
    whole = out_h % tile == 0 and out_w % tile == 0
    full_shape = (batch_size, tiles_y, tile, tiles_x, tile, out_channels)
    target = y.permute(0, 2, 3, 1).view(full_shape) if whole else y.new_empty(full_shape)
    if out_scale is None:
        target.copy_(blocks)
        if bias is not None:
            target.add_(bias.float())
    else:
        scale = out_scale.float().reshape(batch_size, 1, 1, 1, 1, out_channels)
        if bias is None:
            torch.mul(blocks, scale, out=target)
        else:
            torch.addcmul(bias.float(), blocks, scale, out=target)
    if not whole:
        cropped = target.view(batch_size, tile * tiles_y, tile * tiles_x, out_channels)[:, :out_h, :out_w]
        y.permute(0, 2, 3, 1).copy_(cropped)
    return y


# -- the compiled transforms (kernels/native/winograd.c) -----------------------------------------------------------

class _Compiled(NamedTuple):
    lib: ctypes.CDLL
    by_tile: dict            # tile -> (input transform, output transform, fused pass), argument types set
    block_multiple: int     # a fused block's tiles: a multiple of this (winograd.c's register blocks)
    lanes: int              # floats per vector: the fused pass's product channels are padded to a multiple


def _declare(lib) -> _Compiled:
    i, f, p = ctypes.c_int, ctypes.c_float, FLOAT_P
    functions = {}
    for tile in _MATRICES:
        transform_in, transform_out = getattr(lib, f"winograd_input_{tile}"), getattr(lib, f"winograd_output_{tile}")
        fused = getattr(lib, f"winograd_fused_{tile}")
        transform_in.restype = transform_out.restype = None
        transform_in.argtypes = [p, i, i, i, i, p, i, i, i, p, i, i, i]
        transform_out.argtypes = [ctypes.POINTER(p), i, i, i, i, i, i, i, i, p, p, p, ctypes.c_ssize_t, f, f, f, p,
                                  i, i, i]
        fused.restype = ctypes.c_int
        fused.argtypes = ([p, i, i, i, i, p, i, i, i, p, i, i, i, i, i, i, p, p, p, ctypes.c_ssize_t, f, f, f, p]
                          + [i] * 3)
        functions[tile] = (transform_in, transform_out, fused)
    lib.winograd_products.restype = ctypes.c_int
    lib.winograd_products.argtypes = [p, p, p, i, i, i, i, i]
    # The transposed convolution's passes (winograd_transposed.h), called through lib.
    lib.winograd_up_input.restype = lib.winograd_up_output.restype = None
    lib.winograd_up_input.argtypes = [p, i, i, i, i, p, i, i, p, i, i, i]
    lib.winograd_up_output.argtypes = [ctypes.POINTER(p), i, i, i, i, i, i, i, p, p, i, i, i]
    lib.winograd_up_fused.restype = ctypes.c_int
    lib.winograd_up_fused.argtypes = [p, i, i, i, i, p, i, i, p, i, i, i, i, i, p, p, i, i, i]
    for name in ("winograd_fused_block_multiple", "winograd_lanes"):
        getattr(lib, name).restype = ctypes.c_int
    return _Compiled(lib, functions, lib.winograd_fused_block_multiple(), lib.winograd_lanes())


# The fused pass (winograd_fused in winograd.c: the transforms and the products of a few tiles at a time, in the
# cache) where the transformed kernels take at most this many bytes and the layer has at least this many tiles:
# layers of few channels on large images, where the separate passes' traffic through memory costs more than their
# products. Measured against the separate passes (2-core AMD EPYC, Zen 4, F(4x4)): 32 channels at 1024 px 100
# against 308 ms, 64 at 512 px 57 against 160, 128 at 256 px 33 against 78, 64 at 64 px 1.1 against 1.4; at 32 px
# and below, or 512 channels (37 MB of kernels, read again for each block), slower (docs/BENCHMARKS.md).
FUSED_MAX_KERNEL_BYTES = 1 << 22
FUSED_MIN_TILES = 256
# A fused block: as many tiles as make its transformed input and products about this many bytes (within a core's
# L2), but at least FUSED_FEWEST_TILES (each block reads all the transformed kernels once: a block of b tiles does b
# multiply-adds per float of them) and at most FUSED_MOST_TILES.
FUSED_BLOCK_BYTES = 1 << 20
FUSED_FEWEST_TILES = 24
FUSED_MOST_TILES = 96


# The fused passes read their kernels transposed, [values, in, out] with the output channels padded to whole
# vectors: made once per kernels tensor (a network's prepared kernels live as long as its weight) and dropped with
# it. Made per call, the fills and copies of 1-5 MB a layer cost config F 1024 about 15 ms a frame.
_padded_kernels: dict[int, tuple[int, int, torch.Tensor]] = {}


def padded_kernels(kernels: torch.Tensor, lanes: int) -> torch.Tensor:
    """kernels [values, out, in] -> [values, in, out padded to a multiple of `lanes`] (zeros after out), cached
    while `kernels` lives and is unchanged."""
    key = id(kernels)
    cached = _padded_kernels.get(key)
    if cached is not None and cached[0] == kernels._version and cached[1] == lanes:
        return cached[2]
    values, out_channels, in_channels = kernels.shape
    u = kernels.new_zeros([values, in_channels, math.ceil(out_channels / lanes) * lanes])
    u[:, :, :out_channels] = kernels.transpose(1, 2)
    if cached is None:
        weakref.finalize(kernels, _padded_kernels.pop, key, None)
    _padded_kernels[key] = (kernels._version, lanes, u)
    return u


def use_fused(in_channels: int, product_channels: int, tiles: int, tile: int = TILE) -> bool:
    """Whether a convolution with the compiled transforms takes the fused pass (else the separate passes)."""
    span = tile + TAPS - 1
    return tiles >= FUSED_MIN_TILES and span * span * in_channels * product_channels * 4 <= FUSED_MAX_KERNEL_BYTES


def winograd_transforms_compiled() -> bool:
    """Whether float32 CPU calls get the compiled transforms (else the eager ones)."""
    return library("winograd") is not None


def _compiled_for(x: torch.Tensor, kernels: torch.Tensor, *tensors: torch.Tensor | None) -> _Compiled | None:
    """The compiled transforms where they apply to a convolution of x with these kernels (and the other tensors
    it reads): float32 on the CPU, no gradient wanted, a compiler found; else None."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or kernels.dtype != torch.float32:
        return None
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, kernels, *tensors)):
        return None
    return declared("winograd", _declare)


def _fused_block(values: int, in_channels: int, padded: int, block_multiple: int) -> int:
    """A fused block's tiles for `values` transformed values a tile: as many as make its transformed input and
    products about FUSED_BLOCK_BYTES, within [FUSED_FEWEST_TILES, FUSED_MOST_TILES], a multiple of the register
    blocks' rows."""
    per_tile = values * (in_channels + padded) * 4
    block = min(max(FUSED_BLOCK_BYTES // per_tile, FUSED_FEWEST_TILES), FUSED_MOST_TILES)
    return max(1, block // block_multiple) * block_multiple


def _winograd_native(x, kernels, in_scale, out_scale, bias, padding, noise, noise_gain, slope, clamp, shuffle=1):
    """The whole convolution with the compiled transforms, or None where they do not apply (not float32 on the
    CPU, a gradient wanted, no compiler). Raises MemoryError where the fused pass's buffers cannot be allocated."""
    functions = _compiled_for(x, kernels, in_scale, out_scale, bias, noise)
    if functions is None:
        return None
    lib, by_tile, block_multiple, lanes = functions
    tile = tile_of(kernels)
    span = tile + TAPS - 1
    transform_input, transform_output, fused = by_tile[tile]
    batch_size, in_channels, height, width = x.shape
    product_channels = kernels.shape[1]
    out_channels = product_channels // (shuffle * shuffle)
    out_h, out_w = height + 2 * padding - TAPS + 1, width + 2 * padding - TAPS + 1
    tiles_y, tiles_x = math.ceil(out_h / tile), math.ceil(out_w / tile)
    tiles = batch_size * tiles_y * tiles_x
    x = x.contiguous(memory_format=torch.channels_last)
    in_scale = None if in_scale is None else in_scale.float().reshape(batch_size, in_channels).contiguous()
    out_scale = None if out_scale is None else out_scale.float().reshape(batch_size, out_channels).contiguous()
    bias = None if bias is None else bias.float().contiguous()
    noise_stride = 0
    if noise is not None:
        mapped = noise_map(noise, batch_size, out_h * shuffle, out_w * shuffle)
        if mapped is None:
            return None
        noise, noise_stride = mapped
    y = torch.empty([batch_size, out_channels, out_h * shuffle, out_w * shuffle], dtype=torch.float32,
                    memory_format=torch.channels_last)
    slope = -1.0 if slope is None else float(slope)
    clamp = -1.0 if clamp is None else float(clamp)
    rows = batch_size * tiles_y
    if use_fused(in_channels, product_channels, tiles, tile):
        # u [span^2, in, padded]: each product's kernels with the output channels contiguous, padded to whole vectors.
        u = padded_kernels(kernels, lanes)
        padded = u.shape[2]
        block = _fused_block(span * span, in_channels, padded, block_multiple)
        failed = parallel(lib, lambda begin, end, threads: fused(
            pointer(x), batch_size, height, width, in_channels, pointer(in_scale), padding, tiles_y, tiles_x,
            pointer(u), product_channels, padded, block, out_h, out_w, shuffle, pointer(out_scale), pointer(bias),
            pointer(noise), noise_stride, float(noise_gain), slope, clamp, pointer(y), begin, end, threads),
            math.ceil(tiles / block), 1)
        if any(failed):
            raise MemoryError("winograd_conv3x3: the compiled kernel could not allocate its tile buffers")
        return y
    transformed = torch.empty([span * span, tiles, in_channels], dtype=torch.float32)
    parallel(lib, lambda begin, end, threads: transform_input(
        pointer(x), batch_size, height, width, in_channels, pointer(in_scale), padding, tiles_y, tiles_x,
        pointer(transformed), begin, end, threads), rows, 1)
    products = (native_products(functions, transformed, padded_kernels(kernels, lanes))
                or separate_products(transformed, kernels))                  # span^2 x [tiles, out or padded]
    matrices = (FLOAT_P * len(products))(*(pointer(m) for m in products))
    m_width = products[0].shape[1]
    parallel(lib, lambda begin, end, threads: transform_output(
        matrices, batch_size, tiles_y, tiles_x, product_channels, m_width, out_h, out_w, shuffle, pointer(out_scale),
        pointer(bias), pointer(noise), noise_stride, float(noise_gain), slope, clamp, pointer(y), begin, end, threads),
        rows, 1)
    return y


# -- the transposed convolution of an upsampling layer (kernels/native/winograd_transposed.h) ----------------------
#
# Along one axis a stride-2 transposed convolution with taps W[0..2] gives even outputs z[2v] = W[2] x[v-1] +
# W[0] x[v] (a 2-tap filter: Winograd's F(4, 2), 5 products for 4 outputs) and odd outputs z[2v+1] = W[1] x[v] (one
# tap). A tile of 4 x 4 input positions reads 5 x 5 samples and writes 8 x 8 outputs with 81 products where the
# direct transposed convolution multiplies 144; the odd values share their kernel value, so 36 transformed kernels.

UP_TILE = 4                   # input positions per tile side
UP_OUT = 8                    # outputs per tile side
UP_ROWS = 6                   # kernel rows per axis: F(4, 2)'s five and the odd outputs' tap
UP_VALUES = 81                # transformed values per tile: 9 per axis (F(4, 2)'s five, the odd outputs' four)
# The kernel rows over the taps (W[0], W[1], W[2]): F(4, 2)'s G (points 0, 1, -1, 2 and infinity) applied to the
# even outputs' filter (W[2], W[0]), divided by the factors that make its B^T whole numbers (2, 2, 6, 6, 1:
# winograd_transposed.h's up_input_rows), then W[1].
_UP_Q = ((0, 0, 1 / 2),
         (1 / 2, 0, 1 / 2),
         (-1 / 6, 0, 1 / 6),
         (1 / 3, 0, 1 / 6),
         (1, 0, 0),
         (0, 1, 0))
# Input rows per axis: 9 transformed values from 5 samples (F(4, 2)'s B^T scaled, then samples 1-4), and output
# rows: 8 outputs from 9 products (F(4, 2)'s A^T at the even outputs, the odd products at the odd ones); with
# _UP_Q they make the eager path and document what the compiled rows compute.
_UP_BT = ((2, -1, -2, 1, 0),
          (0, 2, 1, -1, 0),
          (0, -2, 3, -1, 0),
          (0, -1, 0, 1, 0),
          (0, 2, -1, -2, 1),
          (0, 1, 0, 0, 0),
          (0, 0, 1, 0, 0),
          (0, 0, 0, 1, 0),
          (0, 0, 0, 0, 1))
_UP_AT = ((1, 1, 1, 1, 0, 0, 0, 0, 0),
          (0, 0, 0, 0, 0, 1, 0, 0, 0),
          (0, 1, -1, 2, 0, 0, 0, 0, 0),
          (0, 0, 0, 0, 0, 0, 1, 0, 0),
          (0, 1, 1, 4, 0, 0, 0, 0, 0),
          (0, 0, 0, 0, 0, 0, 0, 1, 0),
          (0, 1, -1, 8, 1, 0, 0, 0, 0),
          (0, 0, 0, 0, 0, 0, 0, 0, 1))
# The kernel row of each of an axis's 9 values.
_UP_KERNEL_ROW = (0, 1, 2, 3, 4, 5, 5, 5, 5)
# The 36 kernels by their rows per tile (winograd_transposed.h's up_kernel): positions [start, end) and rows per
# tile of each class, F(4, 2) on both axes, on one, on none; a class's matrices are one batched product.
UP_CLASSES = ((0, 25, 1), (25, 35, 4), (35, 36, 16))


def _up_kernel(row_a: int, row_b: int) -> int:
    """The position of the kernel of rows (row_a, row_b) (0-5 each) among the 36 (as up_kernel in C)."""
    if row_a < 5 and row_b < 5:
        return row_a * 5 + row_b
    if row_a < 5:
        return 25 + row_a
    if row_b < 5:
        return 30 + row_b
    return 35


def transposed_winograd_kernels(weight: torch.Tensor, flip_weight: bool) -> torch.Tensor:
    """An upsampling layer's [out, in, 3, 3] weight -> [36, out, in] transformed kernels of its stride-2 transposed
    convolution (computed in float64). flip_weight as kernels/modulated_conv.py's upsampling convolution takes it:
    False (StyleGAN2's layers) means output 2u + k gets input u times weight[..., k]."""
    out_channels, in_channels, kh, kw = weight.shape
    if (kh, kw) != (TAPS, TAPS):
        raise ValueError(f"the transposed convolution's Winograd form takes 3x3 kernels, not {kh}x{kw}")
    taps = weight.detach().double()
    if flip_weight:
        taps = taps.flip([2, 3])
    q = torch.tensor(_UP_Q, dtype=torch.float64, device=weight.device)
    transformed = (q @ taps @ q.t()).permute(2, 3, 0, 1)                    # [6, 6, out, in]
    rows = [(a, b) for a in range(UP_ROWS) for b in range(UP_ROWS)]
    order = sorted(rows, key=lambda ab: _up_kernel(*ab))
    return torch.stack([transformed[a, b] for a, b in order]).float().contiguous()


def transposed_output_size(size: int) -> int:
    """The side of the whole stride-2 transposed convolution of a 3x3 kernel over `size` inputs (no padding)."""
    return 2 * size + 1


def winograd_transposed_conv_eager(x: torch.Tensor, kernels: torch.Tensor, in_scale: torch.Tensor | None = None,
                                   out_scale: torch.Tensor | None = None) -> torch.Tensor:
    """The same numbers as `winograd_transposed_conv` in eager operations (the compiled pass's reference in the
    tests): tiles through dense transforms, products by einsum."""
    batch_size, in_channels, height, width = x.shape
    z_h, z_w = transposed_output_size(height), transposed_output_size(width)
    tiles_y, tiles_x = math.ceil(z_h / UP_OUT), math.ceil(z_w / UP_OUT)
    if in_scale is not None:
        x = x * in_scale.reshape(batch_size, in_channels, 1, 1)
    # Tile (ty, tx) reads samples from (4 ty - 1, 4 tx - 1): one zero before, zeros after to cover every tile.
    padded = torch.nn.functional.pad(x.float(), [1, UP_TILE * tiles_x + 1 - width - 1, 1,
                                                 UP_TILE * tiles_y + 1 - height - 1])
    tiles = padded.unfold(2, UP_TILE + 1, UP_TILE).unfold(3, UP_TILE + 1, UP_TILE)   # [N, in, ty, tx, 5, 5]
    bt = torch.tensor(_UP_BT, dtype=torch.float32, device=x.device)
    at = torch.tensor(_UP_AT, dtype=torch.float32, device=x.device)
    values = bt @ tiles @ bt.t()                                            # [N, in, ty, tx, 9, 9]
    index = torch.tensor([_up_kernel(a, b) for a in _UP_KERNEL_ROW for b in _UP_KERNEL_ROW], device=x.device)
    u = kernels[index].reshape(9, 9, *kernels.shape[1:])                   # [9, 9, out, in]
    products = torch.einsum("niyxab,aboi->noyxab", values, u)
    blocks = at @ products @ at.t()                                         # [N, out, ty, tx, 8, 8]
    z = blocks.permute(0, 1, 2, 4, 3, 5).reshape(batch_size, -1, tiles_y * UP_OUT, tiles_x * UP_OUT)[..., :z_h, :z_w]
    if out_scale is not None:
        z = z * out_scale.reshape(batch_size, -1, 1, 1)
    return z.contiguous(memory_format=torch.channels_last)


# The transposed convolution's fused pass where its kernels take at most this many bytes (and the layer has
# FUSED_MIN_TILES): 256 -> 128 channels at 128 px (4.7 MB) fused 44-47 ms, separate 53-58 ms; 512 -> 256 at 64 px
# (19 MB) fused 58-79, separate 44-71 ms (2-core AMD EPYC, Zen 4).
FUSED_TRANSPOSED_MAX_KERNEL_BYTES = 1 << 23


def use_fused_transposed(in_channels: int, out_channels: int, tiles: int) -> bool:
    """Whether the transposed convolution's compiled form takes the fused pass (else the separate passes)."""
    return (tiles >= FUSED_MIN_TILES
            and UP_ROWS * UP_ROWS * in_channels * out_channels * 4 <= FUSED_TRANSPOSED_MAX_KERNEL_BYTES)


def winograd_transposed_conv(x: torch.Tensor, kernels: torch.Tensor, in_scale: torch.Tensor | None = None,
                             out_scale: torch.Tensor | None = None, fused: bool | None = None) -> torch.Tensor | None:
    """z[n, o] = out_scale[n, o] * the stride-2 transposed convolution of x[n, i] * in_scale[n, i] with the kernels'
    weight (`transposed_winograd_kernels`), whole (no padding): [N, out, 2H + 1, 2W + 1], channels-last, float32.
    None where the compiled transforms do not apply (not float32 on the CPU, a gradient wanted, no compiler).
    `fused` chooses the pass (None: `use_fused_transposed`). Raises MemoryError where the fused pass's buffers
    cannot be allocated."""
    compiled = _compiled_for(x, kernels, in_scale, out_scale)
    if compiled is None:
        return None
    lib, _, block_multiple, lanes = compiled
    batch_size, in_channels, height, width = x.shape
    out_channels = kernels.shape[1]
    z_h, z_w = transposed_output_size(height), transposed_output_size(width)
    tiles_y, tiles_x = math.ceil(z_h / UP_OUT), math.ceil(z_w / UP_OUT)
    tiles = batch_size * tiles_y * tiles_x
    x = x.contiguous(memory_format=torch.channels_last)
    in_scale = None if in_scale is None else in_scale.float().reshape(batch_size, in_channels).contiguous()
    out_scale = None if out_scale is None else out_scale.float().reshape(batch_size, out_channels).contiguous()
    z = torch.empty([batch_size, out_channels, z_h, z_w], dtype=torch.float32, memory_format=torch.channels_last)
    rows = batch_size * tiles_y
    if fused is None:
        fused = use_fused_transposed(in_channels, out_channels, tiles)
    if fused:
        u = padded_kernels(kernels, lanes)
        padded = u.shape[2]
        block = _fused_block(UP_VALUES, in_channels, padded, block_multiple)
        failed = parallel(lib, lambda begin, end, threads: lib.winograd_up_fused(
            pointer(x), batch_size, height, width, in_channels, pointer(in_scale), tiles_y, tiles_x, pointer(u),
            out_channels, padded, block, z_h, z_w, pointer(out_scale), pointer(z), begin, end, threads),
            math.ceil(tiles / block), 1)
        if any(failed):
            raise MemoryError("winograd_transposed_conv: the compiled kernel could not allocate its tile buffers")
        return z
    sizes = [(end - start) * tiles * multiplicity * in_channels for start, end, multiplicity in UP_CLASSES]
    transformed = torch.empty([sum(sizes)], dtype=torch.float32)
    parallel(lib, lambda begin, end, threads: lib.winograd_up_input(
        pointer(x), batch_size, height, width, in_channels, pointer(in_scale), tiles_y, tiles_x, pointer(transformed),
        begin, end, threads), rows, 1)
    # Each class's matrices one batched product ([kernels, tiles * multiplicity, in] x its kernels), all by the
    # compiled register blocks or all by PyTorch (the output transform reads one row width).
    u = padded_kernels(kernels, lanes)
    classes = [(matrices.view(end - start, tiles * multiplicity, in_channels), start, end)
               for (start, end, multiplicity), matrices in zip(UP_CLASSES, transformed.split(sizes))]
    parts = [native_products(compiled, a, u[start:end]) for a, start, end in classes]
    if any(part is None for part in parts):
        parts = [separate_products(a, kernels[start:end]) for a, start, end in classes]
    products = [product for part in parts for product in part]
    pointers = (FLOAT_P * len(products))(*(pointer(m) for m in products))
    m_width = products[0].shape[1]
    parallel(lib, lambda begin, end, threads: lib.winograd_up_output(
        pointers, batch_size, tiles_y, tiles_x, out_channels, m_width, z_h, z_w, pointer(out_scale), pointer(z),
        begin, end, threads), rows, 1)
    return z
