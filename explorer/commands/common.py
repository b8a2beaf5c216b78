"""What the headless commands share: the one-line user error, seeds, devices, opening a network (the shipped
default model when no --pkl is given) and the latent options that `render`, `droplets` and others take."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..assets import DEFAULT_MODEL
from ..controls import NOISE_MODES
from ..latents import SEED_LIMIT

EXIT_ERROR = 1
EXIT_USAGE = 2


class UserError(Exception):
    """An error with a message for the user; the command prints it on one line and exits with EXIT_ERROR."""


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]; seeds are whole numbers from 0 to 2**32 - 1."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("-"):
            raise UserError(f"--seeds: seeds are non-negative whole numbers, not {part!r}")
        try:
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if high < low:
                    raise UserError(f"--seeds: the range {part!r} runs backwards; write it low-high")
                if high - low >= MAX_SEEDS:
                    raise UserError(f"--seeds: {part!r} holds more than {MAX_SEEDS:,} seeds")
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise UserError(f"--seeds: cannot read {text!r}; expected a list like 0-3,7")
    if not seeds:
        raise UserError("--seeds: no seeds given")
    for seed in seeds:
        if not 0 <= seed < SEED_LIMIT:
            raise UserError(f"--seeds: seed {seed} is out of range (0 to 2**32 - 1)")
    return seeds


MAX_SEEDS = 1_000_000     # a typo like 0-4000000000 would otherwise try to build a list of 4e9 seeds


def pick_device(name: str | None):
    import torch
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device: unknown device {name!r}")


def network_path(pkl: str | None) -> str:
    """The file to open: --pkl, or the shipped default model."""
    return str(pkl) if pkl else str(DEFAULT_MODEL)


def open_network(pkl: str | None, device=None):
    """explorer.formats.LoadedNetwork of --pkl (the default model when None); UserError with one line on failure."""
    from ..formats import NetworkLoadError, load_network
    path = network_path(pkl)
    try:
        return load_network(path, device=device or "cpu")
    except NetworkLoadError as error:
        raise UserError(f"{path}: {error}")


def set_threads(requested: int | None) -> None:
    """Torch CPU threads: --threads when given; otherwise torch's default (OMP_NUM_THREADS when set)."""
    if requested is None:
        return
    if requested < 1:
        raise UserError("--threads must be at least 1")
    import torch
    torch.set_num_threads(requested)


def add_network_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pkl", default=None, help="network file (default: the model shipped in assets/)")


def finite(name: str, value: float | None) -> float | None:
    """A float option that must be a finite number (argparse reads 'nan' and '1e999' as floats)."""
    if value is not None and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, not {value}")
    return value


def output_folder(path: str) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {folder}: {error.strerror or error}")
    return folder


# -- the latent options, checked by the session state ------------------------------------------------------------

def add_latent_arguments(parser: argparse.ArgumentParser, seeds_default: str | None = "0") -> None:
    """--state, --seeds, --trunc, --trunc-cutoff, --noise-mode, --class: what decides the latent.
    Every value is checked as the window's session state checks it, with the same messages."""
    parser.add_argument("--state", help="start from a session file (JSON, or a screenshot PNG that carries one)")
    parser.add_argument("--seeds", default=seeds_default,
                        help="seeds, e.g. 0-3,7" + (f" (default {seeds_default}; with --state: the session's "
                                                    f"latent)" if seeds_default else ""))
    parser.add_argument("--trunc", type=float, default=None,
                        help="truncation psi, -1 to 2 (default: the session's, else 1)")
    parser.add_argument("--trunc-cutoff", type=int, default=None,
                        help="truncate only the first N ws (default: all; 8 for StyleGAN 2019 networks)")
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default=None,
                        help="const (the network's stored noise), random (drawn from the image's seed) or none")
    parser.add_argument("--class", dest="class_index", type=int, default=None,
                        help="class of a conditional network (default: drawn from each seed)")


def session_for(args, G):
    """The explorer.state.Session that the options describe, checked against network G: --state first, then each
    flag given, each through the state's own checks (UserError with the state's message)."""
    from ..export import ExportError, read_state_file
    from ..state import NetworkFacts, Session, StateError
    facts = NetworkFacts.from_generator(G)
    try:
        session = Session(facts=facts)
        session.set_facts(facts)           # family defaults (StyleGAN 2019: cutoff 8)
        if getattr(args, "state", None):
            try:
                text = read_state_file(args.state)
            except ExportError as error:
                raise UserError(f"--state: {error}")
            session.load_json(text, keep_network=True)
        if getattr(args, "trunc", None) is not None:
            session.truncation.psi = args.trunc
        if getattr(args, "trunc_cutoff", None) is not None:
            session.truncation.cutoff = args.trunc_cutoff
        if getattr(args, "noise_mode", None) is not None:
            session.noise.mode = args.noise_mode
        if getattr(args, "class_index", None) is not None:
            session.latent.class_index = args.class_index
    except StateError as error:
        raise UserError(str(error))
    return session


def requests_for(args, session, network_key: str, device) -> list[tuple[int | None, object]]:
    """[(seed or None, RenderRequest)]: one request per --seed (the session's latent when --seeds is not given
    and a --state is), on `device` in --precision. Seeds given replace the session's latent, a W+ included."""
    import dataclasses
    base = dataclasses.replace(session.render_request(network_key), device=str(device),
                               dtype=precision_for(args, device))
    seeds_text = getattr(args, "seeds", None)
    if seeds_text is None:
        if not getattr(args, "state", None):
            raise UserError("--seeds: no seeds given")
        return [(None, base)]
    requests = []
    for seed in parse_seeds(seeds_text):
        # As NVlabs' gen_images.py: random noise is drawn from the image's own seed.
        noise_seed = seed if base.noise_mode == "random" and not args.state else base.noise_seed
        requests.append((seed, dataclasses.replace(base, seed_weights=((seed, 1.0),), main_w_plus=None,
                                                   noise_seed=noise_seed)))
    return requests


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    from ..controls import DTYPES
    parser.add_argument("--precision", choices=DTYPES, default="float32",
                        help="float32 (exact, the default), bfloat16 (a fast preview on CPUs with bfloat16 units) "
                             "or float16 (CUDA)")


def precision_for(args, device) -> str:
    """--precision, refused by name where the device cannot run it."""
    from ..render import bfloat16_supported
    precision = getattr(args, "precision", "float32")
    if precision == "float16" and device.type != "cuda":
        raise UserError(f"--precision float16 runs on CUDA only, not on {device}")
    if precision == "bfloat16" and not bfloat16_supported(str(device)):
        raise UserError(f"--precision bfloat16: {device} here has no bfloat16 units (use float32)")
    return precision


def w_range(text: str | None, num_ws: int) -> tuple[int, int | None]:
    """--w-range FIRST-LAST (inclusive) as [start, stop); (0, None) for all ws."""
    if not text:
        return 0, None
    try:
        first, last = (int(v) for v in text.split("-", 1))
    except ValueError:
        raise UserError(f"--w-range: expected FIRST-LAST such as 0-5, not {text!r}")
    if not 0 <= first <= last < num_ws:
        raise UserError(f"--w-range {text}: w indices are 0 to {num_ws - 1}")
    return first, last + 1
