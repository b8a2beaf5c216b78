"""StyleGAN2 generator (Karras et al. 2020), parameter for parameter the layout of NVlabs' PyTorch Generator
(training/networks_stylegan2.py of the stylegan3 repository; training/networks.py of stylegan2-ada-pytorch),
so that their state dicts load unchanged.

Per layer: styles s = A(w); weights modulated by s and demodulated by rsqrt(sum w'^2 + 1e-8); noise, bias and
the activation are applied outside the modulated convolution. The output image is the sum of the ToRGB
outputs of every resolution (skip), of the last block only (orig), with residual blocks (resnet) optionally.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from kernels import bias_act, conv2d_resample, default_gain, modulated_conv2d, setup_filter, upsample2d
from kernels.modulated_conv import (matrix_weight, modulated_conv2d_bias_act, polyphase_kernels, prepare_weight,
                                    use_matrix, use_polyphase, use_polyphase_winograd, use_transposed_winograd,
                                    use_winograd)
from kernels.winograd import (network_tile, polyphase_winograd_kernels, transposed_winograd_kernels,
                              winograd_kernels)

from .common import (ControlsForLayer, DerivedTensor, FullyConnectedLayer, GeneratorBase, LayeredSynthesis, LayerInfo,
                     SynthesisCall, SynthesisState, inference_only)

ARCHITECTURES = ("orig", "skip", "resnet")
# Resnet blocks scale both the skip path and the main path by sqrt(1/2), so their sum keeps unit variance.
RESNET_GAIN = np.sqrt(0.5)


class Conv2dLayer(nn.Module):
    """Plain convolution with equalized learning rate; the resnet skip path uses it (1x1, up=2, no bias)."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None, channels_last=False):
        super().__init__()
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = default_gain(activation)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling 2x), noise, bias, leaky ReLU, clamp."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, use_noise=True,
                 activation="lrelu", resample_filter=(1, 3, 3, 1), conv_clamp=None, channels_last=False, shape=None):
        """shape: the output's (height, width) where it is not resolution x resolution (non-square networks)."""
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution = resolution
        self.shape = tuple(shape) if shape is not None else (resolution, resolution)
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = default_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(list(self.shape)))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.prepared = DerivedTensor(prepare_weight)
        # Built only once a call needs them (bfloat16, or 1024 px): 4x the weight's size.
        self.polyphase = DerivedTensor(polyphase_kernels)
        # Built only once a float32 call needs them (many channels, no upsampling): 4x the weight's size (F(4x4)),
        # 7x from 128 px (F(6x6)).
        self.winograd = DerivedTensor(winograd_kernels)
        # The polyphase kernels in Winograd's form (float32 at 1024 px, compiled transforms): 28x the weight's size.
        self.polyphase_winograd = DerivedTensor(polyphase_winograd_kernels)
        # The transposed convolution's kernels in Winograd's form (float32 upsampling layers from 32 px input):
        # 4x the weight's size.
        self.transposed_winograd = DerivedTensor(transposed_winograd_kernels)
        # The weight as one matrix (float32 layers on small images): the weight's size.
        self.matrix = DerivedTensor(matrix_weight)

    def forward(self, x, w, controls: ControlsForLayer, fused_modconv=True, gain=1, compute_dtype=None):
        styles = controls.styles(self.affine(w))
        noise = None
        if self.use_noise:
            noise = controls.noise(self.noise_const, self.noise_strength,
                                   [x.shape[0], 1, *self.shape], x.device, x.dtype)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if fused_modconv and inference_only(x, w, self.weight, self.bias, styles, noise):
            prepared = self.prepared.get(self.weight)
            tile = network_tile(x.shape[-1] * self.up)
            if use_winograd(x, self.weight, self.up, compute_dtype or x.dtype, tile):
                prepared = dataclasses.replace(prepared, winograd=self.winograd.get(self.weight, tile=tile))
            elif use_polyphase(x, self.up, compute_dtype or x.dtype):
                polyphase = self.polyphase.get(self.weight, self.resample_filter, up=self.up, padding=self.padding,
                                               flip_weight=(self.up == 1), in_size=x.shape[-1])
                prepared = dataclasses.replace(prepared, polyphase=polyphase)
                if use_polyphase_winograd(polyphase, compute_dtype or x.dtype):
                    prepared = dataclasses.replace(prepared, polyphase_winograd=self.polyphase_winograd.get(
                        polyphase.kernels, up=self.up, tile=tile))
            elif use_transposed_winograd(x, self.weight, self.up, compute_dtype or x.dtype, self.padding,
                                         self.resample_filter):
                prepared = dataclasses.replace(prepared, transposed_winograd=self.transposed_winograd.get(
                    self.weight, flip_weight=(self.up == 1)))
            elif use_matrix(x, self.weight, self.up, compute_dtype or x.dtype, self.padding, self.resample_filter,
                            flip_weight=(self.up == 1)):
                prepared = dataclasses.replace(prepared, matrix=self.matrix.get(self.weight, up=self.up,
                                                                                flip_weight=(self.up == 1)))
            return modulated_conv2d_bias_act(x, self.weight, styles, self.bias, noise=noise, up=self.up,
                                             padding=self.padding, resample_filter=self.resample_filter,
                                             flip_weight=(self.up == 1), act=self.activation,
                                             gain=self.act_gain * gain, clamp=act_clamp, prepared=prepared,
                                             compute_dtype=compute_dtype)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)


class ToRGBLayer(nn.Module):
    """1x1 modulated convolution to image channels; not demodulated, styles scaled by 1/sqrt(fan_in)."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.in_channels = in_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, controls: ControlsForLayer, fused_modconv=True, compute_dtype=None):
        styles = controls.styles(self.affine(w)) * self.weight_gain
        if fused_modconv and inference_only(x, w, self.weight, self.bias, styles):
            # The image sum that follows stays float32 and in the plain layout.
            return modulated_conv2d_bias_act(x, self.weight, styles, self.bias, demodulate=False, act="linear",
                                             clamp=self.conv_clamp, compute_dtype=compute_dtype)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: [const or conv0 (up 2x)], conv1, [torgb]; resnet blocks add a scaled 1x1 skip.
    It holds the layers under their NVlabs names; SynthesisNetwork runs them."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture="skip",
                 resample_filter=(1, 3, 3, 1), conv_clamp=256, use_fp16=False, fp16_channels_last=False,
                 fused_modconv_default=True, shape=None, **layer_kwargs):
        """shape: the block's (height, width) where it is not resolution x resolution (non-square networks)."""
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, *(shape or (resolution, resolution))]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, shape=shape,
                                        **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, shape=shape, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def layer_names(self, prefix):
        names = []
        if self.in_channels != 0:
            if self.architecture == "resnet":
                names.append(f"{prefix}.skip")
            names.append(f"{prefix}.conv0")
        names.append(f"{prefix}.conv1")
        if hasattr(self, "torgb"):
            names.append(f"{prefix}.torgb")
        return names

    def dtype(self, force_fp32: bool) -> torch.dtype:
        return torch.float16 if self.use_fp16 and not force_fp32 else torch.float32


class SynthesisNetwork(LayeredSynthesis):
    """ws [N, num_ws, w_dim] -> image; ToRGB of block R shares its w with conv0 of block 2R.

    The state between layers: x, the running image `img` (the sum of the ToRGB outputs so far, upsampled), and in
    resnet blocks the skip path's output `block_input`, added to conv1's output."""
    supports_compute_dtype = True

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=4,
                 channels=None, base_shape=None, **block_kwargs):
        """channels: optional list of channel counts, one per block from 4 px up, for channel tables that
        min(channel_base / res, channel_max) cannot express (rosinality's channel_multiplier 4, TF fmap_min).
        base_shape: (height, width) of the first block's constant for non-square networks (StyleGAN-Human's
        [4, 2]); each block doubles it, so the image is img_resolution * base_shape / 4."""
        super().__init__()
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        base_shape = tuple(base_shape) if base_shape is not None else (4, 4)
        self.block_shapes = {2 ** i: (base_shape[0] << i >> 2, base_shape[1] << i >> 2)
                             for i in range(2, int(np.log2(img_resolution)) + 1)}
        self.img_shape = self.block_shapes[img_resolution]   # (height, width) of the image
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        if channels is None:
            channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        else:
            if len(channels) != len(self.block_resolutions):
                raise ValueError(f"channels needs one count per block ({len(self.block_resolutions)}), "
                                 f"not {len(channels)}")
            channels = dict(zip(self.block_resolutions, (int(c) for c in channels)))
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_channels, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=(res >= fp16_resolution),
                                   shape=self.block_shapes[res] if self.block_shapes[res] != (res, res) else None,
                                   **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)
        self.declare_layers(self._describe_layers(channels))

    def _describe_layers(self, channels):
        layers, w_idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            for name in block.layer_names(f"b{res}"):
                kind = name.split(".")[1]
                if kind == "skip":
                    layers.append(LayerInfo(name, "skip", channels[res], *self.block_shapes[res], None))
                    continue
                if kind == "torgb":
                    layers.append(LayerInfo(name, "torgb", self.img_channels, *self.block_shapes[res],
                                            w_idx + block.num_conv, style_channels=channels[res]))
                    continue
                layer = getattr(block, kind)
                w_index = w_idx + (kind == "conv1" and block.in_channels != 0)
                layers.append(LayerInfo(name, "conv", channels[res], *self.block_shapes[res], w_index,
                                        style_channels=layer.in_channels, has_noise=layer.use_noise))
            w_idx += block.num_conv
        return layers

    # -- the layers' math and wiring, for LayeredSynthesis.forward ----------------------------------------------

    def _block_and_input(self, info: LayerInfo, state: SynthesisState, call: SynthesisCall):
        """The layer's block, and x in the block's precision (None before the first block's const)."""
        block = getattr(self, info.name.split(".")[0])
        x = state.x.to(call.layer_dtype(block.use_fp16)) if state.x is not None else None
        return block, x

    def run_layer(self, info, state, call):
        block, x = self._block_and_input(info, state, call)
        kind = info.name.split(".")[1]
        if kind == "skip":
            return block.skip(x, gain=RESNET_GAIN)
        w = call.ws[:, info.w_index]
        controls = call.controls.for_layer(info.name)
        if kind == "conv0":
            return block.conv0(x, w, controls, fused_modconv=call.fused_modconv, compute_dtype=x.dtype)
        if kind == "conv1":
            if block.in_channels == 0:
                x = block.const.to(call.layer_dtype(block.use_fp16)).unsqueeze(0).repeat([call.ws.shape[0], 1, 1, 1])
            gain = RESNET_GAIN if state.block_input is not None else 1
            return block.conv1(x, w, controls, fused_modconv=call.fused_modconv, gain=gain, compute_dtype=x.dtype)
        image = block.torgb(x, w, controls, fused_modconv=call.fused_modconv, compute_dtype=x.dtype)
        return image.to(torch.float32, memory_format=torch.contiguous_format)

    def carry(self, info, state, output, call):
        kind = info.name.split(".")[1]
        if kind == "skip":
            _, x = self._block_and_input(info, state, call)
            return SynthesisState(info.name, x, state.img, block_input=output)
        if kind == "conv0":
            return SynthesisState(info.name, output, state.img, state.block_input)
        if kind == "conv1":
            # The layer's own output is what is captured and edited (what NVlabs' hooks see); the skip adds after.
            x = state.block_input.add(output) if state.block_input is not None else output
            return SynthesisState(info.name, x, state.img)
        img = state.img
        if img is not None:
            img = upsample2d(img, getattr(self, info.name.split(".")[0]).resample_filter)
        img = img.add(output) if img is not None else output
        return SynthesisState(info.name, state.x, img)


class Generator(GeneratorBase):
    family = "stylegan2"
    synthesis_class = SynthesisNetwork

    @property
    def architecture(self) -> str:
        return self.config.get("architecture", "skip")



def channel_kwargs(table: dict[int, int]) -> dict:
    """Constructor arguments that give a synthesis network the channel counts `table` (resolution -> channels):
    channel_base and channel_max where min(channel_base / res, channel_max) reproduces the table, plus an explicit
    `channels` list where it cannot."""
    top = max(table)
    base, most = table[top] * top, max(table.values())
    kwargs = dict(channel_base=base, channel_max=most)
    if any(min(base // res, most) != count for res, count in table.items()):
        kwargs["channels"] = [table[res] for res in sorted(table)]
    return kwargs


def config_f(resolution: int, z_dim: int = 512, w_dim: int = 512, c_dim: int = 0) -> dict:
    """Constructor arguments of the paper's config F at a given resolution (the FFHQ networks)."""
    return dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution, img_channels=3,
                mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512, num_fp16_res=4,
                conv_clamp=256, architecture="skip")


def layer_count(resolution: int) -> int:
    """num_ws of a StyleGAN2 generator: two per resolution from 8 px up, one at 4 px, one extra for ToRGB."""
    return 2 * int(math.log2(resolution)) - 2
