"""H.264 MP4 through the ffmpeg that imageio-ffmpeg ships, playable up to its last frame if cut off.

ffmpeg writes fragmented MP4: an empty `moov` header first, then one `moof` + `mdat` fragment per frame
(`frag_every_frame`), each flushed as soon as it is muxed. x264 runs with `zerolatency` (no lookahead, no
B-frames), so a frame reaches the file as soon as the next one arrives (the last one when the file is closed).
A file cut off at any point (the app and ffmpeg killed) plays up to its last complete fragment; `frames_saved`
counts those fragments in the file as it grows. Keyframes come every KEYFRAME_SECONDS, so seeking stays cheap.

ffmpeg runs in its own session: Ctrl-C in the terminal or the app dying does not kill it, it reads the frames
already sent, then the end of its input, and finishes the file.

Sizes: yuv420p stores colour at half resolution, so width and height must be even; an odd frame is padded with
one black row or column (never resized), which every player plays.
"""
from __future__ import annotations

import collections
import os
import struct
import subprocess
import threading
from fractions import Fraction

import numpy as np

from .files import ExportError, describe_os_error
from .recorder import Recorder

KEYFRAME_SECONDS = 2.0
DEFAULT_CRF = 18                # visually lossless for x264
STDERR_LINES_KEPT = 20
CLOSE_TIMEOUT_S = 60.0          # ffmpeg only has to mux the last frame and the index
FPS_DENOMINATOR_LIMIT = 1001    # 29.97 = 30000/1001 stays exact


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Pad one black row / column where height / width is odd (yuv420p needs even sizes)."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, [(0, height % 2), (0, width % 2), (0, 0)])


def ffmpeg_executable() -> str:
    """The ffmpeg binary imageio-ffmpeg provides (or IMAGEIO_FFMPEG_EXE names); ExportError when there is none."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as error:   # ImportError, or RuntimeError when no binary exists for this platform
        raise ExportError(f"no H.264 encoder: the ffmpeg of imageio-ffmpeg is not available ({error}); "
                          f"install imageio-ffmpeg, or record GIF or PNG frames")


def count_complete_fragments(path, start: int = 0, count: int = 0) -> tuple[int, int]:
    """Walk the top-level MP4 boxes from byte `start`: (complete `mdat` boxes, offset of the first box not yet
    complete). Called again with the returned values, it reads only what was added since."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            while start + 8 <= size:
                f.seek(start)
                header = f.read(16)
                box_size, kind = struct.unpack(">I4s", header[:8])
                if box_size == 1 and len(header) == 16:
                    box_size = struct.unpack(">Q", header[8:16])[0]
                if box_size < 8 or start + box_size > size:
                    break   # size 0 (to the end of file) is only written at the end; or the box is still growing
                if kind == b"mdat":
                    count += 1
                start += box_size
    except OSError:
        pass
    return count, start


class Mp4Recorder(Recorder):
    """H.264 (yuv420p) in fragmented MP4 at a fixed frame rate."""
    kind = "mp4"

    def __init__(self, path, fps: float, crf: int = DEFAULT_CRF):
        super().__init__(path, fps)
        self.crf = int(crf)
        self._process: subprocess.Popen | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._stderr_reader: threading.Thread | None = None
        self._fragments = (0, 0)   # (complete fragments counted, where counting goes on)
        self._padded: tuple[int, int] | None = None
        self._finished = False

    @property
    def encoder_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def file_size(self) -> tuple[int, int] | None:
        return self._padded

    @property
    def frames_saved(self) -> int:
        count, offset = count_complete_fragments(self.path, self._fragments[1], self._fragments[0])
        self._fragments = (count, offset)
        return min(count, self.frames_written)

    def command(self, width: int, height: int) -> list[str]:
        fps = str(Fraction(self.fps).limit_denominator(FPS_DENOMINATOR_LIMIT))
        keyframe_interval = max(1, round(self.fps * KEYFRAME_SECONDS))
        return [ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", fps, "-i", "pipe:0",
                "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.crf), "-tune", "zerolatency",
                "-bf", "0", "-g", str(keyframe_interval),
                "-movflags", "frag_every_frame+empty_moov+default_base_moof", "-flush_packets", "1",
                "-f", "mp4", f"file:{self.path}"]

    def _start(self, width: int, height: int) -> None:
        command = self.command(width, height)
        own_session = {"start_new_session": True} if os.name == "posix" else \
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, **own_session)
        except OSError as error:
            raise ExportError(f"no H.264 encoder: {command[0]} does not start ({error.strerror or error})")
        self._stderr_reader = threading.Thread(target=self._read_stderr, name="ffmpeg-stderr", daemon=True)
        self._stderr_reader.start()

    def _read_stderr(self) -> None:
        for line in iter(self._process.stderr.readline, b""):
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(text)

    def _encoder_error(self) -> str:
        """Why ffmpeg stopped, from what it printed."""
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=2)
        said = " ".join(self._stderr)
        if "No space left" in said:
            return describe_os_error(OSError(28, "No space left on device"), self.path)
        if "Permission denied" in said:
            return f"no permission to write {self.path}"
        code = self._process.returncode if self._process is not None else None
        last = self._stderr[-1] if self._stderr else "it printed nothing"
        return f"the H.264 encoder stopped (exit code {code}) while writing {self.path}: {last}"

    def _write(self, frame):
        frame = pad_to_even(frame)
        if self._process is None:
            self._padded = (frame.shape[1], frame.shape[0])
            self._start(*self._padded)
        if self._process.poll() is not None:
            raise ExportError(self._encoder_error())
        try:
            self._process.stdin.write(frame.tobytes())
            self._process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self._wait(timeout=5)
            raise ExportError(self._encoder_error())

    def _wait(self, timeout: float) -> int | None:
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _close(self):
        process = self._process
        if process is None or self._finished:
            return
        self._finished = True
        try:
            process.stdin.close()   # end of input: ffmpeg muxes the last frame and finishes the file
        except OSError:
            pass
        code = self._wait(CLOSE_TIMEOUT_S)
        if code is None:
            process.kill()
            process.wait()
            self.error = self.error or (f"the H.264 encoder did not finish {self.path} within "
                                        f"{CLOSE_TIMEOUT_S:g} s; the file plays up to its last complete frame")
        elif code != 0:
            self.error = self.error or self._encoder_error()
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=2)
        process.stderr.close()
