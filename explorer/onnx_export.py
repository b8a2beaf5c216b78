"""A generator as ONNX files for other tools (TouchDesigner, game engines, phones): the synthesis
(ws [N, num_ws, w_dim] -> raw image [N, C, H, W], noise mode const) and the mapping (z [N, z_dim], a class label
c [N, c_dim] when the network is conditional, truncation psi [] -> ws [N, num_ws, w_dim]).

Both are written by torch's TorchScript-based exporter (`dynamo=False`): it needs only the `onnx` package,
where the torch.export-based one needs onnxscript as well and refuses the kernels' value-dependent set-up
(the separability test of a FIR filter, the band-matrix caches keyed by the filter's values), which tracing
simply records as constants.

How the trace is made exportable without touching the networks:
- it runs on a float32 CPU copy whose parameters require gradients, under autograd, so the kernels take their
  plain differentiable paths (no in-place steps, no strided band products, which ONNX cannot express);
- 2-D resampling filters that are the outer product of one 1-D filter with itself (StyleGAN2's [1,3,3,1]) are
  replaced in the copy by that 1-D filter, and absent filters (StyleGAN3's ToRGB layer has none: the identity)
  by the 1-D one-tap identity: the same numbers, and the kernels' separability test, which reads a traced shape
  as an integer, is never reached. A filter that is not separable (StyleGAN3-R's radial ones) would reach it
  and, past it, a depthwise convolution whose kernel shape the trace loses; such networks are refused by name;
- a StyleGAN2 synthesis runs its batch through one shared kernel (`fused_modconv=False`), so N stays a free
  dimension of the graph. StyleGAN3 modulates with one grouped convolution whose group count is the batch
  size, which ONNX fixes at export time, and StyleGAN (2019)'s instance norm needs a channel count that a
  trace with a free batch loses; their syntheses are exported for one sample and wrapped in an ONNX Scan over
  the batch (each sample in turn: the same numbers, a free N).

Every export is checked with onnxruntime against the explorer's own output (when onnxruntime is installed)
before the file gets its name, and a file is never overwritten: it is written under a hidden temporary name in
the target folder and linked to its name (explorer.export.files.write_file_at).
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Lowest opset each family needs: StyleGAN3's Fourier-feature grid is an affine_grid (ONNX AffineGrid, opset 20).
DEFAULT_OPSET = 17
FAMILY_OPSETS = {"stylegan3": 20}
# Families whose synthesis runs a whole batch through shared kernels when given these options; others are
# exported per sample and scanned over the batch.
BATCHED_SYNTHESIS_OPTIONS = {"stylegan2": {"fused_modconv": False}}
# Batch sizes the check runs: 1, and one more than the trace's, to prove N is free.
CHECK_BATCH_SIZES = (1, 3)
TRACE_BATCH_SIZE = 2
CHECK_TOLERANCE = 1e-3          # max abs difference from the explorer's raw output (issue 16)
CHECK_SEED = 0
# FIR filter buffers are named '*_filter' in every family (resample_filter, up_filter, down_filter); an absent
# one means no filtering, which the one-tap filter [1] does too.
FILTER_SUFFIX = "_filter"
IDENTITY_FILTER = torch.ones([1])
EXAMPLE_PSI = 0.7               # any psi other than 1, so that the truncation is part of the traced mapping


class OnnxExportError(Exception):
    """An export that could not be done or did not match; the message is one line for the user."""


@dataclass(frozen=True)
class OnnxCheck:
    """The exported graph run by onnxruntime against the explorer on the same inputs."""
    batch_sizes: tuple[int, ...]
    max_abs_error: float
    tolerance: float

    def describe(self) -> str:
        sizes = ", ".join(str(n) for n in self.batch_sizes)
        return f"onnxruntime matches the explorer within {self.max_abs_error:.2g} (N = {sizes})"


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    what: str                  # 'synthesis' or 'mapping'
    inputs: tuple[str, ...]    # e.g. ('ws [N, 16, 512]',)
    output: str                # e.g. 'image [N, 3, 256, 256]'
    batched: bool              # False: one sample at a time inside an ONNX Scan
    opset: int
    check: OnnxCheck | None    # None when onnxruntime is not installed

    def describe(self) -> str:
        graph = "batched graph" if self.batched else "per-sample graph scanned over N"
        checked = self.check.describe() if self.check else "not checked: onnxruntime is not installed"
        return (f"{self.path}: {self.what} {', '.join(self.inputs)} -> {self.output}, {graph}, opset {self.opset}; "
                f"{checked}")


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise OnnxExportError("ONNX export needs the onnx package (pip install onnx)")
    return onnx


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def opset_for(G) -> int:
    return FAMILY_OPSETS.get(getattr(G, "family", ""), DEFAULT_OPSET)


# -- the traceable copy --------------------------------------------------------------------------------------------

def _as_one_dimensional(f: torch.Tensor) -> torch.Tensor | None:
    """The 1-D filter a with f == outer(a, a), or None when f is not of that form."""
    total = f.sum()
    if f.ndim != 2 or f.shape[0] != f.shape[1] or total <= 0:
        return None
    rows, columns = f.sum(dim=1), f.sum(dim=0)
    a = rows / total.sqrt()
    if not torch.allclose(rows, columns) or not torch.allclose(a.outer(a), f, rtol=1e-6, atol=1e-9):
        return None
    return a


def traceable_copy(module: nn.Module) -> nn.Module:
    """A float32 CPU copy whose FIR filters are 1-D where they can be and whose parameters require gradients
    (see the module docstring); the original is left as it was."""
    duplicate = copy.deepcopy(module).to(device="cpu", dtype=torch.float32).eval()
    for module_name, owner in duplicate.named_modules():
        for name, buffer in list(owner._buffers.items()):
            if not name.endswith(FILTER_SUFFIX):
                continue
            if buffer is None:
                owner.register_buffer(name, IDENTITY_FILTER.clone())
                continue
            if buffer.ndim == 1:
                continue
            factor = _as_one_dimensional(buffer)
            if factor is None:
                raise OnnxExportError(f"{module_name}.{name} is a {'x'.join(map(str, buffer.shape))} filter that "
                                      f"is not one 1-D filter applied along both axes (StyleGAN3-R's radial filters "
                                      f"are not); such networks do not export to ONNX yet")
            owner.register_buffer(name, factor.contiguous())
    return duplicate.requires_grad_(True)


class SynthesisGraph(nn.Module):
    """ws -> raw image, noise mode const: the function the synthesis file computes."""

    def __init__(self, synthesis: nn.Module, options: dict):
        super().__init__()
        self.synthesis = synthesis
        self.options = dict(options)

    def forward(self, ws):
        return self.synthesis(ws, noise_mode="const", **self.options).image


class MappingGraph(nn.Module):
    """z (, c), psi -> ws, truncated toward w_avg as the family truncates (its own cutoff)."""

    def __init__(self, mapping: nn.Module, conditional: bool):
        super().__init__()
        self.mapping = mapping
        self.conditional = conditional

    def forward(self, z, *rest):
        c, psi = rest if self.conditional else (None, rest[0])
        return self.mapping(z, c, truncation_psi=psi)


def _trace_to_onnx(graph: nn.Module, args: tuple, input_names, output_name: str, dynamic: bool, opset: int) -> bytes:
    buffer = io.BytesIO()
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {name: {0: "N"} for name in input_names if name != "truncation_psi"}
        dynamic_axes[output_name] = {0: "N"}
    try:
        with warnings.catch_warnings(), torch.enable_grad():
            # Tracing warns about every shape it reads as a number; the check below is what tells.
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, buffer, dynamo=False, input_names=list(input_names),
                              output_names=[output_name], dynamic_axes=dynamic_axes, opset_version=opset,
                              do_constant_folding=True)
    except Exception as error:   # the exporter raises many types; the user needs the one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OnnxExportError(f"torch's ONNX exporter failed: {message}")
    return buffer.getvalue()


def scan_over_batch(model_bytes: bytes, input_name: str, output_name: str) -> bytes:
    """A one-sample model (input [1, ...] -> output [1, ...]) as a model of any batch size: an ONNX Scan runs
    the one-sample graph on each row of the input and stacks the outputs. The weights stay in the outer graph
    (the loop body reads them from there), so the file is no larger."""
    onnx = _require_onnx()
    from onnx import TensorProto, helper

    single = onnx.load_from_string(model_bytes)
    graph = single.graph
    inner_input, inner_output = f"{input_name}_sample", f"{output_name}_sample"
    row_input, row_output, axis = f"{input_name}_row", f"{output_name}_row", "batch_axis"
    # Graph names must be unique across a graph and its loop body: the body's own copies get new names.
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == input_name:
                node.input[i] = inner_input
        for i, name in enumerate(node.output):
            if name == output_name:
                node.output[i] = inner_output

    def value_info(name, template, drop_batch):
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in template.type.tensor_type.shape.dim]
        if drop_batch:
            dims = dims[1:]
        else:
            dims = ["N"] + dims[1:]
        return helper.make_tensor_value_info(name, template.type.tensor_type.elem_type, dims)

    (single_input,) = [v for v in graph.input if v.name == input_name]
    (single_output,) = [v for v in graph.output if v.name == output_name]
    body_nodes = [helper.make_node("Constant", [], [axis], value=helper.make_tensor(axis, TensorProto.INT64, [1],
                                                                                     [0])),
                  helper.make_node("Unsqueeze", [row_input, axis], [inner_input]),
                  *graph.node,
                  helper.make_node("Squeeze", [inner_output, axis], [row_output])]
    body = helper.make_graph(body_nodes, "sample", [value_info(row_input, single_input, True)],
                             [value_info(row_output, single_output, True)])
    scan = helper.make_node("Scan", [input_name], [output_name], body=body, num_scan_inputs=1)
    outer = helper.make_graph([scan], graph.name or "synthesis", [value_info(input_name, single_input, False)],
                              [value_info(output_name, single_output, False)], initializer=list(graph.initializer))
    model = helper.make_model(outer, opset_imports=list(single.opset_import), producer_name=single.producer_name)
    model.ir_version = single.ir_version
    onnx.checker.check_model(model)
    return model.SerializeToString()


# -- checking and writing -------------------------------------------------------------------------------------------

def check_with_onnxruntime(model_bytes: bytes, feeds_and_expected) -> OnnxCheck | None:
    """Run the model on each (feeds, expected output); OnnxExportError when one is off by more than the
    tolerance. None when onnxruntime is not installed."""
    runtime = _onnxruntime()
    if runtime is None:
        return None
    options = runtime.SessionOptions()
    options.log_severity_level = 3      # errors only: its warnings about unused initializers are noise here
    try:
        session = runtime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise OnnxExportError(f"onnxruntime cannot load the exported graph: {str(error).splitlines()[0]}")
    worst, sizes = 0.0, []
    for feeds, expected in feeds_and_expected:
        (output,) = session.run(None, feeds)
        if output.shape != expected.shape:
            raise OnnxExportError(f"the exported graph gives shape {list(output.shape)}, the explorer "
                                  f"{list(expected.shape)}")
        worst = max(worst, float(np.max(np.abs(output - expected))))
        sizes.append(int(expected.shape[0]))
    if not worst <= CHECK_TOLERANCE:
        raise OnnxExportError(f"the exported graph differs from the explorer by {worst:.3g} (more than "
                              f"{CHECK_TOLERANCE:g}); nothing was written")
    return OnnxCheck(tuple(sizes), worst, CHECK_TOLERANCE)


def refuse_existing(path) -> Path:
    path = Path(path)
    if path.exists():
        raise OnnxExportError(f"{path} exists; not overwriting it")
    return path


def _write(path: Path, data: bytes) -> None:
    from .export.files import ExportError, write_file_at
    try:
        write_file_at(path, data)
    except ExportError as error:
        raise OnnxExportError(str(error))


def _mapping_inputs(G, batch: int, generator: torch.Generator):
    z = torch.randn([batch, G.z_dim], generator=generator)
    c = None
    if G.c_dim:
        c = torch.zeros([batch, G.c_dim])
        c[torch.arange(batch), torch.randint(G.c_dim, [batch], generator=generator)] = 1
    return z, c


def _sample_ws(G, batch: int, generator: torch.Generator) -> torch.Tensor:
    z, c = _mapping_inputs(G, batch, generator)
    with torch.no_grad():
        return G.mapping(z.to(_device(G)), None if c is None else c.to(_device(G))).float().cpu()


def _device(G) -> torch.device:
    return next(G.parameters()).device


def export_synthesis(G, path, check: bool = True) -> OnnxExport:
    """Write G's synthesis as ONNX to exactly `path` (refused when it exists); checked with onnxruntime."""
    path = refuse_existing(path)
    _require_onnx()
    opset = opset_for(G)
    options = BATCHED_SYNTHESIS_OPTIONS.get(getattr(G, "family", ""))
    batched = options is not None
    graph = SynthesisGraph(traceable_copy(G.synthesis), options or {})
    generator = torch.Generator().manual_seed(CHECK_SEED)
    example = _sample_ws(G, TRACE_BATCH_SIZE if batched else 1, generator)
    data = _trace_to_onnx(graph, (example,), ["ws"], "image", dynamic=batched, opset=opset)
    if not batched:
        data = scan_over_batch(data, "ws", "image")
    result = None
    if check:
        cases = []
        for batch in CHECK_BATCH_SIZES:
            ws = _sample_ws(G, batch, generator)
            with torch.no_grad():
                expected = G.synthesis(ws.to(_device(G)), noise_mode="const").image.float().cpu().numpy()
            cases.append(({"ws": ws.numpy()}, expected))
        result = check_with_onnxruntime(data, cases)
    _write(path, data)
    return OnnxExport(path, "synthesis", (f"ws [N, {G.num_ws}, {G.w_dim}]",),
                      f"image [N, {G.img_channels}, {G.img_shape[0]}, {G.img_shape[1]}]", batched, opset, result)


def export_mapping(G, path, check: bool = True) -> OnnxExport:
    """Write G's mapping (z [, c], truncation_psi -> ws) as ONNX to exactly `path`; checked with onnxruntime."""
    path = refuse_existing(path)
    _require_onnx()
    opset = opset_for(G)
    conditional = bool(G.c_dim)
    graph = MappingGraph(traceable_copy(G.mapping), conditional)
    names = ["z", "c", "truncation_psi"] if conditional else ["z", "truncation_psi"]
    generator = torch.Generator().manual_seed(CHECK_SEED)

    def arguments(batch, psi):
        z, c = _mapping_inputs(G, batch, generator)
        return (z, c, torch.tensor(psi)) if conditional else (z, torch.tensor(psi))

    data = _trace_to_onnx(graph, arguments(TRACE_BATCH_SIZE, EXAMPLE_PSI), names, "ws", dynamic=True, opset=opset)
    result = None
    if check:
        cases = []
        for batch, psi in zip(CHECK_BATCH_SIZES, (1.0, 0.5)):
            args = arguments(batch, psi)
            with torch.no_grad():
                expected = G.mapping(args[0].to(_device(G)), args[1].to(_device(G)) if conditional else None,
                                     truncation_psi=psi).float().cpu().numpy()
            cases.append(({name: value.numpy().astype(np.float32) for name, value in zip(names, args)}, expected))
        result = check_with_onnxruntime(data, cases)
    _write(path, data)
    inputs = [f"z [N, {G.z_dim}]"] + ([f"c [N, {G.c_dim}]"] if conditional else []) + ["truncation_psi []"]
    return OnnxExport(path, "mapping", tuple(inputs), f"ws [N, {G.num_ws}, {G.w_dim}]", True, opset, result)
