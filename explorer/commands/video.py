"""`stylegan-explorer video`: seed walks, noise loops, psi and style sweeps, offline, at a fixed frame rate.

Every frame is a RenderRequest rendered by explorer.render.render, so a video shows exactly what the explorer
shows for the same settings; `--state FILE` starts from a saved session (or a screenshot that carries one), with
its mixing, W+ edits and noise settings.

  walk   through --seeds, interpolated in W: linear between two keyframes, or cubic (Catmull-Rom weights over
         four keyframes: through every keyframe, with no kink in the motion there); --loop returns to the first
  noise  a seamless loop of the noise inputs: every noise map turns on a circle, cos(a) * stored + sin(a) * other,
         from the network's stored noise (frame 0 is the 'const' image) through fresh noise (--noise-seed) and
         back; each map stays unit Gaussian all the way round
  psi    truncation from --psi-range FROM to TO (with --loop: there and back, so it loops without a jump)
  style  one w index (--layer) swung along a random direction, +-strength, and back
--grid COLSxROWS renders several cells side by side: walks start at successive keyframes, other modes use
successive seeds (with --state, the first cell keeps the session's own latent).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..controls import NOISE_MODES
from ..export import ExportError, open_recorder
from ..render import RenderCache, WOffset, render
from .common import (UserError, add_network_argument, add_precision_argument, open_network, parse_seeds, pick_device,
                     precision_for, session_for, w_range)

MODES = ("walk", "noise", "psi", "style", "direction")
INTERPOLATIONS = ("linear", "cubic")
NETWORK_KEY = "video"
SUFFIX_KINDS = {".mp4": "mp4", ".gif": "gif"}   # any other --out is a new folder of PNG frames


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "video", help="render a seed walk, noise loop, psi or style sweep to MP4, GIF or PNG frames",
        description="Render a video offline at a fixed frame rate with the explorer's renderer.")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser) -> None:
    add_network_argument(parser)
    parser.add_argument("--out", required=True, help="output: NAME.mp4, NAME.gif, or a new folder for PNG frames")
    parser.add_argument("--state", help="start from a session file (JSON, or a screenshot PNG that carries one)")
    parser.add_argument("--mode", choices=MODES, default="walk",
                        help="walk through --seeds; noise: a seamless noise loop; psi: a truncation sweep; "
                             "style: sweep one w index along a random direction")
    parser.add_argument("--seeds", default="0-3", help="keyframe seeds of the walk, e.g. 0,5,9 (default 0-3)")
    parser.add_argument("--loop", action="store_true", help="end where the video starts, so it loops smoothly")
    parser.add_argument("--frames-per-seed", type=int, default=60, help="frames from one keyframe to the next")
    parser.add_argument("--frames", type=int, default=60, help="frames of a noise loop, psi or style sweep")
    parser.add_argument("--interp", choices=INTERPOLATIONS, default="cubic", help="walk interpolation in W")
    parser.add_argument("--trunc", type=float, default=None, help="truncation psi (default: the state's, else 1)")
    parser.add_argument("--trunc-cutoff", type=int, default=None)
    parser.add_argument("--noise-mode", choices=NOISE_MODES, default=None)
    parser.add_argument("--noise-seed", type=int, default=1, help="the fresh noise a noise loop turns through")
    parser.add_argument("--class", dest="class_index", type=int, default=None)
    parser.add_argument("--psi-range", type=float, nargs=2, default=(-1.0, 1.0), metavar=("FROM", "TO"))
    parser.add_argument("--layer", type=int, default=0, help="the w index a style sweep moves")
    parser.add_argument("--directions", default=None, metavar="FILE",
                        help="direction mode: a direction set (.npz, `stylegan-explorer directions`) or an "
                             "InterFaceGAN boundary (.npy); default: SeFa directions computed from the network")
    parser.add_argument("--index", type=int, default=0,
                        help="direction mode: which direction (with --grid, cell k sweeps direction index + k)")
    parser.add_argument("--w-range", default=None, metavar="FIRST-LAST",
                        help="direction mode: the w indices the direction moves, e.g. 0-5 (default: all)")
    parser.add_argument("--strength", type=float, default=3.0, help="largest offset of a style sweep")
    parser.add_argument("--grid", default="1x1", help="COLSxROWS cells side by side, e.g. 2x2")
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    add_precision_argument(parser)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: every core but one, which the encoder gets; "
                             "OMP_NUM_THREADS, when set, decides)")
    add_driven_arguments(parser)


# -- interpolation -------------------------------------------------------------------------------------------------

def catmull_rom_weights(t: float) -> tuple[float, float, float, float]:
    """Weights of keyframes p0..p3 for the segment p1 -> p2 at t in [0, 1): they sum to 1, give p1 at t = 0,
    and the velocity at a keyframe is the same arriving and leaving."""
    t2, t3 = t * t, t * t * t
    return (-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2)


def walk_weights(seeds: list[int], frame: int, frames_per_seed: int, loop: bool,
                 interp: str) -> tuple[tuple[int, float], ...]:
    """seed_weights (blended in W) of one frame of a walk through `seeds`."""
    segment, step = divmod(frame, frames_per_seed)
    t = step / frames_per_seed
    count = len(seeds)

    def keyframe(i):
        return seeds[i % count] if loop else seeds[min(max(i, 0), count - 1)]

    if interp == "linear":
        pairs = ((keyframe(segment), 1 - t), (keyframe(segment + 1), t))
    else:
        keyframes = (keyframe(segment - 1), keyframe(segment), keyframe(segment + 1), keyframe(segment + 2))
        pairs = tuple(zip(keyframes, catmull_rom_weights(t)))
    merged: dict[int, float] = {}
    for seed, weight in pairs:
        merged[seed] = merged.get(seed, 0.0) + weight
    return tuple((seed, weight) for seed, weight in merged.items() if weight != 0) or ((seeds[0], 1.0),)


def frame_count(args, seeds: list[int]) -> int:
    if args.mode != "walk":
        return args.frames
    if len(seeds) == 1:
        return args.frames_per_seed
    segments = len(seeds) if args.loop else len(seeds) - 1
    # Without --loop the walk ends on its last keyframe.
    return segments * args.frames_per_seed + (0 if args.loop else 1)


# -- the noise loop ------------------------------------------------------------------------------------------------

class NoiseLoop:
    """A copy of the generator whose stored noise maps turn on a circle: at phase p (0..1) each map is
    cos(2 pi p) * stored + sin(2 pi p) * other, `other` fresh unit Gaussian noise from `seed`.

    The render request cannot carry noise maps, so the loop sets them in its own copy of the network and renders
    with noise mode 'const'. The render cache does not see buffer contents: render each phase without one.
    """
    BUFFER_NAME = "noise_const"

    def __init__(self, G, seed: int):
        import torch
        self.generator = copy.deepcopy(G)
        self.buffers = [buffer for name, buffer in self.generator.named_buffers()
                        if name.rsplit(".", 1)[-1] == self.BUFFER_NAME]
        self.stored = [buffer.clone() for buffer in self.buffers]
        stream = torch.Generator().manual_seed(seed)
        self.other = [torch.randn(buffer.shape, generator=stream).to(buffer.device, buffer.dtype)
                      for buffer in self.buffers]

    def at(self, phase: float):
        import torch
        angle = 2 * math.pi * phase
        with torch.no_grad():
            for buffer, stored, other in zip(self.buffers, self.stored, self.other):
                buffer.copy_(stored * math.cos(angle) + other * math.sin(angle))
        return self.generator


# -- frames --------------------------------------------------------------------------------------------------------

def frame_request(base, args, seeds: list[int], frame: int, total: int, cell: int = 0):
    """The request of one frame of one grid cell (`seeds`: the cell's keyframes; empty keeps base's latent)."""
    if args.mode == "walk":
        if len(seeds) == 1:
            return dataclasses.replace(base, seed_weights=((seeds[0], 1.0),))
        weights = walk_weights(seeds, frame, args.frames_per_seed, args.loop, args.interp)
        return dataclasses.replace(base, seed_weights=weights, latent_space="w")
    if seeds:
        base = dataclasses.replace(base, seed_weights=((seeds[0], 1.0),))
    phase = frame / total
    if args.mode == "noise":
        return dataclasses.replace(base, noise_mode="const")
    if args.mode == "psi":
        low, high = args.psi_range
        if args.loop:   # out and back along a cosine: no jump where the video starts again
            psi = low + (high - low) * (0.5 - 0.5 * math.cos(2 * math.pi * phase))
        else:
            psi = low + (high - low) * frame / max(total - 1, 1)
        return dataclasses.replace(base, truncation_psi=psi)
    strength = args.strength * math.sin(2 * math.pi * phase)
    if args.mode == "direction":
        moved = dataclasses.replace(args.direction_of_cell[cell], strength=strength)
        return dataclasses.replace(base, direction_offsets=base.direction_offsets + (moved,))
    direction_seed = seeds[0] if seeds else args.noise_seed
    offset = WOffset(w_index=args.layer, direction="random", seed=direction_seed, strength=strength)
    return dataclasses.replace(base, w_offsets=base.w_offsets + (offset,))


def tile(cells: list[np.ndarray], columns: int) -> np.ndarray:
    rows = [np.concatenate(cells[i:i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0)


def _parse_grid(text: str) -> tuple[int, int]:
    try:
        columns, rows = (int(v) for v in text.lower().split("x"))
        if columns < 1 or rows < 1:
            raise ValueError
    except ValueError:
        raise UserError(f"--grid: expected COLSxROWS such as 2x2, not {text!r}")
    return columns, rows


def _base_request(args, G, device):
    """The request every frame starts from: the session's (with --state) or the defaults, with the flags, each
    checked by the session state as the window checks it."""
    session = session_for(args, G)
    base = session.render_request(NETWORK_KEY)
    return dataclasses.replace(base, device=str(device), dtype=precision_for(args, device))


def render_threads(requested: int | None) -> int | None:
    """Torch threads for the frames: `requested`, else every core but one (ffmpeg encodes at the same time; on
    2 shared cores, torch on both made a 64 px frame 0.4-1.1 s against 0.05 s on one), else None to leave
    OMP_NUM_THREADS in charge."""
    if requested is not None:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def run(args) -> int:
    from tqdm import tqdm

    if getattr(args, "keyframes", None) or getattr(args, "audio", None) or getattr(args, "audio_map", None):
        return run_driven(args)     # a keyframe list or the music decides every frame
    columns, rows = _parse_grid(args.grid)
    for name in ("frames_per_seed", "frames"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    from ..controls import PSI_RANGE
    for value in args.psi_range:
        if not (math.isfinite(value) and PSI_RANGE[0] <= value <= PSI_RANGE[1]):
            raise UserError(f"--psi-range: psi must be between {PSI_RANGE[0]:g} and {PSI_RANGE[1]:g}, not {value:g}")
    if not math.isfinite(args.strength):
        raise UserError(f"--strength must be a finite number, not {args.strength}")
    if not (args.fps > 0 and math.isfinite(args.fps)):
        raise UserError("--fps must be a positive number")
    if not 0 <= args.noise_seed < 2 ** 32:
        raise UserError("--noise-seed is out of range (0 to 2**32 - 1)")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    seeds = parse_seeds(args.seeds)
    device = pick_device(args.device)
    precision_for(args, device)
    threads = render_threads(args.threads)
    if threads is not None:
        import torch
        torch.set_num_threads(threads)
    G = open_network(args.pkl, device).generator
    if args.mode == "style" and not 0 <= args.layer < G.num_ws:
        raise UserError(f"--layer {args.layer} is out of range (0 to {G.num_ws - 1})")
    if args.mode == "direction":
        args.direction_of_cell = _directions(args, G, columns * rows)
    noise_loop = None
    if args.mode == "noise":
        noise_loop = NoiseLoop(G, args.noise_seed)
        if not noise_loop.buffers:
            raise UserError(f"this {G.family} network has no noise inputs: there is no noise to loop")
    base = _base_request(args, G, device)
    if args.mode == "noise" and base.noise_strength == 0:
        print("note: the noise strength is 0: the noise loop will not move", file=sys.stderr)

    out = Path(args.out)
    kind = SUFFIX_KINDS.get(out.suffix.lower(), "frames")
    if kind == "frames" and out.suffix:
        raise UserError(f"--out {out}: write NAME.mp4, NAME.gif, or a folder name without a suffix for PNG frames")
    cells = columns * rows
    if args.mode == "walk":   # cell k walks the same keyframes, starting k keyframes later
        cell_seeds = [seeds[k % len(seeds):] + seeds[:k % len(seeds)] for k in range(cells)]
    else:                     # cell k shows seed + k; with --state, the first cell keeps the saved latent
        cell_seeds = [[] if args.state and k == 0 else [(seeds[0] + k) % 2 ** 32] for k in range(cells)]
    total = frame_count(args, seeds)
    try:
        recorder = open_recorder(kind, path=out, fps=args.fps)
    except ExportError as error:
        raise UserError(str(error))
    # The noise loop changes the network's buffers between frames, which a cache cannot see: no cache there.
    caches = [RenderCache() if noise_loop is None else None for _ in range(cells)]
    with recorder, tqdm(total=total, unit="frame", desc=out.name, file=sys.stderr) as bar:
        for frame in range(total):
            generator = noise_loop.at(frame / total) if noise_loop is not None else G
            images = []
            for cell in range(cells):
                request = frame_request(base, args, cell_seeds[cell], frame, total, cell)
                result = render(generator, request, caches[cell])
                if not result.ok:
                    raise UserError(f"frame {frame}: {result.error} ({recorder.frames_written} frames kept in "
                                    f"{recorder.path})")
                images.append(result.image)
            if not recorder.write(tile(images, columns)):
                raise UserError(f"{recorder.error} ({recorder.frames_written} frames kept in {recorder.path})")
            bar.update(1)
    if recorder.error:
        raise UserError(f"{recorder.error} ({recorder.frames_written} frames kept in {recorder.path})")
    status = recorder.status()
    print(f"wrote {status.path}: {status.frames_written} frames at {status.fps:g} fps ({status.seconds:.2f} s)")
    return 0


# -- driven videos: a keyframe list (explorer.presets) or music (explorer.audio) decides every frame ----------------

def add_driven_arguments(parser) -> None:
    group = parser.add_argument_group("driven videos")
    group.add_argument("--keyframes", metavar="FILE",
                       help="morph through a keyframe list (JSON: times in seconds and session files, see "
                            "explorer/presets.py); frames = last time x --fps + 1")
    group.add_argument("--audio", metavar="FILE.wav",
                       help="the motion follows the music (by default bass: latent speed, mids: psi, onsets: a W "
                            "offset on w index 0) and the MP4 carries the sound; frames = duration x --fps")
    group.add_argument("--audio-map", action="append", metavar="SOURCE:CONTROL:AMOUNT", default=None,
                       help="replaces the default mappings (repeat for several): SOURCE low, mid, high or onset; "
                            "CONTROL speed (seeds/s), psi, offset, direction (the --state's first direction) or "
                            "bend (the --state's first bending amount); e.g. low:speed:1.5 onset:bend:40")


def _driven_requests(args, G, device) -> list:
    """Every frame's request: from the keyframe list, or from the music and the starting state."""
    from ..audio import DEFAULT_MAPPINGS, AudioError, analyse_wav, audio_requests, parse_mapping
    from ..presets import PresetError, keyframe_requests, read_keyframes
    from ..state import NetworkFacts
    dtype = "float32" if device.type != "cuda" else None
    try:
        if args.keyframes:
            keyframes = read_keyframes(args.keyframes)
            base = _base_request(args, G, device)
            return list(keyframe_requests(keyframes, NetworkFacts.from_generator(G), NETWORK_KEY, args.fps,
                                          device=str(device), dtype=dtype or base.dtype))
        mappings = tuple(parse_mapping(text) for text in args.audio_map) if args.audio_map else DEFAULT_MAPPINGS
        features = analyse_wav(args.audio, args.fps)
        session = session_for(args, G)
        base = _base_request(args, G, device)
        # The walk starts at the saved latent (--state), else at the first of --seeds.
        x, y = (session.latent.x, session.latent.y) if args.state else (float(parse_seeds(args.seeds)[0]), 0.0)
        return audio_requests(base, x, y, features, mappings, offset_seed=args.noise_seed)
    except (PresetError, AudioError) as error:
        raise UserError(str(error))


def run_driven(args) -> int:
    import tempfile

    from tqdm import tqdm

    from ..audio import AudioError, mux_audio
    if args.keyframes and args.audio:
        raise UserError("--keyframes and --audio: choose one")
    if args.audio_map and not args.audio:
        raise UserError("--audio-map maps the sound of --audio; give --audio FILE.wav")
    if args.grid != "1x1":
        raise UserError("--grid is for walks and sweeps, not for --keyframes or --audio")
    if not (args.fps > 0 and math.isfinite(args.fps)):
        raise UserError("--fps must be a positive number")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    out = Path(args.out)
    kind = SUFFIX_KINDS.get(out.suffix.lower(), "frames")
    if kind == "frames" and out.suffix:
        raise UserError(f"--out {out}: write NAME.mp4, NAME.gif, or a folder name without a suffix for PNG frames")
    if args.audio and kind != "mp4":
        raise UserError(f"--audio: the sound goes into an MP4; write --out NAME.mp4, not {out}")
    if out.exists():
        raise UserError(f"--out {out} exists; choose a new name (nothing is overwritten)")
    device = pick_device(args.device)
    threads = render_threads(args.threads)
    if threads is not None:
        import torch
        torch.set_num_threads(threads)
    G = open_network(args.pkl, device).generator
    requests = _driven_requests(args, G, device)
    folder = out.parent if str(out.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{out.stem}-") as scratch:
        # With sound, the frames go to a silent file first; the sound is then added into --out.
        target = Path(scratch) / "silent.mp4" if args.audio else out
        try:
            recorder = open_recorder(kind, path=target, fps=args.fps)
        except ExportError as error:
            raise UserError(str(error))
        cache = RenderCache()
        with recorder, tqdm(total=len(requests), unit="frame", desc=out.name, file=sys.stderr) as bar:
            for frame, request in enumerate(requests):
                result = render(G, request, cache)
                if not result.ok:
                    raise UserError(f"frame {frame}: {result.error}")
                if not recorder.write(result.image):
                    raise UserError(f"{recorder.error} ({recorder.frames_written} frames written)")
                bar.update(1)
        if recorder.error:
            raise UserError(recorder.error)
        status = recorder.status()
        if args.audio:
            try:
                mux_audio(target, Path(args.audio), out)
            except AudioError as error:
                raise UserError(str(error))
    print(f"wrote {out}: {status.frames_written} frames at {status.fps:g} fps ({status.seconds:.2f} s)"
          + (f" with the sound of {args.audio}" if args.audio else ""))
    return 0


def _directions(args, G, cells: int):
    """The direction each grid cell sweeps (explorer.render.DirectionOffset at strength 0): from --directions, or
    the network's SeFa directions."""
    from ..analysis import directions as found
    from ..render import DirectionOffset
    try:
        if args.directions is None:
            chosen = found.sefa_directions(G, min(G.w_dim, args.index + cells))
        elif str(args.directions).lower().endswith(".npy"):
            chosen = found.boundary_set([args.directions], G.w_dim, found.network_hash(G))
        else:
            chosen = found.load_direction_set(args.directions, expected_hash=found.network_hash(G))
    except (found.DirectionError, OSError, ValueError) as error:
        raise UserError(f"--directions: {error}")
    if not 0 <= args.index or args.index + cells > len(chosen):
        raise UserError(f"--index {args.index}: the set has {len(chosen)} directions and the grid needs {cells} "
                        f"from there")
    start, stop = w_range(args.w_range, G.num_ws)
    return [DirectionOffset(chosen.names[k], tuple(float(v) for v in chosen.directions[k]), 0.0, start, stop)
            for k in range(args.index, args.index + cells)]
