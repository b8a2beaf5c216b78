"""The no-grad fast path of filtered_lrelu (channel chunks, blocked band products; what the explorer renders with)
against the reference composition, on images large enough to reach it."""
import pytest
import torch

from explorer.networks.stylegan3 import design_lowpass_filter
from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference


@pytest.mark.parametrize("radial,up,down,size,channels", [
    (False, 2, 2, 100, 40), (True, 2, 2, 100, 40), (False, 2, 1, 120, 6), (False, 1, 2, 200, 6),
    (False, 4, 2, 60, 5),
])
def test_no_grad_path_matches_reference(radial, up, down, size, channels):
    g = torch.Generator().manual_seed(1)
    x = torch.randn([1, channels, size, size], generator=g, dtype=torch.float64) * 3
    b = torch.randn([channels], generator=g, dtype=torch.float64)
    fu = design_lowpass_filter(6 * up, 8.0, 4.0, 32 * up).double() if up > 1 else None
    fd = design_lowpass_filter(6 * down, 8.0, 4.0, 32 * up, radial=radial).double() if down > 1 else None
    kwargs = dict(up=up, down=down, padding=[7, 6, 7, 6], clamp=4.0)
    with torch.no_grad():
        fast = filtered_lrelu(x, fu, fd, b, **kwargs)
        reference = filtered_lrelu_reference(x, fu, fd, b, **kwargs)
    assert fast.shape == reference.shape
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-10)
    assert reference.abs().max() > 1
