"""Directions: principal directions of W (GANSpace), closed-form directions of the style weights (SeFa), or
imported boundaries (InterFaceGAN), each a slider, moving the chosen range of w indices; saved and loaded as sets
bound to the network."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import DIRECTION_STRENGTH_RANGE

from .panel import Panel

METHODS = ("sefa", "pca")
DEFAULT_COUNT = 10
SLIDERS = 10                 # the first directions get a slider each
STRENGTH_SLIDER = 10.0       # the slider spans +-this; typed values go to the state's full range


class DirectionsPanel(Panel):
    title = "Directions"
    sections = ("directions",)
    status_fields = ("direction_set", "analysis", "analysis_error")

    def open_by_default(self):
        return False

    def build_items(self):
        c = self.controller
        with dpg.group(horizontal=True):
            self.method_tag = dpg.add_radio_button(list(METHODS), horizontal=True, default_value=METHODS[0])
            self.count_tag = dpg.add_input_int(label="count", default_value=DEFAULT_COUNT, step=0,
                                               width=self.layout.number_width)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Compute", tag="directions.compute", callback=lambda: c.compute_directions(
                dpg.get_value(self.method_tag), dpg.get_value(self.count_tag)))
            dpg.add_button(label="Load...", callback=lambda: dpg.show_item(self.dialog_tag))
            dpg.add_button(label="Save", callback=c.save_directions)
            dpg.add_button(label="Reset", tag="directions.reset",
                           callback=lambda: self.call(self.session.directions.reset))
        self.range_tag = dpg.add_drag_intx(label="w range", size=2, min_value=0, width=self.layout.slider_width,
                                           callback=self.on_range, tag="directions.range")
        self.info_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)
        self.sliders_group = dpg.add_group()
        with dpg.file_dialog(show=False, callback=self.on_dialog, width=self.layout.dialog_width,
                             height=self.layout.dialog_height) as self.dialog_tag:
            for extension in (".npz", ".npy", ".*"):
                dpg.add_file_extension(extension)
        self._names = None

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path:
            self.controller.load_directions(path)

    def on_range(self, sender, value):
        facts = self.session.facts
        if facts is None or not self.session.directions.offsets:
            return
        start, stop = sorted((min(max(int(value[0]), 0), facts.num_ws - 1), min(max(int(value[1]), 1), facts.num_ws)))
        self.call(self.session.directions.set_range, start, max(stop, start + 1), key="directions.range")

    def build_sliders(self, offsets):
        dpg.delete_item(self.sliders_group, children_only=True)
        for index, offset in enumerate(offsets[:SLIDERS]):
            dpg.add_slider_float(label=offset.name, parent=self.sliders_group, tag=f"directions.slider.{index}",
                                 min_value=-STRENGTH_SLIDER, max_value=STRENGTH_SLIDER,
                                 width=self.layout.slider_width, user_data=offset.name,
                                 callback=lambda _, v, name: self.call(self.session.directions.set_strength, name,
                                                                       v, key=("directions", name)))

    def refresh(self):
        status, offsets, facts = self.controller.status, self.session.directions.offsets, self.session.facts
        names = tuple(o.name for o in offsets)
        if names != self._names:
            self._names = names
            self.build_sliders(offsets)
        for index, offset in enumerate(offsets[:SLIDERS]):
            self.put(f"directions.slider.{index}", offset.strength)
        if facts is not None:
            dpg.configure_item(self.range_tag, max_value=facts.num_ws)
            start = offsets[0].w_start if offsets else 0
            stop = (offsets[0].w_stop or facts.num_ws) if offsets else facts.num_ws
            self.put(self.range_tag, [start, stop, 0, 0])
        progress = status.analysis
        found = status.direction_set
        lines = []
        if progress is not None and progress.name.endswith("directions"):
            lines.append(f"computing {progress.name} ...")
        if status.analysis_error:
            lines.append(f"failed: {status.analysis_error}")
        if found is not None:
            lines.append(f"{found.method}: {len(found)} directions" +
                         (f", first explains {found.values[0]:.1%} of the variance" if found.method == "pca" else ""))
        lines.append(f"strengths {DIRECTION_STRENGTH_RANGE[0]:g} to {DIRECTION_STRENGTH_RANGE[1]:g} "
                     f"(ctrl+click a slider to type)")
        self.put(self.info_tag, "\n".join(lines))
