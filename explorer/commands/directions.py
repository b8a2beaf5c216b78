"""`stylegan-explorer directions [--pkl FILE] --method pca|sefa|interfacegan --count 10 [--layers ...]
--out dirs.npz`: a named direction set in W (explorer.analysis.directions), saved with the network's hash."""
from __future__ import annotations

from .common import UserError, add_network_argument, open_network, pick_device, set_threads, w_range
from .droplets import layer_names

METHOD_CHOICES = ("pca", "sefa", "interfacegan")
DEFAULT_COUNT = 10


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "directions", help="find directions in W (GANSpace PCA, SeFa) or import InterFaceGAN boundaries",
        description="Write a direction set (.npz: the array `directions` [count, w_dim], best first, with the "
                    "network's hash).")
    add_network_argument(parser)
    parser.add_argument("--method", choices=METHOD_CHOICES, required=True,
                        help="pca: principal components of w (GANSpace); sefa: closed form from the style weights; "
                             "interfacegan: the --boundary files")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"directions (default {DEFAULT_COUNT})")
    parser.add_argument("--layers", nargs="+", default=None,
                        help="sefa: the layers whose style weights to factorise (default: every convolution "
                             "layer, ToRGB excluded)")
    parser.add_argument("--samples", type=int, default=None, help="pca: random z to sample (default 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="pca: seed of the random z (default 0)")
    parser.add_argument("--boundary", action="append", default=[],
                        help="interfacegan: a boundary .npy of w_dim values (repeat for several)")
    parser.add_argument("--out", required=True, help="the .npz to write (an existing file is never overwritten)")
    parser.add_argument("--strip", default=None, metavar="OUT.png",
                        help="also draw a strip: one row per direction (the first --strip-rows), one column per "
                             "--strengths, on --strip-seed, through the explorer's renderer")
    parser.add_argument("--strip-rows", type=int, default=5)
    parser.add_argument("--strip-seed", type=int, default=0)
    parser.add_argument("--strengths", default="-3,-1.5,0,1.5,3", help="the strip's columns (default -3,-1.5,0,1.5,3)")
    parser.add_argument("--w-range", default=None, metavar="FIRST-LAST",
                        help="the w indices the strip moves, e.g. 0-5 (default: all)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from pathlib import Path

    from ..analysis.directions import (DEFAULT_PCA_SAMPLES, DirectionError, boundary_set, network_hash,
                                       pca_directions, save_direction_set, sefa_directions)
    set_threads(args.threads)
    out = Path(args.out)
    if out.exists():
        raise UserError(f"--out: {out} exists; not overwriting it")
    if out.suffix != ".npz":
        raise UserError(f"--out: a direction set is an .npz file, not {out.name!r}")
    if args.method != "interfacegan" and args.boundary:
        raise UserError("--boundary goes with --method interfacegan")
    if args.method != "sefa" and args.layers:
        raise UserError("--layers goes with --method sefa")
    if args.method != "pca" and args.samples is not None:
        raise UserError("--samples goes with --method pca")
    if args.method == "interfacegan" and not args.boundary:
        raise UserError("--method interfacegan needs at least one --boundary FILE.npy")
    samples = DEFAULT_PCA_SAMPLES if args.samples is None else args.samples
    if samples < 2:
        raise UserError("--samples must be at least 2")
    G = open_network(args.pkl, pick_device(args.device)).generator
    if args.method != "interfacegan" and not 1 <= args.count <= G.w_dim:
        raise UserError(f"--count must be 1 to {G.w_dim} (this network's w_dim)")
    try:
        hash_ = network_hash(G)
        if args.method == "pca":
            directions = pca_directions(G, args.count, samples, args.seed, hash_)
            label = "explained variance"
        elif args.method == "sefa":
            directions = sefa_directions(G, args.count, layer_names(args.layers), hash_)
            label = "eigenvalue"
        else:
            directions = boundary_set(args.boundary, G.w_dim, hash_)
            label = ""
        save_direction_set(directions, out)
    except DirectionError as error:
        raise UserError(str(error))
    if args.strip:
        _write_strip(args, G, directions)
    for name, value in zip(directions.names, directions.values):
        print(f"{name:<12} {label} {value:.4g}" if label else name)
    print(f"wrote {len(directions)} {args.method} directions [{len(directions)}, {directions.w_dim}] to {out} "
          f"(network {hash_[:12]})")
    return 0


STRIP_GAP = 2        # pixels between the strip's images


def _write_strip(args, G, directions) -> None:
    """Rows: directions; columns: strengths; each image render() of the seed moved along that direction."""
    import numpy as np

    from ..export import ExportError, png_bytes, write_file_at
    from ..render import DirectionOffset, RenderRequest, render
    try:
        strengths = [float(v) for v in args.strengths.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--strengths: cannot read {args.strengths!r}; expected numbers like -3,0,3")
    start, stop = w_range(args.w_range, G.num_ws)
    rows = []
    for index in range(min(args.strip_rows, len(directions))):
        vector = tuple(float(v) for v in directions.directions[index])
        images = []
        for strength in strengths:
            offset = DirectionOffset(directions.names[index], vector, strength, start, stop)
            result = render(G, RenderRequest("strip", seed_weights=((args.strip_seed, 1.0),),
                                             direction_offsets=(offset,), device=str(G.mapping.w_avg.device)))
            if not result.ok:
                raise UserError(f"--strip: {result.error}")
            images.append(result.image)
        gap = np.zeros([images[0].shape[0], STRIP_GAP, 3], np.uint8)
        rows.append(np.concatenate([part for image in images for part in (image, gap)][:-1], axis=1))
    band = np.zeros([STRIP_GAP, rows[0].shape[1], 3], np.uint8)
    sheet = np.concatenate([part for row in rows for part in (row, band)][:-1], axis=0)
    try:
        write_file_at(args.strip, png_bytes(sheet))
    except ExportError as error:
        raise UserError(f"--strip: {error}")
    print(f"wrote {args.strip}: {len(rows)} directions x strengths {', '.join(f'{v:g}' for v in strengths)}")
