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
"""
from __future__ import annotations

import math

import torch

TILE = 4                      # outputs per tile side
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

_transforms: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _input_and_output_transforms(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """kron(B^T, B^T) [36, 36] and kron(A^T, A^T) [16, 36]: both 2-D transforms of a tile, flattened row-major,
    as one matrix product each."""
    if device not in _transforms:
        bt, at = torch.tensor(_BT, dtype=torch.float64), torch.tensor(_AT, dtype=torch.float64)
        _transforms[device] = (torch.kron(bt, bt).float().to(device), torch.kron(at, at).float().to(device))
    return _transforms[device]


def winograd_kernels(weight: torch.Tensor) -> torch.Tensor:
    """[out, in, 3, 3] correlation kernels -> [36, in, out] transformed kernels G g G^T (computed in float64)."""
    out_channels, in_channels, kh, kw = weight.shape
    if (kh, kw) != (TAPS, TAPS):
        raise ValueError(f"Winograd F(4x4, 3x3) takes 3x3 kernels, not {kh}x{kw}")
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    transformed = g @ weight.detach().double() @ g.t()                    # [out, in, 6, 6]
    return transformed.permute(2, 3, 1, 0).reshape(SPAN * SPAN, in_channels, out_channels).float().contiguous()


def winograd_conv3x3(x: torch.Tensor, kernels: torch.Tensor, in_scale: torch.Tensor | None = None,
                     out_scale: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                     padding: int = 1) -> torch.Tensor:
    """y[n, o] = bias[o] + out_scale[n, o] * sum_i correlate(x[n, i] * in_scale[n, i], g[o, i]), float32.

    x: [N, in, H, W]; kernels: `winograd_kernels(g)`; in_scale [N, in], out_scale [N, out], bias [out] (each
    optional); `padding` zeros on every side. Returns [N, out, H + 2 * padding - 2, W + ...], laid out
    channels-last.
    """
    batch_size, in_channels, height, width = x.shape
    out_channels = kernels.shape[2]
    out_h, out_w = height + 2 * padding - TAPS + 1, width + 2 * padding - TAPS + 1
    tiles_y, tiles_x = math.ceil(out_h / TILE), math.ceil(out_w / TILE)
    padded_h, padded_w = TILE * tiles_y + TAPS - 1, TILE * tiles_x + TAPS - 1
    transform_in, transform_out = _input_and_output_transforms(x.device)

    # The input, channels innermost, inside a zero border that covers the padding and the last partial tiles.
    padded = x.new_zeros(batch_size, padded_h, padded_w, in_channels, dtype=torch.float32)
    inside = padded[:, padding:padding + height, padding:padding + width]
    x_hwc = x.permute(0, 2, 3, 1)
    if in_scale is None:
        inside.copy_(x_hwc)
    else:
        torch.mul(x_hwc, in_scale.float().reshape(batch_size, 1, 1, in_channels), out=inside)

    # Every 6x6 tile (stride 4) as one column of a [36, tiles * in] matrix: one copy, then both transforms of
    # every tile in one product (the transforms' zeros cost multiplies, but one large product beats the dozen
    # passes over the data that the sparse form takes in eager operations).
    c = in_channels
    tiles = padded.as_strided((SPAN, SPAN, batch_size, tiles_y, tiles_x, c),
                              (padded_w * c, c, padded_h * padded_w * c, TILE * padded_w * c, TILE * c, 1))
    transformed = transform_in @ tiles.reshape(SPAN * SPAN, -1)
    products = torch.bmm(transformed.view(SPAN * SPAN, -1, c), kernels)   # [36, N * tiles, out]
    blocks = transform_out @ products.view(SPAN * SPAN, -1)               # [16, N * tiles * out]

    # Back to [N, out_h, out_w, out] with the output scale and the bias in the same pass, written through a view
    # of the output that has the blocks' shape (a second buffer only where the last tiles are partial).
    blocks = blocks.view(TILE, TILE, batch_size, tiles_y, tiles_x, out_channels).permute(2, 3, 0, 4, 1, 5)
    y = torch.empty(batch_size, out_channels, out_h, out_w, dtype=torch.float32, device=x.device,
                    memory_format=torch.channels_last)
    whole = out_h % TILE == 0 and out_w % TILE == 0
    full_shape = (batch_size, tiles_y, TILE, tiles_x, TILE, out_channels)
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
        cropped = target.view(batch_size, TILE * tiles_y, TILE * tiles_x, out_channels)[:, :out_h, :out_w]
        y.permute(0, 2, 3, 1).copy_(cropped)
    return y
