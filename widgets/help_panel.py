"""Help: the viewer's keyboard and mouse shortcuts."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from .panel import Panel

SHORTCUTS = (
    ("left drag", "move the latent through seed space"),
    ("right drag", "pan"),
    ("scroll, + / -", "zoom in / out (integer steps)"),
    ("0 / 1", "fit to window / 1:1"),
    ("left / right", "previous / next seed"),
    ("up / down", "truncation psi +0.1 / -0.1"),
    ("space", "animate on / off"),
    ("l", "layer view on / off (last selected layer)"),
    ("n", "noise mode: const -> random -> none"),
    ("s", "screenshot"),
    ("r", "record / stop"),
    ("f, F11", "fullscreen"),
    ("drop a file", "load that network"),
    ("escape, q", "quit"),
)


class HelpPanel(Panel):
    title = "Help"

    def open_by_default(self):
        return False

    def build_items(self):
        with dpg.table(header_row=False):
            dpg.add_table_column()
            dpg.add_table_column()
            for key, action in SHORTCUTS:
                with dpg.table_row():
                    dpg.add_text(key)
                    dpg.add_text(action)
