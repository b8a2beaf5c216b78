"""Generator families. Each module defines `Generator` with the interface described in common.py."""
from __future__ import annotations

import importlib

from torch import nn

FAMILIES = {
    "stylegan": "explorer.networks.stylegan1",
    "stylegan2": "explorer.networks.stylegan2",
    "stylegan3": "explorer.networks.stylegan3",
}


def generator_class(family: str) -> type[nn.Module]:
    if family not in FAMILIES:
        raise ValueError(f"unknown generator family {family!r}; known: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[family]).Generator


def build_generator(family: str, config: dict) -> nn.Module:
    """A generator of `family` from its constructor arguments (what `G.config` holds)."""
    config = dict(config)
    return generator_class(family)(**config)
