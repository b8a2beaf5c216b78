"""The table of recording formats: each format declared once, every entry opens its own writer at its suffix,
and the writers, the table and recording.py import one another in one direction only."""
import ast
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from explorer import export
from explorer.export import (RECORDING_FORMATS, ExportError, FramesRecorder, GifRecorder, Mp4Recorder, Recorder,
                             format_for_path, open_recorder, recording_format)
from explorer.export.recording_formats import FORMATS

EXPORT_FOLDER = Path(export.__file__).parent
FRAME_SIZE = (6, 8)   # height, width


def frame(value: int) -> np.ndarray:
    return np.full((*FRAME_SIZE, 3), value, dtype=np.uint8)


def test_table_lists_each_format_once_with_its_writer():
    assert RECORDING_FORMATS == ("mp4", "gif", "frames")
    assert len({entry.suffix for entry in FORMATS}) == len(FORMATS)
    assert {entry.kind: entry.writer for entry in FORMATS} == {
        "mp4": Mp4Recorder, "gif": GifRecorder, "frames": FramesRecorder}
    for entry in FORMATS:
        assert issubclass(entry.writer, Recorder)
        assert entry.writer.kind == entry.kind     # the status a writer reports names its table entry
    assert [entry.kind for entry in FORMATS if entry.is_folder] == ["frames"]


def test_unknown_format_is_one_clear_error(tmp_path):
    with pytest.raises(ExportError, match="one of mp4, gif, frames, not 'avi'"):
        recording_format("avi")
    with pytest.raises(ExportError, match="not 'avi'"):
        open_recorder("avi", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []          # nothing reserved for a refused format


def test_format_for_path_reads_the_suffix():
    assert format_for_path("out/clip.MP4").kind == "mp4"
    assert format_for_path("clip.gif").kind == "gif"
    assert format_for_path("clip_frames").kind == "frames"
    assert format_for_path("clip.frames").kind == "frames"   # a folder format is the default, never matched


@pytest.mark.parametrize("kind", ["gif", "frames", "mp4"])
def test_each_entry_records_at_its_suffix(tmp_path, kind):
    entry = recording_format(kind)
    recorder = open_recorder(kind, folder=tmp_path, fps=10, stem="clip")
    assert type(recorder) is entry.writer
    assert recorder.path == tmp_path / f"clip-0001{entry.suffix}"
    assert recorder.path.is_dir() == entry.is_folder
    for value in (0, 200):
        assert recorder.write(frame(value))
    recorder.close()
    assert recorder.error is None
    if entry.is_folder:
        pixels = [np.asarray(Image.open(path)) for path in sorted(recorder.path.iterdir())]
    else:
        pixels = list(iio.imiter(recorder.path))
    assert len(pixels) == 2
    means = [float(np.asarray(p)[..., :3].mean()) for p in pixels]
    assert means[0] < 5 and abs(means[1] - 200) < 5      # H.264 and the GIF palette are near, not exact


def _relative_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_recording_modules_import_in_one_direction():
    imports = {path.stem: _relative_imports(path) for path in EXPORT_FOLDER.glob("*.py")}
    # recording.py no longer imports the writers; the writers know only the shared base.
    assert not {"gif", "mp4"} & imports["recording"]
    for writer in ("gif", "mp4", "frames"):
        assert not {"recording", "recording_formats"} & imports[writer]
    assert imports["recorder"] <= {"files"}

    def reaches(start: str, seen: tuple[str, ...]) -> None:
        for module in imports.get(start, ()):
            assert module not in seen, f"import cycle: {' -> '.join(seen + (module,))}"
            reaches(module, seen + (module,))

    for module in imports:
        reaches(module, (module,))
