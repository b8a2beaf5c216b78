"""Frames from the app to the viewer process through shared memory, with no copy through a pipe.

Three slots: the app writes the next frame into a slot the viewer is not reading, then publishes it by writing
the slot's header last. The viewer takes the newest published frame. A header is (sequence, width, height,
channels); a slot holds at most `capacity` bytes of RGBA.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

SLOTS = 3
HEADER = struct.Struct("<QIII")          # sequence, width, height, channels
HEADER_BYTES = 64                        # one cache line per header, so slots do not share one
DEFAULT_CAPACITY = 4096 * 4096 * 4       # a 4096x4096 RGBA frame (a 1024 px output with a wide layer grid fits)


@dataclass(frozen=True)
class Frame:
    sequence: int
    pixels: np.ndarray      # uint8 [H, W, 4]


class SharedFrames:
    """One shared block: SLOTS headers, then SLOTS pixel areas."""

    def __init__(self, name: str | None = None, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        size = SLOTS * (HEADER_BYTES + capacity)
        if name is None:
            self.memory = shared_memory.SharedMemory(create=True, size=size)
            self.owner = True
            self.memory.buf[:SLOTS * HEADER_BYTES] = bytes(SLOTS * HEADER_BYTES)
        else:
            self.memory = shared_memory.SharedMemory(name=name)
            self.owner = False
        self.name = self.memory.name
        self.sequence = 0
        self._last_read = 0

    def _header_offset(self, slot):
        return slot * HEADER_BYTES

    def _pixels_offset(self, slot):
        return SLOTS * HEADER_BYTES + slot * self.capacity

    def write(self, rgba: np.ndarray) -> int:
        """Publish a uint8 [H, W, 4] frame; frames larger than the capacity are shown every other pixel."""
        while rgba.nbytes > self.capacity:
            rgba = rgba[::2, ::2]
        rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        self.sequence += 1
        slot = self.sequence % SLOTS
        start = self._pixels_offset(slot)
        self.memory.buf[start:start + rgba.nbytes] = rgba.reshape(-1).data
        height, width, channels = rgba.shape
        HEADER.pack_into(self.memory.buf, self._header_offset(slot), self.sequence, width, height, channels)
        return self.sequence

    def read_newest(self) -> Frame | None:
        """The newest frame published since the last call, or None."""
        best, best_slot = self._last_read, None
        for slot in range(SLOTS):
            sequence, *_ = HEADER.unpack_from(self.memory.buf, self._header_offset(slot))
            if sequence > best:
                best, best_slot = sequence, slot
        if best_slot is None:
            return None
        sequence, width, height, channels = HEADER.unpack_from(self.memory.buf, self._header_offset(best_slot))
        start = self._pixels_offset(best_slot)
        pixels = np.frombuffer(self.memory.buf, np.uint8, count=width * height * channels, offset=start)
        self._last_read = sequence
        return Frame(sequence, pixels.reshape(height, width, channels).copy())

    def close(self):
        self.memory.close()
        if self.owner:
            try:
                self.memory.unlink()
            except FileNotFoundError:
                pass
