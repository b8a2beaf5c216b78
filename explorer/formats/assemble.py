"""A generator from checked settings and the tensors a file holds, sized by the file before it is allocated.

The settings are checked (configs), and the size they give the network (a lower bound of its parameters and
buffers, computed from the settings alone) must not exceed what the file holds: settings that declare a network
far larger than the file's data are refused before anything is allocated. The network is then built, and its
parameters and buffers are compared name by name and shape by shape with the file's tensors.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from ..networks import build_generator
from . import limits
from .configs import check_config, minimum_elements
from .errors import NetworkLoadError
from .pickle_machine import check_cancelled

SHOWN_NAMES = 3   # how many missing / unexpected / mismatched names a message lists
# Values a network may have beyond what its file lists (filters and averages a format leaves out).
UNLISTED_ELEMENTS = 1 << 16


def _nothing_optional(name: str) -> bool:
    return False


def fit_report(expected: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor],
               optional: Callable[[str], bool]) -> list[str]:
    """What keeps `tensors` from filling a network whose state dict is `expected`, in words."""
    missing = [name for name in expected if name not in tensors and not optional(name)]
    unexpected = [name for name in tensors if name not in expected]
    mismatched = [f"size mismatch for {name}: the file has {list(tensors[name].shape)}, the network needs "
                  f"{list(expected[name].shape)}" for name in expected
                  if name in tensors and tuple(tensors[name].shape) != tuple(expected[name].shape)]
    problems = [f"missing {name}" for name in missing[:SHOWN_NAMES]]
    problems += [f"unexpected {name}" for name in unexpected[:SHOWN_NAMES]]
    return problems + mismatched[:SHOWN_NAMES]


def check_finite(tensors: Mapping[str, torch.Tensor]) -> None:
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.numel():
            low, high = torch.aminmax(tensor)   # one pass; NaN propagates into both
            if not (bool(torch.isfinite(low)) and bool(torch.isfinite(high))):
                raise NetworkLoadError(f"the weights hold NaN or infinite values (first in {name})")


def build_network(family: str, config, tensors: Mapping[str, torch.Tensor], what: str = "weights",
                  optional: Callable[[str], bool] = _nothing_optional) -> torch.nn.Module:
    """A `family` generator with `config`, filled with `tensors` (state-dict names).

    optional(name): parameters or buffers the file may lack (the constructor's values are kept)."""
    config = check_config(family, config)
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise NetworkLoadError(f"the file is damaged: {name} is not a tensor")
    needed, held = minimum_elements(family, config), sum(t.numel() for t in tensors.values())
    if needed > limits.MAX_PARAMETERS or needed > held + UNLISTED_ELEMENTS:
        raise NetworkLoadError(f"the {what} do not fit the network their settings describe: it needs at least "
                               f"{needed:,} values and the file holds {held:,} (nothing was allocated)")
    check_finite(tensors)
    check_cancelled()
    try:
        generator = build_generator(family, config)
    except MemoryError:
        raise NetworkLoadError("not enough memory to build this network") from None
    except Exception as error:   # a combination of settings the constructor refuses
        raise NetworkLoadError(f"the {family} settings describe no network this explorer can build "
                               f"({type(error).__name__}: {error})") from None
    problems = fit_report(generator.state_dict(), tensors, optional)
    if problems:
        raise NetworkLoadError(f"the {what} do not fit the network their settings describe: " + "; ".join(problems))
    try:
        generator.load_state_dict(dict(tensors), strict=False)
    except Exception as error:
        raise NetworkLoadError(f"the {what} could not be loaded ({type(error).__name__}: {error})") from None
    return generator.eval().requires_grad_(False)
