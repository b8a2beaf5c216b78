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
        sources = self.session.mixing.sources
        # A section being replaced field by field (a session file) may for a moment name a source not there yet.
        return f"{k}: seed {sources[k]}" if k is not None and k < len(sources) else MAIN

    def set_range(self, k, start, stop):
        """Source k styles exactly the w indices [start, stop): those it styled outside go back to the main
        latent, the others keep their source."""
        mixing = self.session.mixing
        num_ws = self.session.facts.num_ws
        start, stop = sorted((min(max(int(start), 0), num_ws), min(max(int(stop), 0), num_ws)))
        layer_sources = [None if v == k else v for v in mixing.layer_sources]
        layer_sources += [None] * max(0, stop - len(layer_sources))
        layer_sources[start:stop] = [k] * (stop - start)
        self.set("mixing", "layer_sources", tuple(layer_sources))

    def refresh(self):
        """Rebuilds the rows only when their number changes (sources added or removed, another network), so a
        drag on a range slider is not cut short by its own change; otherwise updates the values in place."""
        mixing, facts = self.session.mixing, self.session.facts
        shape = (len(mixing.sources), facts.num_ws if facts else None, id(facts))
        if shape != getattr(self, "_shape", None):
            self._shape = shape
            self.build_rows()
        choices = [MAIN] + [self.source_label(k) for k in range(len(mixing.sources))]
        for k, seed in enumerate(mixing.sources):
            self.put(f"mixing.source.{k}", seed)
            if facts is not None:
                start, stop = mixing.range_of(k) or (0, 0)
                self.put(f"mixing.range.{k}", [start, stop, 0, 0])
        for i in range(facts.num_ws if facts else 0):
            k = mixing.layer_sources[i] if i < len(mixing.layer_sources) else None
            dpg.configure_item(f"mixing.layer.{i}", items=choices)
            self.put(f"mixing.layer.{i}", self.source_label(k))

    def build_rows(self):
        mixing, facts = self.session.mixing, self.session.facts
        dpg.delete_item(self.sources_group, children_only=True)
        dpg.delete_item(self.table_group, children_only=True)
        for k in range(len(mixing.sources)):
            with dpg.group(horizontal=True, parent=self.sources_group):
                dpg.add_input_int(label=f"source {k}", width=self.layout.number_width, step=0, on_enter=True,
                                  user_data=k, callback=lambda _, v, k: self.call(mixing.set_source_seed, k, v),
                                  tag=f"mixing.source.{k}")
                for preset in ("coarse", "middle", "fine"):
                    dpg.add_button(label=preset, callback=lambda _, __, u: self.call(mixing.apply_preset, *u),
                                   user_data=(preset, k), tag=f"mixing.preset.{preset}.{k}")
                dpg.add_button(label="x", callback=lambda _, __, k: self.call(mixing.remove_source, k), user_data=k,
                               tag=f"mixing.remove.{k}")
            if facts is not None:
                dpg.add_drag_intx(label=f"w range {k}", size=2, parent=self.sources_group, min_value=0,
                                  max_value=facts.num_ws, width=self.layout.slider_width, user_data=k,
                                  tag=f"mixing.range.{k}", callback=lambda _, v, k: self.set_range(k, v[0], v[1]))
        if facts is None:
            return
        with dpg.table(header_row=True, parent=self.table_group, borders_innerH=True):
            dpg.add_table_column(label="w")
            dpg.add_table_column(label="px")
            dpg.add_table_column(label="source")
            for i in range(facts.num_ws):
                with dpg.table_row():
                    dpg.add_text(str(i))
                    dpg.add_text(str(facts.w_resolution(i)))
                    dpg.add_combo([MAIN], width=self.layout.number_width * 2, callback=self.on_layer_source,
                                  user_data=i, tag=f"mixing.layer.{i}")

    def on_layer_source(self, sender, value, w_index):
        k = None if value == MAIN else int(value.split(":")[0])
        self.call(self.session.mixing.set_layer_source, w_index, k)
