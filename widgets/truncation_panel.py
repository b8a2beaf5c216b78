"""Truncation: psi from -1 to 2 and the cutoff (the w indices it applies to)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import PSI_RANGE

from .panel import Panel


class TruncationPanel(Panel):
    title = "Truncation"
    sections = ("truncation",)

    def build_items(self):
        self.psi_tag = dpg.add_slider_float(label="psi", min_value=PSI_RANGE[0], max_value=PSI_RANGE[1],
                                            width=self.layout.slider_width,
                                            callback=lambda _, v: self.set("truncation", "psi", v))
        with dpg.group(horizontal=True):
            self.all_tag = dpg.add_checkbox(label="all layers", callback=self.on_all)
            self.cutoff_tag = dpg.add_slider_int(label="cutoff", min_value=0, max_value=1,
                                                 width=self.layout.number_width * 2,
                                                 callback=lambda _, v: self.set("truncation", "cutoff", v))

    def on_all(self, sender, value):
        facts = self.session.facts
        self.set("truncation", "cutoff", None if value else (facts.num_ws if facts else 0))

    def refresh(self):
        t = self.session.truncation
        facts = self.session.facts
        self.put(self.psi_tag, t.psi)
        dpg.configure_item(self.cutoff_tag, max_value=facts.num_ws if facts else 1, enabled=t.cutoff is not None)
        self.put(self.all_tag, t.cutoff is None)
        # "All layers" is a cutoff at num_ws: the (disabled) slider says so instead of a stale or zero value.
        self.put(self.cutoff_tag, t.cutoff if t.cutoff is not None else (facts.num_ws if facts else 0))
