"""Files torch.save wrote (.pt, .pth; zip or legacy layout), read without torch.load, and told apart by what
they hold: rosinality checkpoints (g_ema), genforce checkpoints (generator_smooth), pSp / e4e checkpoints (their
StyleGAN2 decoder is a rosinality generator) and NVlabs generators saved whole with torch.save (PTI's tuned
generators), whose persistent records are read as in NVlabs pickles.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import nvlabs_pickle, rosinality
from .errors import NetworkLoadError, quote
from .genforce import ENTRIES as GENFORCE_ENTRIES
from .genforce import load_genforce
from .loaded import LoadedNetwork
from .torch_legacy import is_legacy_torch, load_legacy_torch
from .torch_zip import load_torch_zip

ZIP_MAGIC = b"PK\x03\x04"
ALLOWED_GLOBALS = {**rosinality.ALLOWED_GLOBALS, nvlabs_pickle.PERSISTENT_GLOBAL: nvlabs_pickle._record_persistent}
# pSp and e4e keep the networks under these prefixes of one state dict.
DECODER_PREFIX = "decoder."
SHOWN_KEYS = 8


def is_torch_save(head: bytes) -> bool:
    return head[:4] == ZIP_MAGIC or is_legacy_torch(head)


def read_torch_checkpoint(data: bytes) -> Any:
    if is_legacy_torch(data):
        return load_legacy_torch(data, ALLOWED_GLOBALS)
    return load_torch_zip(data, ALLOWED_GLOBALS)


def _single_latent(value):
    """pSp keeps latent_avg as [w_dim] or repeated per layer [num_ws, w_dim]; one w either way."""
    if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[0] > 0:
        if not bool((value == value[:1]).all()):
            raise NetworkLoadError("the checkpoint's latent_avg differs per layer; one w_avg is needed")
        return value[0]
    return value


def _psp_decoder(checkpoint: dict, path: Path) -> LoadedNetwork:
    state = checkpoint["state_dict"]
    decoder = {name[len(DECODER_PREFIX):]: value for name, value in state.items()
               if isinstance(name, str) and name.startswith(DECODER_PREFIX)}
    inner = {"g_ema": decoder}
    if checkpoint.get("latent_avg") is not None:
        inner["latent_avg"] = _single_latent(checkpoint["latent_avg"])
    return rosinality.rosinality_network(inner, path, layout="pSp/e4e checkpoint (its decoder; the encoder is not "
                                                             "used)", entry="state_dict decoder")


def _nvlabs(record, path: Path, entry: str) -> LoadedNetwork:
    if record.class_name != "Generator":
        raise NetworkLoadError(f"the {entry} in this checkpoint is a {quote(record.class_name)}, not a Generator")
    generator, family, code_base = nvlabs_pickle.build_from_record(record)
    return LoadedNetwork(generator, "nvlabs-pickle", str(path),
                         f"{family} from the {code_base} code base, saved with torch.save, entry {entry}")


def load_torch_checkpoint(data: bytes, path: Path) -> LoadedNetwork:
    checkpoint = read_torch_checkpoint(data)
    if isinstance(checkpoint, nvlabs_pickle.PersistentRecord):
        return _nvlabs(checkpoint, path, "(the whole file)")
    if not isinstance(checkpoint, dict):
        raise NetworkLoadError(f"a PyTorch checkpoint holding a {type(checkpoint).__name__}, not a generator")
    if "g_ema" in checkpoint:
        return rosinality.rosinality_network(checkpoint, path)
    if any(name in checkpoint for name in GENFORCE_ENTRIES):
        return load_genforce(checkpoint, path)
    state = checkpoint.get("state_dict")
    if isinstance(state, dict) and any(isinstance(n, str) and n.startswith(DECODER_PREFIX) for n in state):
        return _psp_decoder(checkpoint, path)
    for entry in ("G_ema", "G"):
        if isinstance(checkpoint.get(entry), nvlabs_pickle.PersistentRecord):
            return _nvlabs(checkpoint[entry], path, entry)
    keys = ", ".join(quote(k) for k in list(checkpoint)[:SHOWN_KEYS])
    raise NetworkLoadError(f"a PyTorch checkpoint, but not a rosinality one (g_ema), a genforce one "
                           f"(generator_smooth) or a pSp/e4e one (decoder); its entries: {keys or 'none'}")
