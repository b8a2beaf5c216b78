"""Screenshots and recordings that anyone can reproduce.

    files.py        names that never overwrite; contents published whole (temporary file + os.link)
    screenshot.py   PNG with the session state in it, reading it back, latents (.npy), session files
    reproduce.py    the `stylegan-explorer render ...` line for a request, or what it leaves out
    recorder.py     what every recorder shares (fixed frame rate, errors as state, playable when cut off)
    mp4.py, gif.py, frames.py   the H.264, GIF and PNG-frames recorders
    recording_formats.py  the table of formats: kind, suffix, writer, each declared once
    recording.py    open_recorder, the background recorder, record()
"""
from .files import ExportError, describe_os_error, reserve_exact, reserve_path, write_file_at, write_new_file
from .frames import FramesRecorder
from .gif import GifRecorder
from .mp4 import Mp4Recorder, pad_to_even
from .recorder import Recorder, RecordingStatus
from .recording import BackgroundRecorder, open_recorder, record
from .recording_formats import RECORDING_FORMATS, RecordingFormat, format_for_path, recording_format
from .reproduce import ReproduceCommand, reproduce_command
from .screenshot import (STATE_CHUNK_KEY, png_bytes, read_state_file, read_state_from_png, save_latents,
                         save_screenshot, save_screenshot_as, save_session)

__all__ = [
    "ExportError", "describe_os_error", "reserve_exact", "reserve_path", "write_file_at", "write_new_file",
    "GifRecorder", "Mp4Recorder", "pad_to_even", "FramesRecorder", "Recorder", "RecordingStatus",
    "RECORDING_FORMATS", "RecordingFormat", "format_for_path", "recording_format", "BackgroundRecorder",
    "open_recorder", "record", "ReproduceCommand", "reproduce_command", "STATE_CHUNK_KEY", "png_bytes",
    "read_state_file", "read_state_from_png", "save_latents", "save_screenshot", "save_screenshot_as",
    "save_session",
]
