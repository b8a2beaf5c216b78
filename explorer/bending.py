"""Network bending (Broad, Leymarie and Grierson 2021): operations on the feature maps of chosen channels of a
layer, applied while the generator runs, so every later layer sees the bent maps.

    LayerOperation("b16.conv1", "rotate", channels=(3, 7), amount=45.0)

Each operation is a plain function of a map batch [N, C, H, W]; the chosen channels are bent, the others pass
unchanged. Channel ablation, the droplet detector's check, is the operation 'ablate' (or 'multiply' by a factor).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LayerOperation:
    """One bending step: `operation` on `channels` of `layer` (empty: every channel), with one amount whose
    meaning OPERATIONS gives."""
    layer: str
    operation: str
    channels: tuple[int, ...] = ()
    amount: float = 1.0


@dataclass(frozen=True)
class OperationKind:
    name: str
    amount: str                 # what the amount means, for the panel and the OSC table
    low: float                  # the amount's range
    high: float
    default: float


OPERATION_KINDS = (
    OperationKind("ablate", "ignored: the channels become 0", 0.0, 1.0, 1.0),
    OperationKind("multiply", "factor", -10.0, 10.0, 2.0),
    OperationKind("invert", "ignored: x becomes -x", 0.0, 1.0, 1.0),
    OperationKind("translate_x", "shift in map widths (the map moves right)", -1.0, 1.0, 0.25),
    OperationKind("translate_y", "shift in map heights (the map moves down)", -1.0, 1.0, 0.25),
    OperationKind("rotate", "degrees, counter-clockwise about the centre", -360.0, 360.0, 45.0),
    OperationKind("scale", "zoom factor about the centre", 0.1, 10.0, 1.5),
    OperationKind("flip_x", "ignored: mirrored left to right", 0.0, 1.0, 1.0),
    OperationKind("flip_y", "ignored: mirrored top to bottom", 0.0, 1.0, 1.0),
    OperationKind("erode", "radius in pixels (minimum over a square)", 1.0, 16.0, 1.0),
    OperationKind("dilate", "radius in pixels (maximum over a square)", 1.0, 16.0, 1.0),
)
OPERATIONS = {kind.name: kind for kind in OPERATION_KINDS}


def _affine(maps: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """maps sampled at matrix @ (x, y, 1) in normalised coordinates (-1..1, pixel centres), bilinear, zeros
    outside the map."""
    grid = F.affine_grid(matrix[None].expand(maps.shape[0], 2, 3).to(maps), list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _shift(maps: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Moves the maps by (dx, dy) map sizes, zeros coming in; whole pixels move exactly."""
    matrix = torch.tensor([[1.0, 0.0, -2.0 * dx], [0.0, 1.0, -2.0 * dy]], dtype=torch.float64)
    return _affine(maps, matrix)


def _rotate(maps: torch.Tensor, degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    height, width = maps.shape[-2:]
    aspect = width / height
    # In normalised coordinates a square map's pixels are square; otherwise the x axis is scaled by the aspect.
    # The grid says where each output pixel reads from: the inverse rotation. With y pointing down the screen,
    # this turns the content counter-clockwise as the viewer shows it.
    matrix = torch.tensor([[math.cos(angle), -math.sin(angle) / aspect, 0.0],
                           [math.sin(angle) * aspect, math.cos(angle), 0.0]], dtype=torch.float64)
    return _affine(maps, matrix)


def _scale(maps: torch.Tensor, factor: float) -> torch.Tensor:
    matrix = torch.tensor([[1.0 / factor, 0.0, 0.0], [0.0, 1.0 / factor, 0.0]], dtype=torch.float64)
    return _affine(maps, matrix)


def _pool(maps: torch.Tensor, radius: float, largest: bool) -> torch.Tensor:
    size = 2 * int(round(radius)) + 1
    pooled = F.max_pool2d(maps if largest else -maps, size, stride=1, padding=size // 2)
    return pooled if largest else -pooled


def bend(maps: torch.Tensor, operation: str, amount: float) -> torch.Tensor:
    """One operation on maps [N, C, H, W] (every channel given)."""
    if operation == "ablate":
        return torch.zeros_like(maps)
    if operation == "multiply":
        return maps * amount
    if operation == "invert":
        return -maps
    if operation == "translate_x":
        return _shift(maps, amount, 0.0)
    if operation == "translate_y":
        return _shift(maps, 0.0, amount)
    if operation == "rotate":
        return _rotate(maps, amount)
    if operation == "scale":
        return _scale(maps, amount)
    if operation == "flip_x":
        return maps.flip(-1)
    if operation == "flip_y":
        return maps.flip(-2)
    if operation == "erode":
        return _pool(maps, amount, largest=False)
    if operation == "dilate":
        return _pool(maps, amount, largest=True)
    raise ValueError(f"unknown bending operation {operation!r}; operations: {', '.join(OPERATIONS)}")


def apply_operation(x: torch.Tensor, op: LayerOperation) -> torch.Tensor:
    """x [N, C, H, W] with op applied to its channels (a new tensor; x is left as it is)."""
    channels = x.shape[1]
    for channel in op.channels:
        if not 0 <= channel < channels:
            raise ValueError(f"{op.layer} has {channels} channels; channel {channel} is out of range")
    compute = x.float()
    if not op.channels:
        return bend(compute, op.operation, op.amount).to(x.dtype)
    index = torch.tensor(op.channels, device=x.device)
    out = compute.clone()
    out[:, index] = bend(compute[:, index], op.operation, op.amount)
    return out.to(x.dtype)


def layer_edits(operations) -> dict:
    """{layer name: callable(tensor) -> tensor} running each layer's operations in order: the synthesis
    networks' `layer_edits` keyword."""
    by_layer: dict[str, list[LayerOperation]] = {}
    for op in operations:
        by_layer.setdefault(op.layer, []).append(op)

    def edit_for(ops):
        def edit(x):
            for op in ops:
                x = apply_operation(x, op)
            return x
        return edit
    return {layer: edit_for(ops) for layer, ops in by_layer.items()}


def top_droplet_ablations(report, count: int) -> tuple[LayerOperation, ...]:
    """"Ablate the top droplet channels": the first `count` findings of a droplet report (ranked best first),
    zeroed, one operation a layer (in the report's order of first appearance)."""
    chosen: dict[str, list[int]] = {}
    for finding in report.findings[:count]:
        chosen.setdefault(finding.layer, []).append(finding.channel)
    return tuple(LayerOperation(layer, "ablate", tuple(sorted(channels)), 1.0) for layer, channels in chosen.items())


def shared_spot_ablations(report) -> tuple[LayerOperation, ...]:
    """"Ablate the droplet's channels": in each layer of a droplet report that has a droplet on at least one seed
    (SHARED_SPOT_SHARE of its channels spiking at one spot), the channels counted at its widest spot, zeroed. The
    top channel findings need not be those channels: a droplet is a spot shared by many channels, each of which
    may spike less than a lone channel elsewhere."""
    return tuple(LayerOperation(layer.layer, "ablate", tuple(sorted(layer.spot_channels)), 1.0)
                 for layer in report.layers if layer.seeds > 0)
