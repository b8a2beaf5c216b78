"""The viewer's keyboard and mouse shortcuts: one table for the viewer's help overlay, the Help panel and
docs/GUI.md. Keys travel to the app by name (messages.Key); the app decides what they do to the session."""
from __future__ import annotations

# GLFW key constant name (glfw.KEY_<NAME>) -> the name sent to the app.
KEY_NAMES = {
    "LEFT": "left", "RIGHT": "right", "UP": "up", "DOWN": "down", "SPACE": "space", "F": "f", "F11": "f",
    "H": "h", "F1": "h", "L": "l", "S": "s", "R": "r", "N": "n", "ESCAPE": "escape", "Q": "q",
    "EQUAL": "plus", "KP_ADD": "plus", "MINUS": "minus", "KP_SUBTRACT": "minus", "0": "0", "1": "1",
    "2": "2", "3": "3", "4": "4", "Z": "z", "Y": "y",
}

# (keys, what they do), in the order a newcomer needs them.
SHORTCUTS = (
    ("left drag", "move the latent through seed space"),
    ("right drag", "pan (when zoomed)"),
    ("shift + left drag", "select a region: its style channels (Regions panel)"),
    ("scroll, + / -", "zoom in / out in whole steps"),
    ("0 / 1 / 2..4", "fit to window / 1:1 / 2x..4x"),
    ("left / right", "previous / next seed"),
    ("up / down", "truncation psi +0.1 / -0.1"),
    ("space", "animate on / off"),
    ("ctrl+z / ctrl+shift+z", "undo / redo (also ctrl+y)"),
    ("l", "layer view on / off (the last layer chosen)"),
    ("n", "noise mode: const -> random -> none"),
    ("s", "screenshot"),
    ("r", "record / stop"),
    ("f, F11", "fullscreen on / off"),
    ("h, F1", "this help over the image"),
    ("escape", "leave fullscreen"),
    ("q", "quit"),
    ("drop a file", "load that network"),
)


def help_text() -> str:
    width = max(len(keys) for keys, _ in SHORTCUTS)
    return "\n".join(f"{keys:<{width}}  {action}" for keys, action in SHORTCUTS)
