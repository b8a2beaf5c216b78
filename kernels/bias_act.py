"""Bias, activation, gain and clamp in one call, in that order: y = clamp(act(x + b) * gain, -clamp, clamp).

`bias_act_reference` spells the formula out; `bias_act` uses torch's fused activation kernels and works in
place when no gradient is needed (the explorer's render path), which saves a full-size temporary per step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    name: str
    default_alpha: float   # slope of the negative part for lrelu; unused otherwise
    default_gain: float    # keeps the output's second moment near the input's under He initialisation


ACTIVATIONS = {
    "linear": Activation("linear", 0.0, 1.0),
    "relu": Activation("relu", 0.0, math.sqrt(2)),
    "lrelu": Activation("lrelu", 0.2, math.sqrt(2)),
    "tanh": Activation("tanh", 0.0, 1.0),
    "sigmoid": Activation("sigmoid", 0.0, 1.0),
}


def default_gain(act: str) -> float:
    return ACTIVATIONS[act].default_gain


def _resolve(act, alpha, gain, clamp):
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = spec.default_alpha if alpha is None else float(alpha)
    gain = spec.default_gain if gain is None else float(gain)
    clamp = -1 if clamp is None else float(clamp)
    return alpha, gain, clamp


def _add_bias(x, b, dim):
    if b is None:
        return x
    assert b.ndim == 1 and b.shape[0] == x.shape[dim]
    return x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]).to(x.dtype)


def bias_act_reference(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                       alpha: float | None = None, gain: float | None = None,
                       clamp: float | None = None) -> torch.Tensor:
    """The formula, step by step."""
    alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    x = _add_bias(x, b, dim)
    if act == "relu":
        x = torch.where(x >= 0, x, torch.zeros_like(x))
    elif act == "lrelu":
        x = torch.where(x >= 0, x, x * alpha)
    elif act == "tanh":
        x = torch.tanh(x)
    elif act == "sigmoid":
        x = torch.sigmoid(x)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Same numbers as `bias_act_reference`, with fused kernels and in-place steps where autograd allows."""
    alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    grad_needed = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    owned = b is not None  # after the bias add, x is our own temporary and may be changed in place
    x = _add_bias(x, b, dim)
    in_place = owned and not grad_needed
    if act == "relu":
        x = F.relu(x, inplace=in_place)
    elif act == "lrelu":
        x = F.leaky_relu(x, alpha, inplace=in_place)
    elif act == "tanh":
        x = torch.tanh(x)
    elif act == "sigmoid":
        x = torch.sigmoid(x)
    in_place = (owned or act != "linear") and not grad_needed
    if gain != 1:
        x = x.mul_(gain) if in_place else x * gain
        in_place = not grad_needed
    if clamp >= 0:
        x = x.clamp_(-clamp, clamp) if in_place else x.clamp(-clamp, clamp)
    return x
