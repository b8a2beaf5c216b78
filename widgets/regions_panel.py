"""Regions: the style channels that act on a part of the image (StyleSpace-like). Shift + drag a rectangle on
the viewer; the best channels come back as sliders of the style-channel editor."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from .panel import Panel

OFFERED = 8                  # the best channels offered as sliders
DELTA_SLIDER = 10.0


class RegionsPanel(Panel):
    title = "Regions"
    sections = ("styles",)
    status_fields = ("region", "analysis", "analysis_error")

    def open_by_default(self):
        return False

    def build_items(self):
        self.info_tag = dpg.add_text("Shift + drag on the image to choose a region.", wrap=self.layout.text_wrap,
                                     color=self.layout.note_color)
        self.sliders_group = dpg.add_group()
        self._offered = None

    def refresh(self):
        status = self.controller.status
        ranking = status.region
        if status.analysis is not None and status.analysis.name == "region":
            self.put(self.info_tag, "ranking the style channels ...")
        elif status.analysis_error and status.analysis_error.startswith("region"):
            self.put(self.info_tag, f"failed: {status.analysis_error}")
        elif ranking is not None:
            r = ranking.rectangle
            self.put(self.info_tag, f"rows {r.top}-{r.bottom - 1}, columns {r.left}-{r.right - 1}: the channels "
                                    f"that move it most, inside over outside")
        offered = tuple(ranking.top(OFFERED)) if ranking is not None else ()
        if offered != self._offered:
            self._offered = offered
            dpg.delete_item(self.sliders_group, children_only=True)
            for index, unit in enumerate(offered):
                dpg.add_slider_float(label=f"{unit.layer} s[{unit.channel}]  x{unit.ratio:.1f}",
                                     parent=self.sliders_group, tag=f"regions.slider.{index}",
                                     min_value=-DELTA_SLIDER, max_value=DELTA_SLIDER, width=self.layout.slider_width,
                                     user_data=(unit.layer, unit.channel), callback=self.on_slider)
        deltas = {(d.layer, d.channel): d.delta for d in self.session.styles.style_deltas}
        for index, unit in enumerate(offered):
            self.put(f"regions.slider.{index}", deltas.get((unit.layer, unit.channel), 0.0))

    def on_slider(self, sender, value, unit):
        layer, channel = unit
        self.call(self.session.styles.set_style_delta, layer, channel, value, key=("regions", layer, channel))
