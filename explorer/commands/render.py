"""`stylegan-explorer render`: images written headlessly, through the same render() as the window.

    stylegan-explorer render --seeds 0-3 --outdir out                 the default model, seeds 0 to 3
    stylegan-explorer render --pkl ffhq.pkl --state shot-0001.png --outdir out
                                                                      exactly the view a screenshot carries

Every pixel comes from explorer.render.render() with a request made by the session state, so a session file's
mixing, W+ edits, noise strengths and StyleGAN3 transform are all reproduced, and every option is checked as the
window checks it. Files are published whole and never overwrite one (unless --overwrite).
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np

from ..export import ExportError, png_bytes, write_file_at
from ..export.files import write_temporary
from ..render import render
from .common import (UserError, add_latent_arguments, add_network_argument, add_precision_argument, open_network,
                     output_folder, pick_device, precision_for, requests_for, session_for, set_threads)

NETWORK_KEY = "render"


def register(subparsers) -> None:
    parser = subparsers.add_parser("render", help="write images for seeds or a session file, headlessly")
    add_network_argument(parser)
    add_latent_arguments(parser, seeds_default=None)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--npy", action="store_true", help="also write the raw float32 NCHW output")
    parser.add_argument("--dump-layers", action="store_true", help="also write every layer's activation (.npz)")
    parser.add_argument("--device")
    add_precision_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(handler=run)


def _names(seed: int | None, state: str | None) -> str:
    return f"seed{seed:04d}" if seed is not None else Path(state).stem


def run(args) -> int:
    set_threads(args.threads)
    device = pick_device(args.device)
    precision_for(args, device)            # refused before anything is loaded
    if args.seeds is None and not args.state:
        raise UserError("render: give --seeds (e.g. 0-3) or --state FILE")
    loaded = open_network(args.pkl, device)
    G = loaded.generator
    session = session_for(args, G)
    jobs = requests_for(args, session, NETWORK_KEY, device)
    outdir = Path(args.outdir)
    planned = []
    for seed, _ in jobs:
        base = outdir / _names(seed, args.state)
        planned += [base.with_suffix(".png")] + ([Path(f"{base}.npy")] if args.npy else []) + \
                   ([Path(f"{base}_layers.npz")] if args.dump_layers else [])
    if not args.overwrite:
        taken = [str(p) for p in planned if p.exists() or p.is_symlink()]
        if taken:
            raise UserError(f"not overwriting {taken[0]}" + (f" and {len(taken) - 1} more" if len(taken) > 1 else "")
                            + "; choose another --outdir or pass --overwrite")
    output_folder(args.outdir)
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    if G.c_dim and session.latent.class_index is None:
        print("note: this network is conditional and no --class was given: the class drawn from each seed, as the "
              "window does", file=sys.stderr)
    for seed, request in jobs:
        result = render(G, request, capture_all=args.dump_layers)
        if not result.ok:
            raise UserError(f"render failed: {result.error}")
        base = outdir / _names(seed, args.state)
        _write(base.with_suffix(".png"), png_bytes(result.image), args.overwrite)
        if args.npy:
            _write(Path(f"{base}.npy"), _npy_bytes(result.raw[None].astype(np.float32)), args.overwrite)
        if args.dump_layers:
            _write(Path(f"{base}_layers.npz"), _npz_bytes({name: a[None] for name, a in result.activations.items()}),
                   args.overwrite)
        print(f"{'seed ' + str(seed) if seed is not None else 'session'}: {base.with_suffix('.png')}")
    return 0


def _write(path: Path, data: bytes, overwrite: bool) -> None:
    """Publishes `data` whole as `path`: a full disk or a name taken meanwhile leaves no file behind."""
    try:
        if overwrite:
            temporary = write_temporary(path.parent, path.stem, data, durable=True)
            try:
                os.replace(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        else:
            write_file_at(path, data)
    except ExportError as error:
        raise UserError(str(error))
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
