"""`stylegan-explorer droplets [--pkl FILE] --seeds 0-15 [--layers ...] [--noise-mode ...] [--trunc PSI] [--json]`:
the channels whose maps hold one dominating local spike over a set of seeds, best first, and per layer the spot
where most channels peak at once (explorer.analysis.droplets says how both are measured)."""
from __future__ import annotations

import json

from .common import (UserError, add_latent_arguments, add_network_argument, finite, open_network, parse_seeds,
                     pick_device, session_for, set_threads)

DEFAULT_SEEDS = "0-15"
DEFAULT_TOP = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser("droplets", help="find channels with droplet-like spikes over a set of seeds",
                                   description="Rank every (layer, channel) by how much one local spike dominates "
                                               "its map over a set of seeds.")
    add_network_argument(parser)
    add_latent_arguments(parser, seeds_default=DEFAULT_SEEDS)
    parser.add_argument("--layers", nargs="+", default=None,
                        help="layer names, 16 px and more (default: every such convolution layer)")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"how many findings to print (default {DEFAULT_TOP}; 0: all; --json lists all)")
    parser.add_argument("--json", action="store_true",
                        help='print {"findings": [...] best first, "layers": [...] in synthesis order}')
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(handler=run)


def layer_names(values: list[str] | None) -> list[str] | None:
    """--layers a b,c -> ['a', 'b', 'c']."""
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise UserError("--layers: no layer names given")
    return names


def run(args) -> int:
    from ..analysis.droplets import detect_droplets
    set_threads(args.threads)
    finite("--trunc", args.trunc)
    if args.top < 0:
        raise UserError("--top must be 0 (all) or more")
    seeds = parse_seeds(args.seeds)
    layers = layer_names(args.layers)
    device = pick_device(args.device)
    G = open_network(args.pkl, device).generator
    if layers is not None:
        known = [info.name for info in G.synthesis.layers]
        for name in layers:
            if name not in known:
                raise UserError(f"--layers: this network has no layer {name!r}; layers: {', '.join(known)}")
    session = session_for(args, G)
    try:
        report = detect_droplets(G, seeds, layers, psi=session.truncation.psi, cutoff=session.truncation.cutoff,
                                 class_index=session.latent.class_index, noise_mode=session.noise.mode)
    except ValueError as error:
        raise UserError(f"--layers: {error}")
    if args.json:
        print(json.dumps({"findings": [finding.as_json() for finding in report.findings],
                          "layers": [layer.as_json() for layer in report.layers]}))
        return 0
    shown = report.findings if args.top == 0 else report.findings[:args.top]
    print(f"{'layer':<14} {'channel':>7} {'y':>4} {'x':>4} {'score':>8} {'seeds':>7}  peak/spread  top-k  compact")
    for f in shown:
        print(f"{f.layer:<14} {f.channel:>7} {f.y:>4} {f.x:>4} {f.score:>8.2f} {f.seeds:>3}/{f.seed_count:<3}"
              f"  {f.peak_ratio:>11.1f}  {f.topk_share:>5.2f}  {f.compactness:>7.2f}")
    print()
    # Per layer: the median share of channels spiking at one spot, the seeds where it reaches SHARED_SPOT_SHARE,
    # and the widest spot (the seed where the share is largest, and where).
    print(f"{'layer':<14} {'shared':>7} {'seeds':>7}  energy  chance  {'seed':>5} {'y':>4} {'x':>4}")
    for layer in report.layers:
        print(f"{layer.layer:<14} {layer.shared_share:>7.2f} {layer.seeds:>3}/{layer.seed_count:<3}"
              f"  {layer.energy_share:>6.3f}  {layer.chance:>6.4f}  {layer.best_seed:>5} {layer.y:>4} {layer.x:>4}"
              f"{'  droplet' if layer.droplet else ''}")
    print(report.note)
    return 0
