"""`stylegan-explorer video`: latent walks, noise loops, psi and style sweeps, offline, at a fixed frame rate.

Every frame is a RenderRequest rendered by explorer.render.render, so a video shows exactly what the explorer
shows for the same settings; `--state FILE` starts from a saved session (or a screenshot carrying one).
Interpolation between seeds happens in W: seed_weights blend the seeds' ws (linear: two seeds; cubic:
Catmull-Rom weights over four, which pass through every keyframe with a continuous velocity).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

MODES = ("walk", "noise", "psi", "style")
NETWORK_KEY = "video"


def add_arguments(parser) -> None:
    parser.add_argument("--pkl", required=True, help="network file")
    parser.add_argument("--out", required=True, help="output: .mp4, .gif, or a new folder for PNG frames")
    parser.add_argument("--state", help="start from a session file (JSON or a screenshot PNG that carries one)")
    parser.add_argument("--mode", choices=MODES, default="walk",
                        help="walk: through --seeds; noise: a loop of noise seeds; psi: a truncation sweep; "
                             "style: an offset sweep of one layer's w")
    parser.add_argument("--seeds", default="0-3", help="keyframe seeds of the walk, e.g. 0,5,9")
    parser.add_argument("--loop", action="store_true", help="return to the first seed at the end")
    parser.add_argument("--frames-per-seed", type=int, default=60)
    parser.add_argument("--frames", type=int, default=60, help="frames of a noise, psi or style sweep")
    parser.add_argument("--interp", choices=["linear", "cubic"], default="cubic")
    parser.add_argument("--trunc", type=float, default=None, help="truncation psi (default: the state's, else 1)")
    parser.add_argument("--trunc-cutoff", type=int, default=None)
    parser.add_argument("--noise-mode", choices=["const", "random", "none"], default=None)
    parser.add_argument("--class", dest="class_index", type=int, default=None)
    parser.add_argument("--psi-range", type=float, nargs=2, default=(-1.0, 1.0), metavar=("FROM", "TO"))
    parser.add_argument("--layer", type=int, default=0, help="w index swept by --mode style")
    parser.add_argument("--strength", type=float, default=3.0, help="largest offset of --mode style")
    parser.add_argument("--grid", default="1x1", help="COLSxROWS cells, each from its own seeds")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--device")


def catmull_rom_weights(t: float) -> tuple[float, float, float, float]:
    """Weights of points p0..p3 for the segment p1 -> p2 at t in [0, 1]; they sum to 1."""
    t2, t3 = t * t, t * t * t
    return (-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2)


def walk_weights(seeds: list[int], frame: int, frames_per_seed: int, loop: bool, interp: str):
    """seed_weights for one frame of a walk through `seeds`."""
    segment, step = divmod(frame, frames_per_seed)
    t = step / frames_per_seed
    count = len(seeds)

    def at(i):
        return seeds[i % count] if loop else seeds[min(max(i, 0), count - 1)]

    if interp == "linear":
        pairs = ((at(segment), 1 - t), (at(segment + 1), t))
    else:
        pairs = tuple(zip((at(segment - 1), at(segment), at(segment + 1), at(segment + 2)), catmull_rom_weights(t)))
    merged: dict[int, float] = {}
    for seed, weight in pairs:
        merged[seed] = merged.get(seed, 0.0) + weight
    return tuple((seed, weight) for seed, weight in merged.items() if weight != 0) or ((seeds[0], 1.0),)


def frame_count(args, seeds) -> int:
    if args.mode == "walk":
        segments = len(seeds) if args.loop else len(seeds) - 1
        return max(segments, 1) * args.frames_per_seed if len(seeds) > 1 else args.frames_per_seed
    return args.frames


def frame_request(base, args, seeds, frame, total):
    """The request of one frame of one grid cell."""
    from .render import WOffset
    phase = frame / total
    if args.mode == "walk":
        if len(seeds) == 1:
            return dataclasses.replace(base, seed_weights=((seeds[0], 1.0),))
        weights = walk_weights(seeds, frame, args.frames_per_seed, args.loop, args.interp)
        return dataclasses.replace(base, seed_weights=weights, latent_space="w")
    if seeds:   # no seeds: keep the saved session's latent
        base = dataclasses.replace(base, seed_weights=((seeds[0], 1.0),))
    if args.mode == "noise":
        return dataclasses.replace(base, noise_mode="random", noise_seed=frame)
    if args.mode == "psi":
        low, high = args.psi_range
        # Out and back (a cosine) so that a looping video has no jump.
        psi = low + (high - low) * (0.5 - 0.5 * math.cos(2 * math.pi * phase)) if args.loop else \
            low + (high - low) * frame / max(total - 1, 1)
        return dataclasses.replace(base, truncation_psi=psi)
    strength = args.strength * math.sin(2 * math.pi * phase)
    offset = WOffset(w_index=args.layer, direction="random", seed=seeds[0], strength=strength)
    return dataclasses.replace(base, w_offsets=base.w_offsets + (offset,))


def _tile(cells: list[np.ndarray], columns: int) -> np.ndarray:
    rows = [np.concatenate(cells[i:i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0)


def command_video(args) -> int:
    from tqdm import tqdm

    from .cli import UserError, load, parse_seeds, pick_device
    from .export import ExportError, open_recorder, read_state_file
    from .render import RenderCache, RenderRequest, render
    from .state import NetworkFacts, Session, StateError

    try:
        columns, rows = (int(v) for v in args.grid.lower().split("x"))
        if columns < 1 or rows < 1:
            raise ValueError
    except ValueError:
        raise UserError(f"--grid: expected COLSxROWS such as 2x2, not {args.grid!r}")
    for name in ("frames_per_seed", "frames"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.fps > 0:
        raise UserError("--fps must be positive")
    seeds = parse_seeds(args.seeds)
    device = pick_device(args.device)
    loaded = load(args.pkl, device)
    G = loaded.generator
    if args.mode == "style" and not 0 <= args.layer < G.num_ws:
        raise UserError(f"--layer {args.layer} is out of range (0 to {G.num_ws - 1})")

    if args.state:
        try:
            session = Session.from_json(read_state_file(args.state), facts=NetworkFacts.from_generator(G))
        except (ExportError, StateError) as error:
            raise UserError(f"--state: {error}")
        base = session.render_request(NETWORK_KEY)
    else:
        base = RenderRequest(NETWORK_KEY)
    overrides = {}
    if args.trunc is not None:
        overrides["truncation_psi"] = args.trunc
    if args.trunc_cutoff is not None:
        if not 0 <= args.trunc_cutoff <= G.num_ws:
            raise UserError(f"--trunc-cutoff {args.trunc_cutoff} is out of range (0 to {G.num_ws})")
        overrides["truncation_cutoff"] = args.trunc_cutoff
    if args.noise_mode is not None:
        overrides["noise_mode"] = args.noise_mode
    if args.class_index is not None:
        overrides["class_index"] = args.class_index
    base = dataclasses.replace(base, device=str(device), **overrides)

    out = Path(args.out)
    kind = {".mp4": "mp4", ".gif": "gif"}.get(out.suffix.lower(), "frames")
    try:
        recorder = open_recorder(kind, path=out, fps=args.fps)
    except ExportError as error:
        raise UserError(str(error))

    cells = columns * rows
    if args.mode == "walk":   # cell k walks the same seeds, starting k keyframes later
        cell_seeds = [seeds[k % len(seeds):] + seeds[:k % len(seeds)] for k in range(cells)]
    else:                     # cell k uses seed + k; with --state, the first cell keeps the saved latent
        cell_seeds = [[] if args.state and k == 0 else [seeds[0] + k] for k in range(cells)]
    total = frame_count(args, seeds)
    caches = [RenderCache() for _ in range(cells)]
    with recorder, tqdm(total=total, unit="frame", desc=out.name) as bar:
        for frame in range(total):
            images = []
            for cell in range(cells):
                request = frame_request(base, args, cell_seeds[cell], frame, total)
                result = render(G, request, caches[cell])
                if not result.ok:
                    raise UserError(f"frame {frame}: {result.error} ({recorder.frames_written} frames kept in "
                                    f"{recorder.path})")
                images.append(result.image)
            if not recorder.write(_tile(images, columns)):
                raise UserError(f"{recorder.error} ({recorder.frames_written} frames kept in {recorder.path})")
            bar.update(1)
    if recorder.error:
        raise UserError(recorder.error)
    print(f"wrote {recorder.path}: {recorder.frames_written} frames at {args.fps:g} fps")
    return 0
