"""StyleGAN (Karras et al. 2019) generator, as the original TensorFlow graph computes it.

Mapping: z (with the class embedding concatenated) -> pixel norm -> dense layers with learning-rate multiplier
0.01, each followed by leaky ReLU 0.2 (the last one too).
Synthesis, per layer ("epilogue"): add noise (one stored image per layer times a per-channel weight), add bias,
leaky ReLU 0.2, instance norm, style modulation x * (s[:C] + 1) + s[C:] with s = A(w). The 4x4 block is the
learned constant (layer 0) and a 3x3 conv (layer 1); every later block upsamples (nearest + 3x3 conv below
128 px; a fused transposed 4x4 conv at 128 px and above), blurs with [1,2,1], then a second 3x3 conv.
Weights are scaled at run time by gain / sqrt(fan_in): sqrt(2) for convs and mapping, 1 for styles and ToRGB.

Layer names: b4.const (the constant's noise and style), b4.conv, b8.conv0, b8.conv1, ..., torgb.

Truncation: the original truncates only the first 8 ws unless told otherwise (G_style's truncation_cutoff=8), so
here `G.mapping(...)` and `G(...)` default to truncation_cutoff=8 (`default_truncation_cutoff`), and an explicit
None truncates every layer, as in the other families. (In the original, a cutoff of None disabled truncation.)
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kernels import adain, filter2d, setup_filter

from .common import (ControlsForLayer, GeneratorBase, LayeredSynthesis, LayerInfo, SynthesisState,
                     normalize_2nd_moment, truncate)

LRELU_SLOPE = 0.2
TF_DEFAULT_TRUNCATION_CUTOFF = 8
W_AVG_BETA = 0.995
FUSED_UPSCALE_FROM = 128     # the original fuses upscale and conv from this output resolution up


class Dense(nn.Module):
    """x @ (W * gain * lrmul / sqrt(fan_in)) + b * lrmul, weights stored [out, in]."""

    def __init__(self, in_features, out_features, gain=math.sqrt(2), lrmul=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lrmul)
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.weight_gain = gain * lrmul / math.sqrt(in_features)
        self.bias_gain = lrmul

    def forward(self, x):
        return torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t())


class MappingNetwork(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, layer_features=512, lr_multiplier=0.01):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        if c_dim:
            # The original concatenates labels @ embed to z before the pixel norm.
            self.embed = nn.Parameter(torch.randn([c_dim, z_dim]))
        features = [z_dim * (2 if c_dim else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"fc{i}", Dense(features[i], features[i + 1], lrmul=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=TF_DEFAULT_TRUNCATION_CUTOFF,
                update_emas=False):
        x = z.to(torch.float32)
        if self.c_dim:
            if c is None:
                raise ValueError(f"this network is conditional: give a class label c of size {self.c_dim}")
            x = torch.cat([x, c.to(torch.float32) @ self.embed], dim=1)
        x = normalize_2nd_moment(x)
        for i in range(self.num_layers):
            x = F.leaky_relu(getattr(self, f"fc{i}")(x), LRELU_SLOPE)
        if update_emas:   # the original's dlatent_avg, decay 0.995
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, W_AVG_BETA))
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            ws = truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)
        return ws


class StyledLayer(nn.Module):
    """The part every synthesis layer ends with: noise, bias, leaky ReLU, instance norm, style modulation."""

    def __init__(self, channels, w_dim, resolution):
        super().__init__()
        self.channels = channels
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = nn.Parameter(torch.zeros([channels]))
        self.bias = nn.Parameter(torch.zeros([channels]))
        self.affine = Dense(w_dim, 2 * channels, gain=1.0)
        self.resolution = resolution

    def epilogue(self, x, w, controls: ControlsForLayer):
        noise = controls.noise(self.noise_const, self.noise_strength.reshape(1, -1, 1, 1),
                               [x.shape[0], 1, self.resolution, self.resolution], x.device, x.dtype)
        if noise is not None:
            x = x + noise
        x = F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), LRELU_SLOPE)
        style = controls.styles(self.affine(w))
        return adain(x, style[:, :self.channels], style[:, self.channels:])


class ConstLayer(StyledLayer):
    def __init__(self, channels, w_dim):
        super().__init__(channels, w_dim, 4)
        self.const = nn.Parameter(torch.ones([channels, 4, 4]))

    def forward(self, x, w, controls: ControlsForLayer):
        """x is ignored: the layer starts from its learned constant."""
        x = self.const.unsqueeze(0).repeat([w.shape[0], 1, 1, 1])
        return self.epilogue(x, w, controls)


class ConvLayer(StyledLayer):
    """3x3 conv; with up=2 preceded by nearest upscaling, or fused into a transposed conv, then the blur.

    fused_scale: 'auto' (the original's default: fused from FUSED_UPSCALE_FROM px up), True or False.
    blur_filter: taps of the separable blur after upscaling; None or [] for none."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, up=1, blur_filter=(1, 2, 1),
                 fused_scale="auto"):
        super().__init__(out_channels, w_dim, resolution)
        self.up = up
        if fused_scale not in ("auto", True, False):
            raise ValueError(f"fused_scale must be 'auto', True or False, not {fused_scale!r}")
        self.fused = up > 1 and (resolution >= FUSED_UPSCALE_FROM if fused_scale == "auto" else fused_scale)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.weight_gain = math.sqrt(2) / math.sqrt(in_channels * 9)
        # Derived from the config, not stored: files carry the taps as a setting, not as a tensor.
        self.register_buffer("blur_filter", setup_filter(list(blur_filter)) if blur_filter else None,
                             persistent=False)

    def forward(self, x, w, controls: ControlsForLayer):
        weight = self.weight * self.weight_gain
        if self.up == 1:
            x = F.conv2d(x, weight, padding=1)
        elif not self.fused:
            x = F.conv2d(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3), weight, padding=1)
        else:
            # Upscale and conv in one transposed conv: the 3x3 kernel padded to 5x5, its four one-pixel shifts
            # summed into a 4x4 kernel.
            padded = F.pad(weight, [1, 1, 1, 1])
            kernel = padded[:, :, 1:, 1:] + padded[:, :, :-1, 1:] + padded[:, :, 1:, :-1] + padded[:, :, :-1, :-1]
            x = F.conv_transpose2d(x, kernel.transpose(0, 1), stride=2, padding=1)
        if self.up > 1 and self.blur_filter is not None:
            x = filter2d(x, self.blur_filter)
        return self.epilogue(x, w, controls)


class ToRGB(nn.Module):
    def __init__(self, in_channels, img_channels):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([img_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([img_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.weight_gain) + self.bias.reshape(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, blur_filter, fused_scale="auto"):
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:
            self.const = ConstLayer(out_channels, w_dim)
            self.conv = ConvLayer(out_channels, out_channels, w_dim, resolution)
        else:
            self.conv0 = ConvLayer(in_channels, out_channels, w_dim, resolution, up=2, blur_filter=blur_filter,
                                   fused_scale=fused_scale)
            self.conv1 = ConvLayer(out_channels, out_channels, w_dim, resolution)

    def layer_names(self):
        return ["const", "conv"] if hasattr(self, "const") else ["conv0", "conv1"]


class SynthesisNetwork(LayeredSynthesis):
    """The state between layers is x; after `torgb`, img holds the image."""

    def __init__(self, w_dim, img_resolution, img_channels, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 blur_filter=(1, 2, 1), fused_scale="auto"):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        assert img_resolution == 2 ** log2 and img_resolution >= 4
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]

        def nf(stage):
            return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)

        empty = [2 ** (stage + 1) for stage in range(1, log2) if nf(stage) < 1]
        if empty:
            raise ValueError(f"fmap_base {fmap_base} leaves no channels at {empty[0]} px")
        layers, w_index = [], 0
        for res in self.block_resolutions:
            stage = int(np.log2(res)) - 1
            in_channels = 0 if res == 4 else nf(stage - 1)
            block = SynthesisBlock(in_channels, nf(stage), w_dim, res, blur_filter, fused_scale)
            setattr(self, f"b{res}", block)
            for kind in block.layer_names():
                layer = getattr(block, kind)
                layers.append(LayerInfo(f"b{res}.{kind}", "conv", layer.channels, res, res, w_index,
                                        style_channels=2 * layer.channels, has_noise=True))
                w_index += 1
        self.num_ws = w_index
        self.torgb = ToRGB(nf(log2 - 1), img_channels)
        layers.append(LayerInfo("torgb", "torgb", img_channels, img_resolution, img_resolution, None))
        self.declare_layers(layers)

    # -- the layers' math and wiring, for LayeredSynthesis.forward ----------------------------------------------

    def run_layer(self, info, state, call):
        if info.kind == "torgb":
            return self.torgb(state.x)
        layer = self.get_submodule(info.name)
        return layer(state.x, call.ws[:, info.w_index], call.controls.for_layer(info.name))

    def carry(self, info, state, output, call):
        if info.kind == "torgb":
            return SynthesisState(info.name, state.x, output)
        return SynthesisState(info.name, output)


class Generator(GeneratorBase):
    family = "stylegan"
    architecture = "stylegan (AdaIN)"
    default_truncation_cutoff = TF_DEFAULT_TRUNCATION_CUTOFF
    mapping_class = MappingNetwork
    synthesis_class = SynthesisNetwork

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=TF_DEFAULT_TRUNCATION_CUTOFF, update_emas=False,
                **synthesis_controls):
        return super().forward(z, c, truncation_psi, truncation_cutoff, update_emas, **synthesis_controls)

