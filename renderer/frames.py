"""Frames from the app to the viewer process through shared memory, without copies through a pipe.

    ring = FrameRing.create(capacity=1024 * 1024 * 4)    # app side; ring.name goes to the viewer
    ring.write(rgb, FrameMeta(...))                       # app: never blocks, never waits for the reader
    view = FrameRing.attach(name)                         # viewer
    frame = view.read_newer(last_seq)                     # viewer: a copy of the newest frame, or None

Three slots: the writer fills a slot that is neither the newest published one nor the one the reader says it
is copying, so writing never waits and the reader always finds a whole frame. Each slot carries a sequence
number before and after its pixels (a seqlock): a copy that raced a write is detected and dropped, never shown.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

SLOTS = 3
MAGIC = 0x5347_4558_504C_3031          # identifies a segment made by this module
_HEADER_WORDS = 8                      # ring header: magic, slots, capacity, newest slot + 1, newest seq, reading + 1
_SLOT_WORDS = 8                        # per slot: begin seq, end seq, height, width, published ns, output w, h, ms
_HEADER_BYTES = (_HEADER_WORDS + SLOTS * _SLOT_WORDS) * 8
CHANNELS = 4                           # RGBA8: the texture upload fast path (GUI_NOTES: RGB is 7x slower)
MICROSECONDS = 1000                    # render time is stored in whole microseconds


@dataclass(frozen=True)
class FrameMeta:
    """What travels with a frame. output_width/height: the generator's output occupies that rectangle at the
    top left of the frame (the rest is the layer view beside it); render_ms: how long the frame took."""
    output_width: int = 0
    output_height: int = 0
    render_ms: float = 0.0


@dataclass(frozen=True)
class Frame:
    seq: int
    pixels: np.ndarray       # uint8 [H, W, 4]
    meta: FrameMeta
    published_ns: int        # time.monotonic_ns() when it was published (same clock in every process)


class FrameRing:
    """A shared-memory segment of SLOTS frames of up to `capacity` bytes each."""

    def __init__(self, memory: shared_memory.SharedMemory, owner: bool):
        self._memory = memory
        self._owner = owner
        self._words = np.ndarray((_HEADER_WORDS + SLOTS * _SLOT_WORDS,), dtype=np.uint64, buffer=memory.buf)
        if int(self._words[0]) != MAGIC:
            raise ValueError(f"shared memory {memory.name} is not a frame ring")
        self.capacity = int(self._words[2])
        self._seq = int(self._words[4])

    # -- making and opening -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, capacity: int) -> FrameRing:
        capacity = max(int(capacity), CHANNELS)
        memory = shared_memory.SharedMemory(create=True, size=_HEADER_BYTES + SLOTS * capacity)
        words = np.ndarray((_HEADER_WORDS + SLOTS * _SLOT_WORDS,), dtype=np.uint64, buffer=memory.buf)
        words[:] = 0
        words[0], words[1], words[2] = MAGIC, SLOTS, capacity
        del words
        return cls(memory, owner=True)

    @classmethod
    def attach(cls, name: str) -> FrameRing:
        memory = _attach_untracked(name)
        return cls(memory, owner=False)

    @property
    def name(self) -> str:
        return self._memory.name

    def fits(self, height: int, width: int) -> bool:
        return height * width * CHANNELS <= self.capacity

    def close(self) -> None:
        """Unmaps the segment; the owner also removes it (a reader that still has it mapped keeps its copy)."""
        self._words = None
        try:
            self._memory.close()
        except BufferError:
            pass   # a numpy view of a slot is still alive somewhere; the mapping goes with the process
        if self._owner:
            try:
                self._memory.unlink()
            except FileNotFoundError:
                pass

    # -- writer -------------------------------------------------------------------------------------------------

    def _slot_words(self, slot: int) -> np.ndarray:
        base = _HEADER_WORDS + slot * _SLOT_WORDS
        return self._words[base:base + _SLOT_WORDS]

    def _slot_pixels(self, slot: int, height: int, width: int) -> np.ndarray:
        offset = _HEADER_BYTES + slot * self.capacity
        return np.ndarray((height, width, CHANNELS), dtype=np.uint8, buffer=self._memory.buf, offset=offset)

    def write(self, image: np.ndarray, meta: FrameMeta = FrameMeta()) -> int:
        """Publishes a uint8 [H, W, 3] or [H, W, 4] image; returns its sequence number. ValueError when it does
        not fit (make a bigger ring)."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"frames are uint8 [H, W, 3 or 4], not {image.dtype} {list(image.shape)}")
        height, width = image.shape[:2]
        if not self.fits(height, width):
            raise ValueError(f"a {width}x{height} frame does not fit a ring of {self.capacity} bytes a slot")
        newest, reading = int(self._words[3]) - 1, int(self._words[5]) - 1
        slot = next(s for s in range(SLOTS) if s not in (newest, reading))
        self._seq += 1
        words = self._slot_words(slot)
        words[0] = self._seq                  # begin: the slot is being written
        pixels = self._slot_pixels(slot, height, width)
        pixels[:, :, :3] = image[:, :, :3]
        pixels[:, :, 3] = image[:, :, 3] if image.shape[2] == 4 else 255
        words[2], words[3] = height, width
        words[4] = time.monotonic_ns()
        words[5], words[6] = meta.output_width, meta.output_height
        words[7] = int(round(meta.render_ms * MICROSECONDS))
        words[1] = self._seq                  # end: the slot is whole
        self._words[4] = self._seq
        self._words[3] = slot + 1
        return self._seq

    # -- reader -------------------------------------------------------------------------------------------------

    def read_newer(self, last_seq: int) -> Frame | None:
        """A copy of the newest frame when its sequence number is above last_seq; None otherwise (or when the
        copy raced a write, which the next call retries)."""
        newest = int(self._words[3]) - 1
        if newest < 0 or int(self._words[4]) <= last_seq:
            return None
        self._words[5] = newest + 1
        try:
            words = self._slot_words(newest)
            begin = int(words[0])
            if begin != int(words[1]) or begin <= last_seq:
                return None
            height, width = int(words[2]), int(words[3])
            pixels = self._slot_pixels(newest, height, width).copy()
            meta = FrameMeta(int(words[5]), int(words[6]), int(words[7]) / MICROSECONDS)
            published = int(words[4])
            if int(words[0]) != begin:        # the writer came back to this slot while we copied
                return None
            return Frame(begin, pixels, meta, published)
        finally:
            self._words[5] = 0


def _attach_untracked(name: str) -> shared_memory.SharedMemory:
    """Opens an existing segment without handing it to this process's resource tracker: the creator owns it, and
    a reader's tracker would otherwise unlink it (or warn of a leak) when the reader exits."""
    try:
        return shared_memory.SharedMemory(name=name, track=False)   # Python 3.13+
    except TypeError:
        pass
    from multiprocessing import resource_tracker
    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register
