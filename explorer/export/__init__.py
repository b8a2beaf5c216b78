"""Screenshots and recordings that anyone can reproduce.

    files.py        names that never overwrite; contents published whole (temporary file + os.link)
    screenshot.py   PNG with the session state in it, reading it back, latents (.npy), session files
    reproduce.py    the `stylegan-explorer render ...` line for a request, or what it leaves out
    recording.py    recorders (fixed frame rate, errors as state, playable when cut off), PNG frames
    mp4.py, gif.py  the H.264 and GIF recorders
    video_command.py  `stylegan-explorer video`
"""
from .files import ExportError, describe_os_error, reserve_exact, reserve_path, write_file_at, write_new_file
from .gif import GifRecorder
from .mp4 import Mp4Recorder, pad_to_even
from .recording import (RECORDING_FORMATS, BackgroundRecorder, FramesRecorder, Recorder, RecordingStatus,
                        open_recorder, record)
from .reproduce import ReproduceCommand, reproduce_command
from .screenshot import (STATE_CHUNK_KEY, png_bytes, read_state_file, read_state_from_png, save_latents,
                         save_screenshot, save_screenshot_as, save_session)

__all__ = [
    "ExportError", "describe_os_error", "reserve_exact", "reserve_path", "write_file_at", "write_new_file",
    "GifRecorder", "Mp4Recorder", "pad_to_even", "RECORDING_FORMATS", "BackgroundRecorder", "FramesRecorder", "Recorder",
    "RecordingStatus", "open_recorder", "record", "ReproduceCommand", "reproduce_command", "STATE_CHUNK_KEY",
    "png_bytes", "read_state_file", "read_state_from_png", "save_latents", "save_screenshot",
    "save_screenshot_as", "save_session", "add_video_command",
]


def add_video_command(subparsers) -> None:
    """Adds `stylegan-explorer video` to the CLI's subparsers (explorer/cli.py calls this)."""
    from .video_command import add_video_command as add
    add(subparsers)
