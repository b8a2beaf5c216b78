"""Animated GIF written frame by frame, a valid GIF at every instant.

Each frame is quantised on its own with Pillow's fast octree (256 colours in its own local colour table; the
default median cut took 25x longer, benchmarks/bench_gif.py) and appended as: graphic control extension, image
descriptor, local colour table, LZW data. The file always ends with the trailer byte ';'. A new frame is written
*after* the current trailer, followed by a new trailer, and only then is the old trailer replaced by the first
byte of the new frame: until that one-byte write, readers stop at the old trailer and see the frames before;
after it, they see the new frame too. Killed at any moment, the file holds every frame whose byte was flipped.
"""
from __future__ import annotations

import io
import os
import struct

import numpy as np
from PIL import Image

from .files import ExportError
from .recorder import Recorder

GIF_COLOURS = 256
# GIF delays are whole hundredths of a second, and browsers slow delays below 2 to 10: 50 fps at most.
MIN_DELAY_CS = 2
TRAILER = b";"
EXTENSION_INTRODUCER = 0x21
IMAGE_SEPARATOR = 0x2C


def _skip_sub_blocks(data: bytes, position: int) -> int:
    """Position after a chain of sub-blocks (length byte, bytes) ending with a 0 length."""
    while data[position]:
        position += data[position] + 1
    return position + 1


def gif_frame_parts(frame: np.ndarray) -> tuple[bytes, bytes, int]:
    """(colour table, LZW image data with its sub-blocks, table size code) of one RGB frame."""
    image = Image.fromarray(frame).quantize(GIF_COLOURS, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="GIF", interlace=False)
    data = buffer.getvalue()
    packed = data[10]                         # logical screen descriptor flags
    size_code = packed & 0x07
    position = 13
    table = b""
    if packed & 0x80:                         # Pillow stores the palette as the global table
        table_end = position + 3 * 2 ** (size_code + 1)
        table, position = data[position:table_end], table_end
    while data[position] == EXTENSION_INTRODUCER:
        position = _skip_sub_blocks(data, position + 2)
    if data[position] != IMAGE_SEPARATOR:
        raise ExportError("Pillow wrote a GIF layout this recorder does not know")
    descriptor_flags = data[position + 9]
    if descriptor_flags & 0x40:
        raise ExportError("Pillow wrote an interlaced GIF frame")
    position += 10
    if descriptor_flags & 0x80:               # a local table describes this frame instead
        size_code = descriptor_flags & 0x07
        table_end = position + 3 * 2 ** (size_code + 1)
        table, position = data[position:table_end], table_end
    if not table:
        raise ExportError("Pillow wrote a GIF frame without a colour table")
    start = position
    position = _skip_sub_blocks(data, position + 1)   # LZW minimum code size, then the data sub-blocks
    return table, data[start:position], size_code


class GifRecorder(Recorder):
    """Animated GIF, looping `loop` times (0: for ever); each frame with its own colour table."""
    kind = "gif"

    def __init__(self, path, fps: float, loop: int = 0, durable: bool = True):
        super().__init__(path, fps)
        self.loop = int(loop)
        self.durable = durable   # fsync each frame before linking it in: survives power loss too
        self.delay_cs = max(int(round(100 / self.fps)), MIN_DELAY_CS)
        self._file = None
        self._trailer_at = 0

    @property
    def playback_fps(self) -> float:
        return 100 / self.delay_cs

    def _start(self, width: int, height: int) -> None:
        self._file = open(self.path, "r+b")   # the empty file open_recorder reserved
        self._file.truncate(0)
        header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x70, 0, 0)   # 8-bit colour, no global table
        netscape = b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", self.loop) + b"\x00"
        self._file.write(header + netscape + TRAILER)
        self._file.flush()
        self._trailer_at = len(header) + len(netscape)

    def _write(self, frame):
        height, width = frame.shape[:2]
        if self._file is None:
            self._start(width, height)
        table, image_data, size_code = gif_frame_parts(frame)
        control = b"\x21\xf9\x04\x00" + struct.pack("<H", self.delay_cs) + b"\x00\x00"
        descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0x80 | size_code)
        block = control + descriptor + table + image_data
        f = self._file
        f.seek(self._trailer_at + 1)
        f.write(block[1:] + TRAILER)
        f.flush()
        if self.durable:
            os.fsync(f.fileno())
        f.seek(self._trailer_at)
        f.write(block[:1])                    # the frame is in from here on
        f.flush()
        self._trailer_at += len(block)

    def _close(self):
        if self._file is not None:
            f, self._file = self._file, None
            try:
                f.truncate(self._trailer_at + 1)   # drop a frame left half-written by a failed write
            finally:
                f.close()
