"""Style mixing: latent sources (seeds), a per-layer choice of source, coarse/middle/fine presets, and a
w-index range slider per source."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from .panel import Panel

MAIN = "main"


class MixingPanel(Panel):
    title = "Style mixing"
    sections = ("mixing",)

    def build_items(self):
        mixing = self.session.mixing
        with dpg.group(horizontal=True):
            self.new_seed_tag = dpg.add_input_int(label="seed", width=self.layout.number_width, step=0)
            dpg.add_button(label="add source", tag="mixing.add_source",
                           callback=lambda: self.call(mixing.add_source, dpg.get_value(self.new_seed_tag)))
            dpg.add_button(label="clear layers", tag="mixing.clear", callback=lambda: self.call(mixing.clear))
        self.sources_group = dpg.add_group()
        self.table_group = dpg.add_group()

    def source_label(self, k):
        return MAIN if k is None else f"{k}: seed {self.session.mixing.sources[k]}"

    def refresh(self):
        mixing, facts = self.session.mixing, self.session.facts
        dpg.delete_item(self.sources_group, children_only=True)
        dpg.delete_item(self.table_group, children_only=True)
        for k, seed in enumerate(mixing.sources):
            with dpg.group(horizontal=True, parent=self.sources_group):
                dpg.add_input_int(label=f"source {k}", default_value=seed, width=self.layout.number_width, step=0,
                                  user_data=k, callback=lambda _, v, k: self.call(mixing.set_source_seed, k, v))
                for preset in ("coarse", "middle", "fine"):
                    dpg.add_button(label=preset, callback=lambda _, __, u: self.call(mixing.apply_preset, *u),
                                   user_data=(preset, k))
                dpg.add_button(label="x", callback=lambda _, __, k: self.call(mixing.remove_source, k), user_data=k)
            if facts is not None:
                current = mixing.range_of(k) or (0, 0)
                dpg.add_drag_intx(label=f"w range {k}", size=2, parent=self.sources_group, min_value=0,
                                  max_value=facts.num_ws, default_value=[current[0], current[1], 0, 0],
                                  width=self.layout.slider_width, user_data=k,
                                  callback=lambda _, v, k: self.call(mixing.set_range, k, v[0], v[1]))
        if facts is None:
            return
        choices = [MAIN] + [self.source_label(k) for k in range(len(mixing.sources))]
        with dpg.table(header_row=True, parent=self.table_group, borders_innerH=True):
            dpg.add_table_column(label="w")
            dpg.add_table_column(label="px")
            dpg.add_table_column(label="source")
            for i in range(facts.num_ws):
                k = mixing.layer_sources[i] if i < len(mixing.layer_sources) else None
                with dpg.table_row():
                    dpg.add_text(str(i))
                    dpg.add_text(str(facts.w_resolution(i)))
                    dpg.add_combo(choices, default_value=self.source_label(k), width=self.layout.number_width * 2,
                                  callback=self.on_layer_source, user_data=i, tag=f"mixing.layer.{i}")

    def on_layer_source(self, sender, value, w_index):
        k = None if value == MAIN else int(value.split(":")[0])
        self.call(self.session.mixing.set_layer_source, w_index, k)
