"""`stylegan-explorer project [--pkl FILE] --target photo.png --out DIR [--steps N] [--w-plus] [--noise]
[--vgg16 FILE] [--no-discriminator] [--seed S]`: the latent whose image matches a photo (StyleGAN2 paper,
section 5).

The distance is the multi-scale pixel distance, plus the features of the network file's own discriminator when
the file holds one (NVlabs snapshots, rosinality and stylegan-explorer training checkpoints; --no-discriminator
leaves it out), plus LPIPS-style VGG16 features with --vgg16 (explorer/projection/losses.py says what each gives).

Writes into DIR (refusing to start when any of these names exists there):
    projected.png        the best image
    projected_w.npy      its ws, float32 [num_ws, w_dim] (with --noise: together with projected_noise.npz)
    projected_noise.npz  the optimised noise maps by buffer name (only with --noise)
    target.png           the photo as projected: cropped and resized to the network's size
    projection.json      the settings and every step's numbers
    projection.mp4       the optimisation, target and current image side by side (--video gif|none)
Ctrl-C stops the optimisation; the best result so far is written as if the run had ended.
"""
from __future__ import annotations

import dataclasses
import io
import json
import signal
import threading
from pathlib import Path

import numpy as np

from .common import (UserError, add_network_argument, network_path, open_network, output_folder, pick_device,
                     set_threads)

VIDEO_CHOICES = ("mp4", "gif", "none")
DEFAULT_FPS = 30
PROGRESS_LINES = 10           # progress lines printed over a run
RESULT_NAMES = ("projected.png", "projected_w.npy", "target.png", "projection.json")
NOISE_NAME = "projected_noise.npz"
VIDEO_STEM = "projection"


def register(subparsers) -> None:
    parser = subparsers.add_parser("project", help="find the latent whose image matches a photo")
    add_network_argument(parser)
    parser.add_argument("--target", required=True, help="the photo (any image Pillow reads)")
    parser.add_argument("--out", required=True, help="folder for the results (created if missing)")
    parser.add_argument("--steps", type=int, default=1000, help="optimisation steps (default 1000)")
    parser.add_argument("--w-plus", action="store_true", help="one w per layer (W+) instead of one w for all")
    parser.add_argument("--noise", action="store_true", help="optimise the noise maps too")
    parser.add_argument("--vgg16", default=None,
                        help="torchvision VGG16 weights file (state dict) for an LPIPS-style perceptual distance")
    parser.add_argument("--no-discriminator", action="store_true",
                        help="leave out the network file's own discriminator features (used when the file has a D)")
    parser.add_argument("--discriminator-weight", type=float, default=None,
                        help="weight of the discriminator-feature distance (default "
                             f"{_default_discriminator_weight()})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the exploration noise and w_std samples")
    parser.add_argument("--video", choices=VIDEO_CHOICES, default="mp4", help="video of the optimisation")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frame rate of the video")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.set_defaults(handler=run)


def _default_discriminator_weight() -> float:
    from ..projection import ProjectionSettings
    return ProjectionSettings.discriminator_weight


def _discriminator_for(loaded, G, args):
    """(the file's D or None, what the record says about it); prints why a D the file has is not used."""
    from ..projection import discriminator_misfit
    D = loaded.discriminator
    if D is None:
        return None, "none (the file holds no discriminator it could read)"
    if args.no_discriminator:
        return None, "none (--no-discriminator)"
    misfit = discriminator_misfit(D, G.img_shape, G.img_channels)
    if misfit is not None:
        print(f"note: the file's discriminator is not used: {misfit}", flush=True)
        return None, f"none ({misfit})"
    return D, "the file's own discriminator, block features"


def _planned_paths(folder: Path, args) -> list[Path]:
    names = list(RESULT_NAMES) + ([NOISE_NAME] if args.noise else [])
    if args.video != "none":
        names.append(f"{VIDEO_STEM}.{args.video}")
    return [folder / name for name in names]


class _StopOnInterrupt:
    """Ctrl-C asks the projection to stop after the current step (only the main thread can take signals)."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run(args) -> int:
    from ..export import ExportError, open_recorder, save_screenshot_as, write_file_at
    from ..projection import ProjectionError, ProjectionSettings, load_target, load_vgg16, project
    from ..projection.target import RESIZE_DESCRIPTION

    set_threads(args.threads)
    if not (args.fps > 0 and np.isfinite(args.fps)):
        raise UserError(f"--fps must be a positive number, not {args.fps}")
    device = pick_device(args.device)
    loaded = open_network(args.pkl, device)
    G = loaded.generator.eval()
    discriminator, discriminator_record = _discriminator_for(loaded, G, args)
    weights = {} if args.discriminator_weight is None else {"discriminator_weight": args.discriminator_weight}
    try:
        settings = ProjectionSettings(steps=args.steps, w_plus=args.w_plus, optimize_noise=args.noise, seed=args.seed,
                                      **weights)
    except ProjectionError as error:
        raise UserError(str(error))
    try:
        target = load_target(args.target, G.img_channels, *G.img_shape)
    except ProjectionError as error:
        raise UserError(f"--target {error}")
    try:
        vgg16 = load_vgg16(args.vgg16, device) if args.vgg16 else None
    except ProjectionError as error:
        raise UserError(f"--vgg16 {error}")
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file, not a folder")
    taken = [path.name for path in _planned_paths(folder, args) if path.exists() or path.is_symlink()]
    if taken:
        raise UserError(f"--out {folder} already holds {', '.join(taken)}; not overwriting (choose another --out)")
    folder = output_folder(args.out)

    recorder = None
    if args.video != "none":
        try:
            recorder = open_recorder(args.video, path=folder / f"{VIDEO_STEM}.{args.video}", fps=args.fps,
                                     background=True)
        except ExportError as error:
            raise UserError(f"cannot record the video: {error}")
    every = max(1, args.steps // PROGRESS_LINES)

    def on_step(progress):
        if recorder is not None:
            recorder.write(np.concatenate([target, progress.image], axis=1))
        step = progress.step
        if step.step % every == 0 or step.step == progress.steps:
            print(f"step {step.step}/{progress.steps}: distance {step.distance:.4g}, PSNR {step.psnr:.2f} dB "
                  f"(best {progress.best_psnr:.2f} dB at step {progress.best_step})", flush=True)

    try:
        with _StopOnInterrupt() as interrupt:
            result = project(G, target, settings, vgg16=vgg16, on_step=on_step, should_stop=interrupt.event.is_set,
                             discriminator=discriminator)
    except ProjectionError as error:
        raise UserError(str(error))
    finally:
        if recorder is not None:
            recorder.close()

    record = {
        "network": network_path(args.pkl),
        "target": str(args.target),
        "target_preparation": RESIZE_DESCRIPTION,
        "perceptual": f"vgg16 {args.vgg16}" if args.vgg16 else "none",
        "discriminator": discriminator_record,
        "settings": dataclasses.asdict(settings),
        "stopped": result.stopped,
        "best_step": result.best_step,
        "best_distance": result.distance,
        "best_psnr_db": result.psnr,
        "steps": [dataclasses.asdict(step) for step in result.history],
    }
    try:
        save_screenshot_as(result.image, folder / "projected.png")
        save_screenshot_as(result.target, folder / "target.png")
        write_file_at(folder / "projected_w.npy", _npy_bytes(result.ws))
        if args.noise:
            write_file_at(folder / NOISE_NAME, _npz_bytes(result.noise))
        write_file_at(folder / "projection.json", json.dumps(record, indent=1).encode("utf-8"))
    except ExportError as error:
        raise UserError(str(error))
    ended = "stopped" if result.stopped else "done"
    print(f"{ended}: best PSNR {result.psnr:.2f} dB at step {result.best_step}; wrote {folder / 'projected.png'}, "
          f"{folder / 'projected_w.npy'}")
    if recorder is not None:
        print(f"video: {recorder.status().describe()}")
    return 0


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32))
    return buffer.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
