"""What every generator family shares: the layer description, the per-call synthesis controls, the synthesis
loop over named layers (LayeredSynthesis), the result, equalized-learning-rate dense layers and the mapping
network.

Every generator here (StyleGAN, StyleGAN2, StyleGAN3) has
    G.mapping(z, c, truncation_psi=1, truncation_cutoff=None) -> ws [N, num_ws, w_dim]
    G.synthesis(ws, noise_mode=..., noise_strength=..., noise_seed=..., style_deltas=..., capture=...,
                stop_after=..., resume=..., force_fp32=..., compute_dtype=..., layer_edits=...) -> SynthesisOutput
    G.synthesis.layers -> list[LayerInfo], in execution order
    G(z, c, truncation_psi, truncation_cutoff, **synthesis_controls) -> SynthesisOutput
and `G.config`, the constructor arguments, so that a network can be written out and rebuilt.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Collection, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from kernels import bias_act

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class LayerInfo:
    """One named layer of a synthesis network."""
    name: str                 # NVlabs naming: 'b64.conv1', 'b64.torgb', 'L3_52_1024', 'b8.conv0'
    kind: str                 # 'conv', 'torgb', 'skip', 'input'
    channels: int             # output channels
    height: int               # output size
    width: int
    w_index: int | None       # index into ws of the w that styles this layer; None when unstyled
    style_channels: int = 0   # size of the affine output s that modulates the layer (0: no style)
    has_noise: bool = False


@dataclass
class SynthesisState:
    """Everything the rest of the network needs after layer `after`: the way to resume a synthesis."""
    after: str
    x: torch.Tensor | None
    img: torch.Tensor | None = None
    block_input: torch.Tensor | None = None   # StyleGAN2 resnet blocks add a skip from the block's input


@dataclass
class SynthesisOutput:
    image: torch.Tensor | None                       # [N, C, H, W] raw (not clamped); None when stopped early
    activations: dict[str, torch.Tensor] = field(default_factory=dict)   # the captured layers, by name
    state: SynthesisState | None = None              # set when `stop_after` stopped the synthesis


# A layer edit: the layer's output activation in, the activation the rest of the network sees out.
LayerEdit = Callable[[torch.Tensor], torch.Tensor]


class LayerControls:
    """The per-call controls of one synthesis, looked up by layer name.

    noise_mode: one of NOISE_MODES, or a mapping layer name -> mode (missing layers use 'const').
    noise_strength: mapping layer name -> multiplier of that layer's learned noise strength (default 1).
    noise_seed: None draws random noise from torch's global generator; an int makes it repeatable, per layer.
    style_deltas: mapping layer name -> tensor [C] or [N, C] added to that layer's affine output s.
    capture: layer names whose outputs to return (the string 'all' captures every layer).
    stop_after: a layer name; the synthesis stops after it and returns its state.
    resume: a state from an earlier stop; the layers up to and including `resume.after` are skipped.
    layer_edits: mapping layer name -> callable(activation) -> activation of the same shape, applied to the
        layer's output before it is captured and passed on (channel ablation, network bending).
    """

    def __init__(self, layer_names: Sequence[str], noise_mode: str | Mapping[str, str] = "const",
                 noise_strength: Mapping[str, float] | None = None, noise_seed: int | None = None,
                 style_deltas: Mapping[str, torch.Tensor] | None = None, capture: Collection[str] | str = (),
                 stop_after: str | None = None, resume: SynthesisState | None = None,
                 layer_edits: Mapping[str, LayerEdit] | None = None):
        known = list(layer_names)
        self.layer_index = {name: i for i, name in enumerate(known)}
        if isinstance(noise_mode, str):
            self._check_mode(noise_mode)
            self.default_noise_mode, self.noise_modes = noise_mode, {}
        else:
            self.default_noise_mode, self.noise_modes = "const", dict(noise_mode)
            for mode in self.noise_modes.values():
                self._check_mode(mode)
        self.noise_strength = dict(noise_strength or {})
        self.noise_seed = noise_seed
        self.style_deltas = dict(style_deltas or {})
        self.capture = set(known) if capture == "all" else set(capture)
        self.stop_after = stop_after
        self.resume = resume
        self.layer_edits = dict(layer_edits or {})
        for name, edit in self.layer_edits.items():
            if not callable(edit):
                raise TypeError(f"layer_edits[{name!r}] must be a callable tensor -> tensor, not "
                                f"{type(edit).__name__}")
        for name in [*self.noise_modes, *self.noise_strength, *self.style_deltas, *self.capture, *self.layer_edits,
                     *([stop_after] if stop_after else []), *([resume.after] if resume else [])]:
            if name not in self.layer_index:
                raise KeyError(f"no layer named {name!r}; layers: {', '.join(known)}")

    @staticmethod
    def _check_mode(mode):
        if mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, not {mode!r}")

    @property
    def first_layer(self) -> int:
        """Index of the first layer to run: 0, or the one after the resumed state's layer."""
        return 0 if self.resume is None else self.layer_index[self.resume.after] + 1

    def for_layer(self, name: str) -> ControlsForLayer:
        return ControlsForLayer(self, name, self.layer_index[name])

    def noise(self, name: str, stored: torch.Tensor | None, strength: torch.Tensor, shape, device, dtype):
        """The noise image layer `name` adds, already scaled: None when it adds nothing."""
        mode = self.noise_modes.get(name, self.default_noise_mode)
        multiplier = float(self.noise_strength.get(name, 1.0))
        if mode == "none" or multiplier == 0:
            return None
        if mode == "const":
            if stored is None:
                return None
            base = stored
        elif self.noise_seed is None:
            base = torch.randn(shape, device=device, dtype=dtype)
        else:
            # One generator per layer, so a layer's noise does not depend on which layers ran before it.
            generator = torch.Generator().manual_seed(int(self.noise_seed) * 100_003 + self.layer_index[name])
            base = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
        return base * (strength * multiplier)

    def styles(self, name: str, styles: torch.Tensor) -> torch.Tensor:
        delta = self.style_deltas.get(name)
        if delta is None:
            return styles
        return styles + delta.to(device=styles.device, dtype=styles.dtype)

    def edited(self, name: str, output: torch.Tensor) -> torch.Tensor:
        """The layer's output after its edit, if it has one: same shape, device and dtype as the output."""
        edit = self.layer_edits.get(name)
        if edit is None:
            return output
        result = edit(output)
        if not isinstance(result, torch.Tensor) or result.shape != output.shape:
            got = list(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            raise ValueError(f"layer_edits[{name!r}] must return a tensor of the layer's shape "
                             f"{list(output.shape)}, not {got}")
        # The next layer expects the dtype this layer computes in (float16 blocks stay float16).
        return result.to(device=output.device, dtype=output.dtype)


@dataclass(frozen=True)
class ControlsForLayer:
    """The per-call controls of one named layer, as its module reads them (its style delta and its noise)."""
    controls: LayerControls
    name: str
    index: int

    def styles(self, styles: torch.Tensor) -> torch.Tensor:
        """The affine output s with this call's style delta for the layer added."""
        return self.controls.styles(self.name, styles)

    def noise(self, stored: torch.Tensor | None, strength: torch.Tensor, shape, device, dtype):
        """The scaled noise image the layer adds; None when it adds nothing."""
        return self.controls.noise(self.name, stored, strength, shape, device, dtype)


@dataclass(frozen=True)
class SynthesisCall:
    """What one synthesis call gives every layer: the ws, the per-call controls and the precision settings.
    A family that takes more per-call options subclasses it (StyleGAN3: the input transform)."""
    ws: torch.Tensor
    controls: LayerControls
    force_fp32: bool = True
    fused_modconv: bool = True   # StyleGAN2's grouped-convolution path; other families ignore it
    compute_dtype: torch.dtype | None = None   # a preview precision for every layer (None: the network's own)

    def layer_dtype(self, use_fp16: bool) -> torch.dtype:
        """The type a layer computes in: the call's preview precision, else float16 where the network keeps
        that layer in float16 and the call allows it, else float32."""
        if self.compute_dtype is not None:
            return self.compute_dtype
        return torch.float16 if use_fp16 and not self.force_fp32 else torch.float32


# Preview precisions by device type: what a synthesis call's compute_dtype may be there.
PREVIEW_DTYPES = {"cpu": (torch.bfloat16,), "cuda": (torch.float16, torch.bfloat16)}


@functools.cache
def bfloat16_is_fast_on_cpu() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX) for oneDNN; without it bfloat16
    convolutions are emulated and slower than float32. Asked once: the window asks every frame."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def check_compute_dtype(compute_dtype: torch.dtype | None, device: torch.device) -> None:
    """One clear error for a preview precision the device cannot run (float16 on a CPU, bfloat16 on a CPU
    without native support); None and float32 always pass."""
    if compute_dtype is None or compute_dtype == torch.float32:
        return
    allowed = PREVIEW_DTYPES.get(device.type, ())
    name = str(compute_dtype).replace("torch.", "")
    if compute_dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed) or "none"
        raise ValueError(f"precision {name} is not available on {device.type} (available: float32, {names})")
    if device.type == "cpu" and not bfloat16_is_fast_on_cpu():
        raise ValueError("precision bfloat16 needs a CPU with AVX-512 BF16 or AMX; this one has neither")


# The state before the first layer: nothing computed yet.
NOTHING_YET = ""


class LayeredSynthesis(nn.Module):
    """ws [N, num_ws, w_dim] -> image by running named layers in order: the loop, the capture, stop and resume
    bookkeeping and the per-call controls, once for every family.

    A family's constructor builds its modules (their attribute paths are the layer names, hence the state dict's
    names), sets `w_dim` and `num_ws`, and calls `declare_layers` with its LayerInfo list in execution order. It
    then says what each layer computes:
        run_layer(info, state, call) -> the layer's output activation, from the state after the layer before
        carry(info, state, output, call) -> the state after the layer (default: the output becomes x)
        final_image(state, call) -> the image, from the state after the last layer (default: state.img)
    and, when it takes per-call options beyond the common ones, start_call (default: a plain SynthesisCall).
    """

    w_dim: int
    num_ws: int
    supports_compute_dtype = False   # whether the family's layers honour a call's preview precision
    layers: list[LayerInfo]
    layer_names: list[str]

    def declare_layers(self, layers: Sequence[LayerInfo]) -> None:
        self.layers = list(layers)
        self.layer_names = [layer.name for layer in self.layers]

    def start_call(self, ws: torch.Tensor, controls: LayerControls, force_fp32: bool,
                   fused_modconv: bool, compute_dtype: torch.dtype | None = None) -> SynthesisCall:
        return SynthesisCall(ws, controls, force_fp32, fused_modconv, compute_dtype)

    def run_layer(self, info: LayerInfo, state: SynthesisState, call: SynthesisCall) -> torch.Tensor:
        raise NotImplementedError

    def carry(self, info: LayerInfo, state: SynthesisState, output: torch.Tensor,
              call: SynthesisCall) -> SynthesisState:
        return SynthesisState(info.name, output)

    def final_image(self, state: SynthesisState, call: SynthesisCall) -> torch.Tensor:
        return state.img

    def forward(self, ws, noise_mode="const", noise_strength=None, noise_seed=None, style_deltas=None, capture=(),
                stop_after=None, resume: SynthesisState | None = None, force_fp32=True, fused_modconv=True,
                layer_edits: Mapping[str, LayerEdit] | None = None, compute_dtype: torch.dtype | None = None,
                **family_options) -> SynthesisOutput:
        """The image of ws under this call's controls (LayerControls says what each one does). A layer's edit
        runs on its output before the output is captured and before any later layer reads it; a resumed call
        skips the layers up to its state, and their edits with them (they are in the state already). Options
        of one family (StyleGAN3: input_transform, update_emas) go to its start_call.

        compute_dtype: a preview precision (torch.bfloat16 on a CPU that has it, torch.float16 or bfloat16 on
        CUDA) in which every layer computes; the image comes back float32. None (or float32): exact float32,
        or NVlabs' own float16 blocks on CUDA when force_fp32 is False. A resumed state keeps the type it was
        computed in until the next layer converts it."""
        check_ws(ws, self.num_ws, self.w_dim)
        if compute_dtype == torch.float32:
            compute_dtype = None
        # The network's own limit first: it holds on every device, the device's limit only on this one.
        if compute_dtype is not None and not self.supports_compute_dtype:
            raise ValueError(f"{type(self).__module__.rsplit('.', 1)[-1]} networks compute in float32 only")
        check_compute_dtype(compute_dtype, ws.device)
        controls = LayerControls(self.layer_names, noise_mode=noise_mode, noise_strength=noise_strength,
                                 noise_seed=noise_seed, style_deltas=style_deltas, capture=capture,
                                 stop_after=stop_after, resume=resume, layer_edits=layer_edits)
        if not force_fp32 and ws.device.type != "cuda":
            force_fp32 = True   # float16 convolutions are slow or missing on CPU
        call = self.start_call(ws, controls, force_fp32=force_fp32, fused_modconv=fused_modconv,
                               compute_dtype=compute_dtype, **family_options)
        state = resume if resume is not None else SynthesisState(NOTHING_YET, None)
        activations: dict[str, torch.Tensor] = {}
        for info in self.layers[controls.first_layer:]:
            output = controls.edited(info.name, self.run_layer(info, state, call))
            state = self.carry(info, state, output, call)
            if info.name in controls.capture:
                activations[info.name] = output
            if info.name == stop_after:
                return SynthesisOutput(image=None, activations=activations, state=state)
        return SynthesisOutput(image=self.final_image(state, call), activations=activations)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def inference_only(*tensors: torch.Tensor) -> bool:
    """True when no gradient can flow and no tracer records the call: the fused inference kernels may run
    (they work in place and lay large activations out channels-last, which a traced export must not bake in)."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    return not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in tensors)


class DerivedTensor:
    """A value computed from a parameter (a scaled copy, a prepared kernel), recomputed only when the parameter
    changes (a loaded state dict, an optimiser step): the inference path's per-call work without the per-call
    cost. Never used while a gradient is needed."""

    def __init__(self, derive: Callable[[torch.Tensor], object]):
        self.derive = derive
        self.key = None
        self.value = None

    def __getstate__(self):
        return {"derive": self.derive, "key": None, "value": None}   # a copy derives its own value

    def get(self, source: torch.Tensor, *tensors: torch.Tensor | None, **options):
        """derive(source, *tensors, **options), again only when one of the tensors or an option changed."""
        key = tuple((t.data_ptr(), t._version, t.device, t.dtype) if t is not None else None
                    for t in (source, *tensors)) + tuple(sorted(options.items()))
        if key != self.key:
            with torch.no_grad():
                self.key, self.value = key, self.derive(source, *tensors, **options)
        return self.value


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: weights stored as N(0, 1/lr^2), scaled by lr/sqrt(fan_in)."""

    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1.0, bias_init=0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.scaled_weight = DerivedTensor(functools.partial(torch.mul, other=float(self.weight_gain)))

    def forward(self, x):
        if torch.is_grad_enabled() and self.weight.requires_grad:
            w = self.weight.to(x.dtype) * self.weight_gain
        else:
            w = self.scaled_weight.get(self.weight).to(x.dtype)
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(nn.Module):
    """z (and a class label c) -> w, broadcast to num_ws; truncation pulls w toward the tracked w_avg."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                                          lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this network is conditional: give a class label c of size {self.c_dim}")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """w_avg + psi * (w - w_avg) for the first `cutoff` layers (all when None)."""
    if ws.ndim == 2:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


def check_ws(ws: torch.Tensor, num_ws: int, w_dim: int) -> None:
    if ws.ndim != 3 or ws.shape[1] != num_ws or ws.shape[2] != w_dim:
        raise ValueError(f"ws must be [N, {num_ws}, {w_dim}], not {list(ws.shape)}")


class GeneratorBase(nn.Module):
    """z, c -> w (mapping) -> image (synthesis), the same for every family; `config` holds the constructor
    arguments so that a network can be written out and rebuilt. Subclasses name their family and classes."""

    family = ""
    mapping_class: type[nn.Module] = MappingNetwork
    synthesis_class: type[nn.Module] = nn.Module
    mapping_defaults: dict = {}
    synthesis_tracks_emas = False   # StyleGAN3 layers track input magnitudes during training

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, **synthesis_kwargs):
        super().__init__()
        self.config = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                           img_channels=img_channels, mapping_kwargs=dict(mapping_kwargs or {}), **synthesis_kwargs)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = self.synthesis_class(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                              **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = self.mapping_class(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                          **{**self.mapping_defaults, **(mapping_kwargs or {})})

    @property
    def img_shape(self) -> tuple[int, int]:
        """(height, width) of the images: img_resolution square, unless the synthesis says otherwise (StyleGAN2
        networks with a non-square base_shape, e.g. StyleGAN-Human's 1024x512)."""
        return tuple(getattr(self.synthesis, "img_shape", (self.img_resolution, self.img_resolution)))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_controls):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        if self.synthesis_tracks_emas:
            synthesis_controls["update_emas"] = update_emas
        return self.synthesis(ws, **synthesis_controls)
