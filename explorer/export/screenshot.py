"""Screenshots that carry their session, saved latents and sessions, and reading a session back.

A screenshot is a PNG of the image at its native size with the session state JSON in an iTXt chunk under
STATE_CHUNK_KEY, so `stylegan-explorer --state shot-0001.png` reopens the view that made it. The chunk is read
back by walking the PNG's chunks directly (not through Pillow's text limits), checking each CRC, and
decompressing with a size bound: a damaged or hostile file gives an ExportError, never a huge allocation.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from .files import ExportError, write_file_at, write_new_file

STATE_CHUNK_KEY = "stylegan-explorer-state"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A session is a few kB to a few hundred kB (style edits of many channels); anything past this is not ours.
MAX_STATE_BYTES = 64 * 2 ** 20
# PNG chunk lengths are 31-bit: a length above this is a damaged file.
MAX_PNG_CHUNK = 2 ** 31 - 1


def _image_for_png(image: np.ndarray) -> Image.Image:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ExportError(f"a screenshot must be uint8 pixels, not {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ExportError(f"a screenshot must be H x W grey, RGB or RGBA, not shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ExportError("the image is empty (0 pixels)")
    return Image.fromarray(np.ascontiguousarray(array))


def png_bytes(image: np.ndarray, state_json: str | None = None) -> bytes:
    """A lossless PNG of a uint8 H x W (x 1/3/4) image, with `state_json` in a compressed iTXt chunk."""
    info = PngImagePlugin.PngInfo()
    if state_json is not None:
        info.add_itxt(STATE_CHUNK_KEY, state_json, zip=True)
    buffer = io.BytesIO()
    _image_for_png(image).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_screenshot(image: np.ndarray, folder, state_json: str | None = None, stem: str = "shot") -> Path:
    """Write the image as the next free `folder/stem-NNNN.png` with the session state in it; returns the path.
    Raises ExportError (unwritable folder, full disk) and then leaves no file behind."""
    return write_new_file(folder, stem, ".png", png_bytes(image, state_json))


def save_screenshot_as(image: np.ndarray, path, state_json: str | None = None) -> Path:
    """Write the image as exactly `path`; refuses (ExportError) when `path` exists."""
    return write_file_at(path, png_bytes(image, state_json))


def save_latents(ws: np.ndarray, folder, stem: str = "latents") -> Path:
    """The current w ([w_dim]) or W+ ([num_ws, w_dim]) as float32 in the next free `stem-NNNN.npy`."""
    ws = np.asarray(ws, dtype=np.float32)
    if ws.ndim not in (1, 2) or ws.size == 0:
        raise ExportError(f"latents must be [w_dim] or [num_ws, w_dim], not shape {ws.shape}")
    buffer = io.BytesIO()
    np.save(buffer, ws)
    return write_new_file(folder, stem, ".npy", buffer.getvalue())


def save_session(state_json: str, folder, stem: str = "session") -> Path:
    """The session JSON as the next free `stem-NNNN.json`."""
    return write_new_file(folder, stem, ".json", state_json.encode("utf-8"))


# -- reading the state back ----------------------------------------------------------------------------------------

def _bounded_inflate(data: bytes, path) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_STATE_BYTES + 1)
    except zlib.error as error:
        raise ExportError(f"{path}: the session chunk is damaged ({error})")
    if len(out) > MAX_STATE_BYTES:
        raise ExportError(f"{path}: the session chunk inflates to more than {MAX_STATE_BYTES:,} bytes; not read")
    return out


def _text_chunk_value(kind: bytes, data: bytes, path) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt, zTXt or iTXt chunk; None when it is malformed."""
    keyword, sep, rest = data.partition(b"\0")
    if not sep:
        return None
    key = keyword.decode("latin-1")
    if kind == b"tEXt":
        return key, rest.decode("latin-1")
    if kind == b"zTXt":
        if rest[:1] != b"\0":   # zlib is the only compression method PNG defines
            return None
        return key, _bounded_inflate(rest[1:], path).decode("latin-1")
    if len(rest) < 2:
        return None
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _language, sep1, rest = rest.partition(b"\0")
    _translated, sep2, text = rest.partition(b"\0")
    if not (sep1 and sep2) or (compressed and method != 0):
        return None
    raw = _bounded_inflate(text, path) if compressed else text
    try:
        return key, raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError(f"{path}: the session chunk is not UTF-8 text")


def read_state_from_png(path) -> str | None:
    """The session state JSON a screenshot carries; None for a PNG without one. ExportError for a file that is
    not a readable PNG (missing, foreign, truncated, damaged)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                raise ExportError(f"{path} is not a PNG file")
            while True:
                header = f.read(8)
                if len(header) == 0:
                    raise ExportError(f"{path} is truncated (no end chunk)")
                if len(header) < 8:
                    raise ExportError(f"{path} is truncated")
                length, kind = struct.unpack(">I4s", header)
                if length > MAX_PNG_CHUNK:
                    raise ExportError(f"{path} is damaged (chunk length {length})")
                if kind == b"IEND":
                    return None
                if kind not in (b"tEXt", b"zTXt", b"iTXt"):
                    f.seek(length + 4, io.SEEK_CUR)   # pixels and other chunks: skipped, not read
                    continue
                if length > MAX_STATE_BYTES:
                    raise ExportError(f"{path}: a text chunk of {length} bytes; not read")
                data, crc = f.read(length), f.read(4)
                if len(data) < length or len(crc) < 4:
                    raise ExportError(f"{path} is truncated")
                if zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
                    raise ExportError(f"{path} is damaged (a {kind.decode()} chunk fails its checksum)")
                found = _text_chunk_value(kind, data, path)
                if found is not None and found[0] == STATE_CHUNK_KEY:
                    return found[1]
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error.strerror or error}")


def read_state_file(path) -> str:
    """The session JSON from a .json file or from a screenshot PNG that carries one (ExportError otherwise)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error.strerror or error}")
    if head == PNG_SIGNATURE:
        text = read_state_from_png(path)
        if text is None:
            raise ExportError(f"{path} is a PNG without a stylegan-explorer session in it")
    else:
        try:
            if path.stat().st_size > MAX_STATE_BYTES:
                raise ExportError(f"{path} is larger than {MAX_STATE_BYTES // 2 ** 20} MiB: not a session file")
            text = path.read_bytes().decode("utf-8")
        except OSError as error:
            raise ExportError(f"cannot read {path}: {error.strerror or error}")
        except UnicodeDecodeError:
            raise ExportError(f"{path} is not a session file (not UTF-8 text)")
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise ExportError(f"{path} is not a session file (JSON): {error}")
    return text
