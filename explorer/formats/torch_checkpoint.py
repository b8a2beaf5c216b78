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
from .assemble import build_network
from .discriminators import read_discriminator, trainer_discriminator
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


def _nvlabs(record, path: Path, entry: str, discriminator_record=None) -> LoadedNetwork:
    if record.class_name != "Generator":
        raise NetworkLoadError(f"the {entry} in this checkpoint is a {quote(record.class_name)}, not a Generator")
    generator, family, code_base = nvlabs_pickle.build_from_record(record)
    detail, notes = f"{family} from the {code_base} code base, saved with torch.save, entry {entry}", []
    D = None
    if discriminator_record is not None:
        D = read_discriminator(lambda: nvlabs_pickle.nvlabs_discriminator(discriminator_record, code_base), notes)
        detail += ", with its discriminator D" if D is not None else ""
    return LoadedNetwork(generator, "nvlabs-pickle", str(path), detail, tuple(notes), discriminator=D)


# What this project's trainer saves (explorer.training.trainer.Trainer.state).
TRAINER_ENTRIES = ("options", "progress", "G_ema", "D")


def _trainer_generator_config(options: dict) -> tuple[str, dict]:
    """(family, generator settings) from a training checkpoint's options, as TrainingOptions.generator_kwargs
    makes them (tests/test_discriminator_loading.py holds the two together)."""
    family = options.get("family", "stylegan2")
    if family not in ("stylegan2", "stylegan"):
        raise NetworkLoadError(f"a training checkpoint of the family {quote(family)}, which the trainer does not "
                               f"train")
    top = dict(z_dim=options.get("z_dim"), c_dim=0, w_dim=options.get("w_dim"),
               img_resolution=options.get("resolution"), img_channels=3)
    channel_base, channel_max = options.get("channel_base"), options.get("channel_max")
    if not isinstance(channel_base, int) or isinstance(channel_base, bool):
        raise NetworkLoadError(f"the training checkpoint's channel_base {quote(channel_base)} is not a whole number")
    if family == "stylegan":
        return family, dict(top, mapping_kwargs=dict(num_layers=options.get("mapping_layers"),
                                                     layer_features=options.get("w_dim")),
                            fmap_base=channel_base // 2, fmap_max=channel_max)
    return family, dict(top, mapping_kwargs=dict(num_layers=options.get("mapping_layers")),
                        channel_base=channel_base, channel_max=channel_max, num_fp16_res=0,
                        conv_clamp=options.get("conv_clamp"), architecture="skip")


def _trainer_checkpoint(checkpoint: dict, path: Path) -> LoadedNetwork:
    options, state = checkpoint["options"], checkpoint["G_ema"]
    if not isinstance(options, dict) or not isinstance(state, dict):
        raise NetworkLoadError("the training checkpoint's options or G_ema are damaged")
    family, config = _trainer_generator_config(options)
    G = build_network(family, config, state, what="G_ema weights of this training checkpoint")
    notes: list[str] = []
    D = read_discriminator(lambda: trainer_discriminator(options, checkpoint["D"]), notes)
    progress = checkpoint.get("progress")
    seen = progress.get("nimg") if isinstance(progress, dict) else None
    detail = f"{family}, {config['img_resolution']} px, entry G_ema" + (f" after {seen:,} images"
                                                                        if isinstance(seen, int) else "")
    if D is not None:
        detail += ", with its discriminator D"
    return LoadedNetwork(G, "training-checkpoint", str(path), detail, tuple(notes), discriminator=D)


def load_torch_checkpoint(data: bytes, path: Path) -> LoadedNetwork:
    checkpoint = read_torch_checkpoint(data)
    if isinstance(checkpoint, nvlabs_pickle.PersistentRecord):
        return _nvlabs(checkpoint, path, "(the whole file)")
    if not isinstance(checkpoint, dict):
        raise NetworkLoadError(f"a PyTorch checkpoint holding a {type(checkpoint).__name__}, not a generator")
    if all(name in checkpoint for name in TRAINER_ENTRIES):
        return _trainer_checkpoint(checkpoint, path)
    if "g_ema" in checkpoint:
        return rosinality.rosinality_network(checkpoint, path)
    if any(name in checkpoint for name in GENFORCE_ENTRIES):
        return load_genforce(checkpoint, path)
    state = checkpoint.get("state_dict")
    if isinstance(state, dict) and any(isinstance(n, str) and n.startswith(DECODER_PREFIX) for n in state):
        return _psp_decoder(checkpoint, path)
    for entry in ("G_ema", "G"):
        if isinstance(checkpoint.get(entry), nvlabs_pickle.PersistentRecord):
            return _nvlabs(checkpoint[entry], path, entry, checkpoint.get("D"))
    keys = ", ".join(quote(k) for k in list(checkpoint)[:SHOWN_KEYS])
    raise NetworkLoadError(f"a PyTorch checkpoint, but not a rosinality one (g_ema), a genforce one "
                           f"(generator_smooth) or a pSp/e4e one (decoder); its entries: {keys or 'none'}")
