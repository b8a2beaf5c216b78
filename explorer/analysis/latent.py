"""The ws of a seed, as the renderer makes them: z (and a class) from the seed, the mapping, then truncation
toward w_avg over the first `cutoff` w indices. The analyses take ws from here so that their seeds name the same
images as the viewer's."""
from __future__ import annotations

import torch

from ..latents import z_and_class_from_seed
from ..networks.common import truncate


def seed_ws(G, seed: int, psi: float = 1.0, cutoff: int | None = None, class_index: int | None = None,
            device=None) -> torch.Tensor:
    """[1, num_ws, w_dim] for one seed; class_index None draws a conditional network's class from the seed."""
    device = device or G.mapping.w_avg.device
    z, drawn_class = z_and_class_from_seed(seed, G.z_dim, G.c_dim)
    c = None
    if G.c_dim:
        c = torch.zeros([1, G.c_dim])
        c[0, drawn_class if class_index is None else class_index] = 1
        c = c.to(device)
    with torch.no_grad():
        ws = G.mapping(z.to(device), c, truncation_psi=1)
        if psi != 1:
            ws = truncate(ws, G.mapping.w_avg, psi, cutoff)
    return ws


def layer_module(G, name: str) -> torch.nn.Module:
    """The module of a named synthesis layer: 'b64.conv0' -> G.synthesis.b64.conv0, 'L3_52_1024' -> G.synthesis
    .L3_52_1024 (every family names its layers by their attribute path)."""
    module = G.synthesis
    for part in name.split("."):
        module = getattr(module, part)
    return module
