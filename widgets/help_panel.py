"""Help: the viewer's keyboard and mouse shortcuts."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from renderer.shortcuts import SHORTCUTS

from .panel import Panel


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
