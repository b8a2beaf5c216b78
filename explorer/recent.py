"""The recent-files list, kept in $XDG_CONFIG_HOME/stylegan-explorer/recent.json."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

RECENT_FILES_KEPT = 10


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "stylegan-explorer"


def read_recent_files() -> tuple[str, ...]:
    try:
        data = json.loads((config_dir() / "recent.json").read_text())
        return tuple(str(p) for p in data if isinstance(p, str))[:RECENT_FILES_KEPT]
    except (OSError, ValueError, TypeError):
        return ()


def write_recent_files(paths) -> None:
    folder = config_dir()
    temporary = folder / f".recent.json.{secrets.token_hex(6)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(list(paths)[:RECENT_FILES_KEPT]))
        os.replace(temporary, folder / "recent.json")
    except OSError:
        temporary.unlink(missing_ok=True)   # a read-only home only costs the recent list


def with_recent(paths: tuple[str, ...], path: str) -> tuple[str, ...]:
    return tuple(([path] + [p for p in paths if p != path])[:RECENT_FILES_KEPT])
