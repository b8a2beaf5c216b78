"""The recording formats, each declared once: its name, the suffix of its file (or folder), its writer.

Adding a format means one writer module (a `Recorder` subclass) and one line here; open_recorder, the video
command and the Capture panel's choices all read this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .files import ExportError
from .frames import FramesRecorder
from .gif import GifRecorder
from .mp4 import Mp4Recorder
from .recorder import Recorder


@dataclass(frozen=True)
class RecordingFormat:
    kind: str                    # the name users pick: 'mp4', 'gif', 'frames'
    suffix: str                  # of the file or folder a recording gets: '.mp4'
    writer: type[Recorder]
    is_folder: bool = False      # the recording is a folder of files rather than one file


FORMATS: tuple[RecordingFormat, ...] = (
    RecordingFormat("mp4", ".mp4", Mp4Recorder),
    RecordingFormat("gif", ".gif", GifRecorder),
    RecordingFormat("frames", ".frames", FramesRecorder, is_folder=True),
)
RECORDING_FORMATS = tuple(entry.kind for entry in FORMATS)


def recording_format(kind: str) -> RecordingFormat:
    """The format named `kind`; ExportError naming the known ones otherwise."""
    for entry in FORMATS:
        if entry.kind == kind:
            return entry
    raise ExportError(f"the recording format must be one of {', '.join(RECORDING_FORMATS)}, not {kind!r}")


def format_for_path(path, default: str = "frames") -> RecordingFormat:
    """The single-file format whose suffix `path` ends with (case-insensitive), else the format `default`."""
    suffix = Path(path).suffix.lower()
    for entry in FORMATS:
        if not entry.is_folder and entry.suffix == suffix:
            return entry
    return recording_format(default)
