"""A generator from checked settings and the tensors a file holds, sized by the file before it is allocated.

The settings are checked (configs), then the network is built on the meta device, which allocates nothing, and
its parameters and buffers are compared name by name and shape by shape with the file's tensors. Only a network
that the file's data fills is then built for real, so what gets allocated is what the file holds.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from ..networks import build_generator
from . import limits
from .configs import check_config
from .errors import NetworkLoadError

SHOWN_NAMES = 3   # how many missing / unexpected / mismatched names a message lists


def _nothing_optional(name: str) -> bool:
    return False


def _skeleton(family: str, config: dict) -> torch.nn.Module:
    try:
        with torch.device("meta"):
            return build_generator(family, config)
    except NetworkLoadError:
        raise
    except Exception as error:   # a combination of settings the constructor refuses
        raise NetworkLoadError(f"the {family} settings describe no network this explorer can build "
                               f"({type(error).__name__}: {error})") from None


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
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NetworkLoadError(f"the weights hold NaN or infinite values (first in {name})")


def build_network(family: str, config, tensors: Mapping[str, torch.Tensor], what: str = "weights",
                  optional: Callable[[str], bool] = _nothing_optional) -> torch.nn.Module:
    """A `family` generator with `config`, filled with `tensors` (state-dict names).

    optional(name): parameters or buffers the file may lack (the constructor's values are kept)."""
    config = check_config(family, config)
    skeleton = _skeleton(family, config)
    expected = skeleton.state_dict()
    total = sum(t.numel() for t in expected.values())
    if total > limits.MAX_PARAMETERS:
        raise NetworkLoadError(f"refused to load: the settings describe {total:,} parameters, more than any "
                               f"StyleGAN-family network")
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise NetworkLoadError(f"the file is damaged: {name} is not a tensor")
    problems = fit_report(expected, tensors, optional)
    if problems:
        raise NetworkLoadError(f"the {what} do not fit the network their settings describe: " + "; ".join(problems))
    check_finite(tensors)
    try:
        generator = build_generator(family, config)
        generator.load_state_dict(dict(tensors), strict=False)
    except MemoryError:
        raise NetworkLoadError("not enough memory to build this network") from None
    except Exception as error:
        raise NetworkLoadError(f"the {family} network could not be built from this file ({type(error).__name__}: "
                               f"{error})") from None
    return generator.eval().requires_grad_(False)
