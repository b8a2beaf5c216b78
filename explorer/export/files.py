"""Files that never overwrite anything.

A new file is first written whole under a hidden temporary name in its folder, then given its real name with
os.link, which fails when the name exists: two writers (threads, processes, two explorer windows) can never take
the same name, a reader never sees a half-written file under its real name, and a crash leaves at most a hidden
`.NAME-*.partial` behind. Where the filesystem has no hard links (FAT, some network shares), the name is taken
with O_CREAT | O_EXCL instead and the complete temporary file replaces that empty file of ours.

Numbered names (`shot-0007.png`) continue after the highest number already in the folder, so names sort in the
order they were made even when the user deleted some.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
from pathlib import Path

# How many numbers to try past the highest one found before giving up (other writers racing for names).
MAX_NAME_ATTEMPTS = 10_000
NUMBER_DIGITS = 4
TEMPORARY_NAME_BYTES = 8


class ExportError(Exception):
    """An export that could not be done; the message says why in words a user can act on."""


def describe_os_error(error: OSError, path) -> str:
    """One line a user can act on, for an OSError met while writing `path`."""
    code = error.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"the disk is full (no space left while writing {path})"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to write {path}"
    if code == errno.EROFS:
        return f"{path} is on a read-only filesystem"
    if code == errno.ENOENT:
        return f"the folder of {path} does not exist"
    if code == errno.ENOTDIR:
        return f"a file is in the way: a part of {path} that should be a folder is a file"
    if code == errno.EISDIR:
        return f"{path} is a folder"
    return f"cannot write {path}: {error.strerror or error}"


def numbered_name(stem: str, number: int, suffix: str) -> str:
    return f"{stem}-{number:0{NUMBER_DIGITS}d}{suffix}"


def next_number(folder: Path, stem: str, suffix: str) -> int:
    """One past the highest number of `stem-N<suffix>` in `folder` (1 in an empty folder)."""
    pattern = re.compile(rf"{re.escape(stem)}-(\d+){re.escape(suffix)}\Z")
    try:
        names = os.listdir(folder)
    except OSError:
        return 1
    numbers = [int(match.group(1)) for match in map(pattern.match, names) if match]
    return max(numbers, default=0) + 1


def ensure_folder(folder) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ExportError(f"{folder} is a file, not a folder")
    except OSError as error:
        raise ExportError(describe_os_error(error, folder))
    return folder


def _create_exclusive(path: Path, directory: bool) -> None:
    """Create an empty file or folder at `path`; FileExistsError when anything is there."""
    if directory:
        os.mkdir(path)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def reserve_path(folder, stem: str, suffix: str, directory: bool = False) -> Path:
    """Take the next free `folder/stem-NNNN<suffix>` by creating it (an empty file, or an empty folder when
    `directory`), for writers that fill a file in place (recordings). No two callers ever get the same path."""
    folder = ensure_folder(folder)
    start = next_number(folder, stem, suffix)
    for number in range(start, start + MAX_NAME_ATTEMPTS):
        path = folder / numbered_name(stem, number, suffix)
        try:
            _create_exclusive(path, directory)
        except FileExistsError:
            continue
        except OSError as error:
            raise ExportError(describe_os_error(error, path))
        return path
    raise ExportError(f"no free name for {stem}-N{suffix} in {folder} after {MAX_NAME_ATTEMPTS} tries")


def reserve_exact(path, directory: bool = False) -> Path:
    """Create `path` (an empty file, or a folder) if nothing is there yet; refuse if something is."""
    path = Path(path)
    ensure_folder(path.parent)
    try:
        _create_exclusive(path, directory)
    except FileExistsError:
        raise ExportError(f"{path} exists; not overwriting it")
    except OSError as error:
        raise ExportError(describe_os_error(error, path))
    return path


def write_temporary(folder: Path, stem: str, data: bytes, durable: bool) -> Path:
    """`data` in a new hidden file in `folder` (same filesystem as the target, so linking it is atomic)."""
    while True:
        # Not tempfile.mkstemp: its files are private (0600); this one gets the user's usual permissions.
        temporary = folder / f".{stem}-{secrets.token_hex(TEMPORARY_NAME_BYTES)}.partial"
        try:
            fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:   # the content reaches the disk before its name does
                os.fsync(f.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def publish(temporary: Path, target: Path) -> bool:
    """Give the complete file `temporary` the name `target` unless something has that name; True if it did.
    `temporary` keeps its own name too when linked; the caller removes it."""
    try:
        os.link(temporary, target)
        return True
    except FileExistsError:
        return False
    except OSError:
        pass   # no hard links here: take the name exclusively, then move the content onto it
    try:
        _create_exclusive(target, directory=False)
    except FileExistsError:
        return False
    os.replace(temporary, target)
    return True


def write_new_file(folder, stem: str, suffix: str, data: bytes, durable: bool = True) -> Path:
    """Write `data` as the next free `folder/stem-NNNN<suffix>` and return its path; never overwrites."""
    folder = ensure_folder(folder)
    target = folder / numbered_name(stem, 1, suffix)
    temporary = None
    try:
        temporary = write_temporary(folder, stem, data, durable)
        start = next_number(folder, stem, suffix)
        for number in range(start, start + MAX_NAME_ATTEMPTS):
            target = folder / numbered_name(stem, number, suffix)
            if publish(temporary, target):
                return target
        raise ExportError(f"no free name for {stem}-N{suffix} in {folder} after {MAX_NAME_ATTEMPTS} tries")
    except OSError as error:
        raise ExportError(describe_os_error(error, target))
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def write_file_at(path, data: bytes, durable: bool = True) -> Path:
    """Write `data` as exactly `path`; refuses (ExportError) when `path` exists, and then changes nothing."""
    path = Path(path)
    folder = ensure_folder(path.parent)
    temporary = None
    try:
        temporary = write_temporary(folder, path.stem, data, durable)
        if not publish(temporary, path):
            raise ExportError(f"{path} exists; not overwriting it")
        return path
    except OSError as error:
        raise ExportError(describe_os_error(error, path))
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
