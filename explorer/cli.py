"""The `stylegan-explorer` command.

    stylegan-explorer [--pkl FILE] [--state FILE] [--screenshot OUT.png --quit]   opens the explorer
    stylegan-explorer render --pkl FILE --seeds 0-3 --outdir DIR ...             writes images headlessly
    stylegan-explorer info --pkl FILE [--json]                                    describes a network
    stylegan-explorer convert --pkl FILE --out OUT.safetensors                    converts to our own format
    stylegan-explorer video --pkl FILE --seeds 0,5,9 --out walk.mp4 ...          renders a latent walk

Errors the user can act on (a missing or damaged file, a bad value) print one line and exit with code 1;
no traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

EXIT_USAGE = 2
EXIT_ERROR = 1
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.safetensors"


class UserError(Exception):
    """An error with a message for the user; main() prints it on one line."""


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if high < low:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"--seeds: cannot read {text!r}; expected a list like 0-3,7")
    if not seeds:
        raise UserError("--seeds: no seeds given")
    for seed in seeds:
        if not 0 <= seed < 2 ** 32:
            raise UserError(f"--seeds: seed {seed} is out of range (0 to 2**32 - 1)")
    return seeds


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


def load(path: str, device=None):
    from .formats import NetworkLoadError, load_network
    try:
        return load_network(path, device=device or "cpu")
    except NetworkLoadError as error:
        raise UserError(f"{path}: {error}")


@dataclass(frozen=True)
class LayerDescription:
    name: str
    kind: str
    shape: tuple[int, int, int]
    w_index: int | None


@dataclass(frozen=True)
class NetworkDescription:
    path: str
    format: str
    detail: str
    family: str
    architecture: str
    resolution: int
    img_channels: int
    z_dim: int
    w_dim: int
    num_ws: int
    c_dim: int
    parameters: int
    w_avg_estimated: bool
    notes: tuple[str, ...]
    layers: tuple[LayerDescription, ...]


def describe(loaded) -> NetworkDescription:
    G = loaded.generator
    layers = tuple(LayerDescription(l.name, l.kind, (l.channels, l.height, l.width), l.w_index)
                   for l in G.synthesis.layers)
    return NetworkDescription(
        path=loaded.path, format=loaded.format_label, detail=loaded.detail, family=G.family,
        architecture=getattr(G, "architecture", G.family), resolution=G.img_resolution,
        img_channels=G.img_channels, z_dim=G.z_dim, w_dim=G.w_dim, num_ws=G.num_ws, c_dim=G.c_dim,
        parameters=sum(p.numel() for p in G.parameters()), w_avg_estimated=loaded.w_avg_estimated,
        notes=tuple(loaded.notes), layers=layers)


def format_description(d: NetworkDescription) -> str:
    lines = [
        f"file          {d.path}",
        f"format        {d.format}" + (f" ({d.detail})" if d.detail else ""),
        f"network       {d.family}, architecture {d.architecture}",
        f"resolution    {d.resolution}x{d.resolution}, {d.img_channels} channels",
        f"latents       z_dim {d.z_dim}, w_dim {d.w_dim}, num_ws {d.num_ws}",
        f"classes       {d.c_dim if d.c_dim else 'none (unconditional)'}",
        f"parameters    {d.parameters:,}",
        f"w_avg         {'estimated from 10,000 random z (the file has none)' if d.w_avg_estimated else 'stored'}",
    ]
    lines += [f"note          {note}" for note in d.notes]
    lines.append("layers")
    width = max(len(l.name) for l in d.layers)
    for l in d.layers:
        w = f"w[{l.w_index}]" if l.w_index is not None else ""
        lines.append(f"  {l.name:<{width}}  {l.kind:<6} {l.shape[0]:>5} x {l.shape[1]:>4} x {l.shape[2]:<4} {w}")
    return "\n".join(lines)


def command_info(args) -> int:
    d = describe(load(args.pkl))
    print(json.dumps(asdict(d), indent=2) if args.json else format_description(d))
    return 0


def class_vector(G, class_index, device):
    import torch
    if G.c_dim == 0:
        if class_index is not None:
            raise UserError("--class: this network is unconditional")
        return None
    if class_index is None:
        raise UserError(f"this network is conditional: choose a class with --class (0 to {G.c_dim - 1})")
    if not 0 <= class_index < G.c_dim:
        raise UserError(f"--class {class_index} is out of range (0 to {G.c_dim - 1})")
    c = torch.zeros([1, G.c_dim], device=device)
    c[0, class_index] = 1
    return c


def to_uint8_image(image):
    """[1, C, H, W] raw output -> HWC uint8, the conversion NVlabs' gen_images.py uses."""
    import torch
    pixels = (image[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def check_free(paths, overwrite):
    if overwrite:
        return
    taken = [str(p) for p in paths if p.exists()]
    if taken:
        raise UserError(f"not overwriting {taken[0]}" + (f" and {len(taken) - 1} more" if len(taken) > 1 else "")
                        + "; choose another --outdir or pass --overwrite")


def command_render(args) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from .latents import z_from_seed

    seeds = parse_seeds(args.seeds)
    device = pick_device(args.device)
    loaded = load(args.pkl, device)
    G = loaded.generator
    if args.trunc_cutoff is not None and not 0 <= args.trunc_cutoff <= G.num_ws:
        raise UserError(f"--trunc-cutoff {args.trunc_cutoff} is out of range (0 to {G.num_ws})")
    c = class_vector(G, args.class_index, device)
    # StyleGAN (2019) truncates only the first 8 ws unless told otherwise, as the original does.
    cutoff = args.trunc_cutoff if args.trunc_cutoff is not None else getattr(G, "default_truncation_cutoff", None)
    outdir = Path(args.outdir)
    outputs = []
    for seed in seeds:
        outputs.append(outdir / f"seed{seed:04d}.png")
        if args.npy:
            outputs.append(outdir / f"seed{seed:04d}.npy")
        if args.dump_layers:
            outputs.append(outdir / f"seed{seed:04d}_layers.npz")
    check_free(outputs, args.overwrite)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {outdir}: {error.strerror or error}")
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    with torch.no_grad():
        for seed in seeds:
            z = torch.as_tensor(z_from_seed(seed, G.z_dim), dtype=torch.float32).reshape(1, -1).to(device)
            ws = G.mapping(z, c, truncation_psi=args.trunc, truncation_cutoff=cutoff)
            out = G.synthesis(ws, noise_mode=args.noise_mode, noise_seed=seed if args.noise_mode == "random"
                              else None, capture="all" if args.dump_layers else ())
            base = outdir / f"seed{seed:04d}"
            try:
                Image.fromarray(to_uint8_image(out.image)).save(f"{base}.png")
                if args.npy:
                    np.save(f"{base}.npy", out.image.float().cpu().numpy())
                if args.dump_layers:
                    np.savez(f"{base}_layers.npz",
                             **{name: t.float().cpu().numpy() for name, t in out.activations.items()})
            except OSError as error:
                raise UserError(f"cannot write {base}.*: {error.strerror or error}")
            print(f"seed {seed}: {base}.png")
    return 0


def command_convert(args) -> int:
    from .formats.native import save_network
    loaded = load(args.pkl)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UserError(f"not overwriting {out}; choose another --out or pass --overwrite")
    extra = {"source": f"{loaded.format_label}: {Path(loaded.path).name}" + (f" ({loaded.detail})" if loaded.detail
                                                                             else ""),
             "notes": loaded.notes, "w_avg_estimated": loaded.w_avg_estimated}
    try:
        save_network(loaded.generator, out, extra=extra, overwrite=args.overwrite)
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}")
    print(f"wrote {out}")
    return 0


def command_app(args) -> int:
    from . import display
    problem = display.missing_display_reason()
    if problem:
        print(f"stylegan-explorer: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from widgets.app import run_app
    except ImportError as error:
        raise UserError(f"the explorer window cannot start: {error}")
    pkl = args.pkl
    if pkl is None and DEFAULT_MODEL.exists() and not _state_names_a_network(args.state):
        pkl = str(DEFAULT_MODEL)
    return run_app(pkl=pkl, state_file=args.state, screenshot=args.screenshot, quit_after=args.quit)


def _state_names_a_network(state_file: str | None) -> bool:
    """Whether a session file (JSON or screenshot PNG) says which network to open; then no default is loaded."""
    if not state_file:
        return False
    from .export import ExportError, read_state_file
    try:
        data = json.loads(read_state_file(state_file))
    except (ExportError, ValueError):
        return False   # the app reports the broken file itself
    return isinstance(data, dict) and bool((data.get("network") or {}).get("path"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylegan-explorer", description="Explore StyleGAN generators live.")
    parser.add_argument("--pkl", help="network file to open (default: the model shipped in assets/)")
    parser.add_argument("--state", help="session file to open (JSON, or a screenshot PNG that carries one)")
    parser.add_argument("--screenshot", help="render, save a screenshot of both windows to this PNG")
    parser.add_argument("--quit", action="store_true", help="exit after --screenshot")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    sub = parser.add_subparsers(dest="command")

    render = sub.add_parser("render", help="write images for seeds, headlessly")
    render.add_argument("--pkl", required=True)
    render.add_argument("--seeds", required=True, help="e.g. 0-3,7")
    render.add_argument("--trunc", type=float, default=1.0, help="truncation psi (default 1)")
    render.add_argument("--trunc-cutoff", type=int, default=None,
                        help="truncate only the first N ws (default: all; 8 for StyleGAN 2019 networks, as the original)")
    render.add_argument("--noise-mode", choices=["const", "random", "none"], default="const")
    render.add_argument("--class", dest="class_index", type=int, default=None, help="class index")
    render.add_argument("--outdir", required=True)
    render.add_argument("--npy", action="store_true", help="also write the raw float32 NCHW output")
    render.add_argument("--dump-layers", action="store_true", help="also write every layer's activation (.npz)")
    render.add_argument("--device")
    render.add_argument("--overwrite", action="store_true", help="replace existing files")

    info = sub.add_parser("info", help="describe a network file")
    info.add_argument("--pkl", required=True)
    info.add_argument("--json", action="store_true")

    convert = sub.add_parser("convert", help="convert any network file to stylegan-explorer safetensors")
    convert.add_argument("--pkl", required=True)
    convert.add_argument("--out", required=True)
    convert.add_argument("--overwrite", action="store_true")

    try:
        from .export import add_video_command
        add_video_command(sub)
    except ImportError:
        pass  # the export module is optional until it lands
    return parser


COMMANDS = {"render": command_render, "info": command_info, "convert": command_convert}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            return command_app(args)
        handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
        return handler(args)
    except UserError as error:
        print(f"stylegan-explorer: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("stylegan-explorer: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:   # output piped into head and the like: not an error of ours
        return 0


if __name__ == "__main__":
    # Run through the imported module, so that its UserError is the class the subcommands raise.
    from explorer.cli import main as imported_main
    sys.exit(imported_main())
