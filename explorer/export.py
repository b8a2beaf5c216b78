"""Screenshots and recordings that anyone can reproduce.

- Files are never overwritten: every name is reserved with O_EXCL before anything is written, and content
  goes to a temporary file that replaces the reserved (empty, ours) one.
- A screenshot PNG carries the session state JSON in an iTXt chunk; `read_state_from_png` gives it back, so
  `stylegan-explorer --state shot.png` reopens the same view.
- Recorders take rendered frames at a fixed frame rate (a video is smooth however slow rendering is) and keep
  their file playable at every frame boundary: MP4 is written fragmented (one fragment a frame), GIF ends with
  its trailer after every frame, PNG frames are renamed into place whole. A write error (full disk, folder
  gone) stops the recorder and is reported in `error`; what was written stays.
"""
from __future__ import annotations

import errno
import io
import json
import os
import shlex
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, PngImagePlugin

STATE_CHUNK_KEY = "stylegan-explorer-state"
RECORDING_FORMATS = ("mp4", "gif", "frames")
# How many numbered names to try before giving up on a folder (a folder with this many shots is unusual).
MAX_NAME_ATTEMPTS = 100_000


class ExportError(Exception):
    """An export that could not be done; the message says why in words a user can act on."""


def describe_os_error(error: OSError, path) -> str:
    if error.errno == errno.ENOSPC:
        return f"the disk is full while writing {path}"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"no permission to write {path}"
    if error.errno == errno.ENOENT:
        return f"the folder of {path} does not exist"
    return f"cannot write {path}: {error.strerror or error}"


# -- names that never overwrite ------------------------------------------------------------------------------------

def reserve_path(folder, stem: str, suffix: str) -> Path:
    """Create and return `folder/stem-NNNN.suffix` with the lowest free number; two writers never get the same."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(describe_os_error(error, folder))
    for number in range(1, MAX_NAME_ATTEMPTS):
        path = folder / f"{stem}-{number:04d}{suffix}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        except OSError as error:
            raise ExportError(describe_os_error(error, path))
        os.close(fd)
        return path
    raise ExportError(f"no free file name left for {stem}-*{suffix} in {folder}")


def reserve_exact(path) -> Path:
    """Create `path` if it does not exist yet; refuse if it does."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ExportError(f"{path} exists; not overwriting it")
    except OSError as error:
        raise ExportError(describe_os_error(error, path))
    os.close(fd)
    return path


def _replace_reserved(reserved: Path, data: bytes) -> None:
    temporary = reserved.with_name(f".{reserved.name}.partial")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, reserved)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ExportError(describe_os_error(error, reserved))


# -- screenshots ---------------------------------------------------------------------------------------------------

def png_bytes(image: np.ndarray, state_json: str | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if state_json is not None:
        info.add_itxt(STATE_CHUNK_KEY, state_json, zip=True)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_screenshot(image: np.ndarray, folder, state_json: str | None = None, stem: str = "shot") -> Path:
    """Write a uint8 HWC image as the next free `stem-NNNN.png` in `folder`, with the state in a text chunk."""
    data = png_bytes(image, state_json)
    path = reserve_path(folder, stem, ".png")
    try:
        _replace_reserved(path, data)
    except ExportError:
        path.unlink(missing_ok=True)
        raise
    return path


def read_state_from_png(path) -> str | None:
    """The session state JSON a screenshot carries, or None for a PNG without one."""
    try:
        with Image.open(path) as image:
            image.load()
            text = getattr(image, "text", {}) or {}
    except (OSError, SyntaxError) as error:
        raise ExportError(f"{path} is not a readable PNG ({error})")
    value = text.get(STATE_CHUNK_KEY)
    return str(value) if value is not None else None


def save_latents(ws: np.ndarray, folder, stem: str = "latents") -> Path:
    """The current w ([w_dim]) or W+ ([num_ws, w_dim]) as the next free .npy."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(ws, dtype=np.float32))
    path = reserve_path(folder, stem, ".npy")
    _replace_reserved(path, buffer.getvalue())
    return path


@dataclass(frozen=True)
class ReproduceCommand:
    command: str
    exact: bool             # False: the view uses controls that `render` cannot express
    missing: tuple[str, ...]


def reproduce_command(request, pkl: str, state_file: str | None = None) -> ReproduceCommand:
    """The `stylegan-explorer render ...` line that reproduces a RenderRequest's image, and what it leaves out."""
    seeds = [seed for seed, weight in request.seed_weights if weight > 0]
    missing = []
    if len(seeds) != 1:
        missing.append("a blend of seeds (a dragged, fractional latent position)")
    if any(s is not None for s in request.layer_seeds):
        missing.append("style mixing")
    if request.w_copies or request.w_offsets:
        missing.append("per-layer W+ edits")
    if request.style_deltas:
        missing.append("style-channel edits")
    if request.noise_strength != 1.0 or request.layer_noise_strength:
        missing.append("noise strengths")
    if request.noise_mode == "random":
        missing.append("the noise seed")
    parts = ["stylegan-explorer", "render", "--pkl", pkl, "--seeds", str(seeds[0] if seeds else 0),
             "--trunc", f"{request.truncation_psi:g}"]
    if request.truncation_cutoff is not None:
        parts += ["--trunc-cutoff", str(request.truncation_cutoff)]
    parts += ["--noise-mode", request.noise_mode]
    if request.class_index is not None:
        parts += ["--class", str(request.class_index)]
    parts += ["--outdir", "out"]
    command = " ".join(shlex.quote(p) for p in parts)
    if missing and state_file:
        command += f"   # not expressible: {', '.join(missing)}; reopen exactly with: stylegan-explorer " \
                   f"--state {shlex.quote(str(state_file))}"
    return ReproduceCommand(command, not missing, tuple(missing))


# -- recordings ----------------------------------------------------------------------------------------------------

def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sizes: pad one black row/column where needed (never resize)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, [(0, h % 2), (0, w % 2), (0, 0)])


def _rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, not {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


class Recorder:
    """Base: a file (or folder) written frame by frame at a fixed frame rate.

    `write(frame)` returns False once the recorder has failed; `error` then says why. `frames_written` counts
    frames that are completely in the file.
    """
    suffix = ""

    def __init__(self, path: Path, fps: float):
        if not fps > 0:
            raise ExportError(f"frame rate must be positive, not {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.frames_written = 0
        self.error: str | None = None
        self.closed = False
        self.size: tuple[int, int] | None = None   # (width, height) of the first frame

    def write(self, frame: np.ndarray) -> bool:
        if self.error or self.closed:
            return False
        frame = _rgb(frame)
        if self.size is None:
            self.size = (frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != self.size:
            self.error = f"frame size changed from {self.size[0]}x{self.size[1]} to {frame.shape[1]}x{frame.shape[0]}"
            return False
        try:
            self._write(frame)
        except OSError as error:
            self.error = describe_os_error(error, self.path)
            return False
        except ExportError as error:
            self.error = str(error)
            return False
        self.frames_written += 1
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._close()
        except OSError as error:
            self.error = self.error or describe_os_error(error, self.path)

    @property
    def progress(self) -> str:
        seconds = self.frames_written / self.fps
        state = f"failed: {self.error}" if self.error else ("done" if self.closed else "recording")
        return f"{self.frames_written} frames ({seconds:.1f} s) to {self.path}: {state}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, frame):
        raise NotImplementedError

    def _close(self):
        pass


class Mp4Recorder(Recorder):
    """H.264 through the ffmpeg that imageio-ffmpeg ships, as fragmented MP4: every frame is its own keyframe
    fragment (no lookahead, no B-frames), so a file cut off at any point plays up to its last whole frame."""
    suffix = ".mp4"

    def __init__(self, path: Path, fps: float, crf: int = 18):
        super().__init__(path, fps)
        self.crf = crf
        self._pipe = None

    def _start(self, width, height):
        try:
            import imageio_ffmpeg
            imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as error:  # the encoder is missing or cannot run
            raise ExportError(f"no H.264 encoder: imageio-ffmpeg's ffmpeg is not available ({error})")
        self._pipe = imageio_ffmpeg.write_frames(
            str(self.path), (width, height), fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
            macro_block_size=1, quality=None, ffmpeg_log_level="error",
            output_params=["-crf", str(self.crf), "-tune", "zerolatency", "-bf", "0", "-g", "1",
                           "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-flush_packets", "1"])
        self._pipe.send(None)

    def _write(self, frame):
        frame = pad_to_even(frame)
        if self._pipe is None:
            self._start(frame.shape[1], frame.shape[0])
        try:
            self._pipe.send(frame.tobytes())
        except (BrokenPipeError, RuntimeError, OSError) as error:
            raise ExportError(f"the encoder stopped while writing {self.path}: {error}")

    def _close(self):
        if self._pipe is not None:
            try:
                self._pipe.close()
            except RuntimeError as error:
                self.error = self.error or f"the encoder failed to finish {self.path}: {error}"


def _gif_frame_parts(frame: np.ndarray) -> tuple[bytes, bytes, int]:
    """(colour table, LZW image data, table size code) of one frame quantised with Pillow's fast octree."""
    image = Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    # Not interlaced: the frame's rows are then stored top to bottom, which the descriptor we write says.
    image.save(buffer, format="GIF", interlace=False)
    data = buffer.getvalue()
    packed = data[10]
    size_code = packed & 0x07
    table_end = 13 + (3 * (2 ** (size_code + 1)) if packed & 0x80 else 0)
    table = data[13:table_end]
    position = table_end
    while data[position] == 0x21:          # skip extension blocks: label, then sub-blocks up to a 0 length
        position += 2
        while data[position]:
            position += data[position] + 1
        position += 1
    if data[position] != 0x2C:
        raise ExportError("unexpected GIF layout from Pillow")
    descriptor_packed = data[position + 9]
    if descriptor_packed & 0x40:
        raise ExportError("Pillow wrote an interlaced GIF frame")
    position += 10
    if descriptor_packed & 0x80:           # a local table: it, not the global one, describes this frame
        size_code = descriptor_packed & 0x07
        local_end = position + 3 * (2 ** (size_code + 1))
        table, position = data[position:local_end], local_end
    image_data = data[position:data.rindex(b"\x3b")]
    return table, image_data, size_code


class GifRecorder(Recorder):
    """Animated GIF written frame by frame, each with its own colour table; the trailer byte follows every frame
    (and is overwritten by the next), so the file is a complete GIF after each frame."""
    suffix = ".gif"

    def __init__(self, path: Path, fps: float, loop: int = 0):
        super().__init__(path, fps)
        self.loop = loop
        self._file = None
        # GIF delays are in hundredths of a second.
        self.delay = max(int(round(100 / self.fps)), 1)

    def _write(self, frame):
        table, image_data, size_code = _gif_frame_parts(frame)
        height, width = frame.shape[:2]
        if self._file is None:
            self._file = open(self.path, "r+b")
            self._file.truncate(0)
            header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x70, 0, 0)
            netscape = b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", self.loop) + b"\x00"
            self._file.write(header + netscape)
        control = b"\x21\xf9\x04\x00" + struct.pack("<H", self.delay) + b"\x00\x00"
        descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0x80 | size_code)
        self._file.write(control + descriptor + table + image_data + b"\x3b")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.seek(-1, os.SEEK_CUR)   # the next frame replaces the trailer

    def _close(self):
        if self._file is not None:
            self._file.close()


class FramesRecorder(Recorder):
    """A folder of numbered PNG frames, each renamed into place only when complete."""
    suffix = ""

    def _write(self, frame):
        if self.frames_written == 0:
            self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"frame{self.frames_written + 1:06d}.png"
        if target.exists():
            raise ExportError(f"{target} exists; not overwriting it")
        temporary = self.path / f".{target.name}.partial"
        temporary.write_bytes(png_bytes(frame))
        os.replace(temporary, target)


def open_recorder(kind: str, folder=None, fps: float = 30, path=None, stem: str = "recording") -> Recorder:
    """A recorder of `kind` ('mp4', 'gif', 'frames') at `path`, or at the next free name in `folder`."""
    classes = {"mp4": Mp4Recorder, "gif": GifRecorder, "frames": FramesRecorder}
    if kind not in classes:
        raise ExportError(f"recording format must be one of {', '.join(RECORDING_FORMATS)}, not {kind!r}")
    cls = classes[kind]
    if path is not None:
        path = Path(path)
        if kind == "frames":
            if path.exists():
                raise ExportError(f"{path} exists; not overwriting it")
            path.mkdir(parents=True)
        else:
            reserve_exact(path)
    elif kind == "frames":
        reserved = reserve_path(folder, stem, ".frames")   # reserve the name, then make it a folder
        reserved.unlink()
        path = reserved
        path.mkdir()
    else:
        path = reserve_path(folder, stem, cls.suffix)
    return cls(path, fps)


def record(frames: Iterable[np.ndarray], recorder: Recorder) -> Recorder:
    with recorder:
        for frame in frames:
            if not recorder.write(frame):
                break
    return recorder


def read_state_file(path) -> str:
    """The session JSON from a .json file or from a screenshot PNG that carries one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error.strerror or error}")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        text = read_state_from_png(path)
        if text is None:
            raise ExportError(f"{path} is a PNG without a stylegan-explorer state")
        return text
    try:
        text = data.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExportError(f"{path} is not a session file (JSON): {error}")
    return text


def add_video_command(subparsers) -> None:
    from .video import add_arguments, command_video
    parser = subparsers.add_parser("video", help="render a latent walk, noise loop, psi or style sweep to video")
    add_arguments(parser)
    parser.set_defaults(handler=command_video)
