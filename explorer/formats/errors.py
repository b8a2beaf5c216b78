"""The one error a loader raises: its message is what the user reads, in one line."""
from __future__ import annotations

import reprlib

# Messages are cut here: a value quoted from a hostile file may be long.
MAX_MESSAGE_CHARS = 400

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 4
_short.maxlevel = 2


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` with its line breaks and runs of blanks folded into single spaces, cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def quote(value) -> str:
    """A short repr of a value from a file, safe to put in a message whatever the value is."""
    try:
        return one_line(_short.repr(value), 80)
    except Exception:   # a repr that itself fails must not hide the real error
        return f"<{type(value).__name__}>"


class NetworkLoadError(Exception):
    """A network file could not be loaded; str(error) says why, in one line a user can act on."""

    def __init__(self, message: str):
        super().__init__(one_line(message))
