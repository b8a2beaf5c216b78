"""StyleGAN3 generator (Karras et al. 2021), T and R configurations, parameter for parameter the layout of
NVlabs' training/networks_stylegan3.py, so its state dicts load unchanged.

The synthesis starts from Fourier features (sinusoids of fixed frequencies, rotated and translated by an affine
of w and by a user transform), then runs layers of: modulated conv (input scaled by the tracked magnitude,
weights and styles pre-normalised), filtered leaky ReLU (bias, upsample, lrelu, clamp, downsample) at sampling
rates and cutoffs that grow from layer to layer; the last layer is a 1x1 ToRGB; the output is scaled by 0.25.
Layer names: `input`, `L0_36_512`, ..., `L14_1024_3` (index, output size, output channels).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kernels.filtered_lrelu import filtered_lrelu
from kernels.modulated_conv import PreparedWeight, demodulation_coefficients, use_channels_last, use_winograd
from kernels.winograd import network_tile, winograd_conv3x3, winograd_kernels

from dataclasses import dataclass

from .common import (ControlsForLayer, DerivedTensor, FullyConnectedLayer, GeneratorBase, LayeredSynthesis, LayerInfo,
                     SynthesisCall, inference_only)


# Layers of this side and more convolve channels-last in float32 on the CPU; bfloat16 always does. Every side
# since the filtered leaky ReLU's compiled kernel reads and writes channels-last: the plain layout of the 36 and
# 52 px layers cost two copies a layer (StyleGAN3-R 256: 1.42-1.64 s against 1.48-1.68 s over four alternating
# runs; T 0.92-1.10 against 0.94-1.12 s; 3 December 2026). Earlier, before that kernel: from 64 px 1.3x the
# plain layout's speed for T's whole network, from 128 px 1.03x.
CHANNELS_LAST_MIN_SIDE = 0


def unit_rms(t: torch.Tensor, dims: list[int] | None = None) -> torch.Tensor:
    """t scaled to a root mean square of 1, over `dims` (kept) or over all of it: how StyleGAN3 normalises its
    weights (per output channel) and styles (all at once) before modulating."""
    if dims is None:
        return t * t.square().mean().rsqrt()
    return t * t.square().mean(dims, keepdim=True).rsqrt()


# StyleGAN3 takes Winograd's F(6x6, 3x3) from this side on, where the transforms are compiled: every side (T 256
# 0.866 s against 0.900 with F(4x4) below 128 px and 0.956 with F(4x4) everywhere, its image moving 1.4e-6).
WINOGRAD_F6_MIN_SIDE = 0


def normalized_winograd(weight: torch.Tensor, tile: int = 4) -> PreparedWeight:
    """What the Winograd path needs from a layer's stored weight, once per weight: the weight normalised as
    `modulated_conv2d` does, its energy per [out, in] for the demodulation, its form for F(tile x tile, 3x3)."""
    normalized = unit_rms(weight.detach(), [1, 2, 3])
    return PreparedWeight(energy=normalized.square().sum([2, 3]), winograd=winograd_kernels(normalized, tile))


def modulated_conv2d(x, weight, styles, demodulate=True, padding=0, input_gain=None,
                     prepared: PreparedWeight | None = None):
    """StyleGAN3's variant: weights and styles normalised first (their scale then cancels in demodulation and
    float16 cannot overflow), the input gain folded into the weights.

    With `prepared` (`normalized_winograd` of the weight; inference only, float32) the convolution runs by
    Winograd's algorithm: the styles and the input gain scale the input's channels, the demodulation the
    output's, and the weight itself is never modulated."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if prepared is not None and demodulate:
        styles = unit_rms(styles.float())
        in_scale = styles if input_gain is None else styles * input_gain
        return winograd_conv3x3(x, prepared.winograd, in_scale,
                                demodulation_coefficients(prepared.energy, styles), padding=padding)
    if demodulate:
        weight = unit_rms(weight, [1, 2, 3])
        styles = unit_rms(styles)
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(batch_size, -1, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(batch_size, in_channels).reshape(batch_size, 1, -1, 1, 1)
    if use_channels_last(x, 1, x.dtype, CHANNELS_LAST_MIN_SIDE) and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
        # Large layers (and every bfloat16 one) run channels-last, a sample at a time (a grouped convolution would
        # need the plain layout); the filtered leaky ReLU reads any layout in its first copy.
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.to(x.dtype)
        outputs = [F.conv2d(x[n:n + 1], w[n].contiguous(memory_format=torch.channels_last), padding=padding)
                   for n in range(batch_size)]
        return outputs[0] if batch_size == 1 else torch.cat(outputs)
    x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, in_channels, kh, kw).to(x.dtype), padding=padding,
                 groups=batch_size)
    return x.reshape(batch_size, -1, *x.shape[2:])


def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """Kaiser-windowed low-pass FIR filter (1-D, or radially symmetric 2-D); None for a single tap. Loaded
    networks bring their own filters as buffers; this only builds new ones."""
    if numtaps == 1:
        return None
    import scipy.signal
    import scipy.special
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs),
                               dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    return torch.as_tensor(f / np.sum(f), dtype=torch.float32)


def transform_matrix(tx: float, ty: float, angle_degrees: float) -> torch.Tensor:
    """The input transform for translating the image by (tx, ty) and rotating it: the inverse of the image's
    rotate-then-translate, as the Fourier features are sampled through it."""
    angle = math.radians(angle_degrees)
    c, s = math.cos(angle), math.sin(angle)
    m = np.array([[c, s, tx], [-s, c, ty], [0, 0, 1]], dtype=np.float64)
    return torch.from_numpy(np.linalg.inv(m)).to(torch.float32)


class SynthesisInput(nn.Module):
    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, bias_init=0)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0, 0, 0]))
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w, controls: ControlsForLayer, transform: torch.Tensor | None = None):
        transforms = (self.transform if transform is None else transform.to(w.device)).unsqueeze(0)
        freqs, phases = self.freqs.unsqueeze(0), self.phases.unsqueeze(0)
        t = controls.styles(self.affine(w))              # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        batch = w.shape[0]
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([batch, 1, 1])
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([batch, 1, 1])
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ transforms
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Fade out frequencies near the sampling limit instead of letting them alias.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, int(self.size[1]), int(self.size[0])], align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    def __init__(self, w_dim, is_torgb, is_critically_sampled, use_fp16, in_channels, out_channels, in_size,
                 out_size, in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width,
                 out_half_width, conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 conv_clamp=256, magnitude_ema_beta=0.999):
        super().__init__()
        self.is_torgb, self.use_fp16 = is_torgb, use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up_factor = int(np.rint(tmp_sampling_rate / in_sampling_rate))
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2,
                                                                tmp_sampling_rate))
        self.down_factor = int(np.rint(tmp_sampling_rate / out_sampling_rate))
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", design_lowpass_filter(self.down_taps, out_cutoff, out_half_width * 2,
                                                                  tmp_sampling_rate, radial=self.down_radial))
        # Padding so that, after upsampling, filtering and downsampling, the output has out_size samples placed
        # symmetrically (the paper's appendix C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]
        # Built only once a float32 inference call needs it (many channels): 4x the weight's size.
        self.winograd = DerivedTensor(normalized_winograd)

    def forward(self, x, w, controls: ControlsForLayer, force_fp32=True, update_emas=False, compute_dtype=None):
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        styles = controls.styles(self.affine(w))
        if self.is_torgb:
            styles = styles / np.sqrt(self.in_channels * self.conv_kernel ** 2)
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type == "cuda") else torch.float32
        dtype = compute_dtype if compute_dtype is not None else dtype
        prepared = None
        tile = network_tile(x.shape[-1], WINOGRAD_F6_MIN_SIDE)
        if (not self.is_torgb and use_winograd(x, self.weight, 1, dtype, tile)
                and inference_only(x, w, styles, self.weight, self.bias)):
            prepared = self.winograd.get(self.weight, tile=tile)
        x = modulated_conv2d(x.to(dtype), self.weight, styles, padding=self.conv_kernel - 1,
                             demodulate=not self.is_torgb, input_gain=self.magnitude_ema.rsqrt(), prepared=prepared)
        return filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype), up=self.up_factor,
                              down=self.down_factor, padding=self.padding, gain=1 if self.is_torgb else np.sqrt(2),
                              slope=1 if self.is_torgb else 0.2, clamp=self.conv_clamp)


@dataclass(frozen=True)
class StyleGAN3Call(SynthesisCall):
    transform: torch.Tensor | None = None   # the input transform matrix; None: the network's stored one
    update_emas: bool = False               # training: track each layer's input magnitude


class SynthesisNetwork(LayeredSynthesis):
    """Fourier features, then layers of modulated conv and filtered leaky ReLU; the state between layers is x."""
    supports_compute_dtype = True

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_layers=14,
                 num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3, margin_size=10,
                 output_scale=0.25, num_fp16_res=4, **layer_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.num_layers, self.output_scale = num_layers, output_scale
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels
        self.input = SynthesisInput(w_dim, int(channels[0]), int(sizes[0]), sampling_rates[0], cutoffs[0])
        infos = [LayerInfo("input", "input", int(channels[0]), int(sizes[0]), int(sizes[0]), 0, style_channels=4)]
        self.synthesis_layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            is_torgb = idx == num_layers
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=is_torgb, is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[idx] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]), in_size=int(sizes[prev]),
                out_size=int(sizes[idx]), in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[idx]), in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.synthesis_layer_names.append(name)
            infos.append(LayerInfo(name, "torgb" if is_torgb else "conv", int(channels[idx]), int(sizes[idx]),
                                   int(sizes[idx]), idx + 1, style_channels=int(channels[prev])))
        self.declare_layers(infos)

    # -- the layers' math and wiring, for LayeredSynthesis.forward ----------------------------------------------

    def start_call(self, ws, controls, force_fp32, fused_modconv, compute_dtype=None, input_transform=None,
                   update_emas=False):
        """input_transform: (tx, ty, angle in degrees) moves and rotates the image through the Fourier features.
        The noise controls are accepted for the common interface; StyleGAN3 has no noise."""
        transform = transform_matrix(*input_transform) if input_transform is not None else None
        return StyleGAN3Call(ws.to(torch.float32), controls, force_fp32, fused_modconv, compute_dtype,
                             transform=transform, update_emas=update_emas)

    def run_layer(self, info, state, call):
        w = call.ws[:, info.w_index]
        controls = call.controls.for_layer(info.name)
        if info.kind == "input":
            return self.input(w, controls, call.transform)
        return getattr(self, info.name)(state.x, w, controls, force_fp32=call.force_fp32,
                                        update_emas=call.update_emas, compute_dtype=call.compute_dtype)

    def final_image(self, state, call):
        image = state.x * self.output_scale if self.output_scale != 1 else state.x
        return image.to(torch.float32)


class Generator(GeneratorBase):
    family = "stylegan3"
    synthesis_class = SynthesisNetwork
    mapping_defaults = {"num_layers": 2}   # StyleGAN3's default mapping depth
    synthesis_tracks_emas = True

    @property
    def architecture(self) -> str:
        radial = self.config.get("use_radial_filters", False)
        return "stylegan3-r" if radial else "stylegan3-t"
