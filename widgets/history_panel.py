"""History: undo and redo of every change to the session (also Ctrl+Z / Ctrl+Shift+Z in both windows)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from .panel import Panel


class HistoryPanel(Panel):
    title = "History"
    status_fields = ("undo_label", "redo_label")

    def build_items(self):
        with dpg.group(horizontal=True):
            self.undo_tag = dpg.add_button(label="Undo", callback=lambda: self.controller.undo(), tag="history.undo")
            self.redo_tag = dpg.add_button(label="Redo", callback=lambda: self.controller.redo(), tag="history.redo")
        self.label_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)

    def refresh(self):
        status = self.controller.status
        dpg.configure_item(self.undo_tag, enabled=status.undo_label is not None)
        dpg.configure_item(self.redo_tag, enabled=status.redo_label is not None)
        lines = ([f"undo: {status.undo_label}"] if status.undo_label else []) + \
                ([f"redo: {status.redo_label}"] if status.redo_label else [])
        self.put(self.label_tag, "\n".join(lines) or "nothing to undo")
