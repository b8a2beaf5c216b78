"""Presets: a grid of bookmarks of the whole state. A click recalls one (one undo step), or morphs to it over the
chosen time; with "click stores" on, a click stores the current state there. OSC and MIDI reach the same presets
(/explorer/preset/N, /explorer/preset/store)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.presets import PresetError
from explorer.remote.live import remote_for

from .panel import Panel

GRID_COLUMNS = 4
MORPH_SLIDER_MAX_S = 10.0     # longer morphs: type the value (ctrl+click) or send it by OSC


class PresetsPanel(Panel):
    title = "Presets"
    status_fields = ("capture_message",)

    def build_items(self):
        self.remote = remote_for(self.controller)
        self.store_tag = dpg.add_checkbox(label="click stores", tag="presets.store")
        self.seconds_tag = dpg.add_slider_float(label="morph s", min_value=0.0, max_value=MORPH_SLIDER_MAX_S,
                                                width=self.layout.slider_width, tag="presets.seconds")
        self.slot_tags = []
        slots = len(self.remote.bank.slots)
        for row in range(0, slots, GRID_COLUMNS):
            with dpg.group(horizontal=True):
                for n in range(row, min(row + GRID_COLUMNS, slots)):
                    self.slot_tags.append(dpg.add_button(label=self.slot_label(n), width=self.layout.number_width,
                                                         callback=lambda _s, _a, u: self.click(u), user_data=n,
                                                         tag=f"presets.slot{n}"))
        self.note_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)

    def slot_label(self, n: int) -> str:
        preset = self.remote.bank.slots[n]
        return f"{n}: {preset.name[:8]}" if preset is not None and preset.name != f"preset {n}" else \
            (f"{n} *" if preset is not None else f"{n}")

    def click(self, n: int) -> bool:
        try:
            if dpg.get_value(self.store_tag):
                self.remote.store(n)
                note = f"stored preset {n}"
            else:
                seconds = dpg.get_value(self.seconds_tag)
                self.remote.recall(n, seconds)
                note = f"morphing to preset {n} over {seconds:.1f} s" if seconds > 0 else f"preset {n}"
        except (PresetError, ValueError) as error:
            self.show_error(str(error))
            return False
        self.show_error("")
        self.put(self.note_tag, note)
        self.refresh()
        return True

    def on_change(self, change):
        self.refresh()     # a preset stored by OSC or MIDI shows at the next change of anything

    def refresh(self):
        for n, tag in enumerate(self.slot_tags):
            label = self.slot_label(n)
            if dpg.get_item_label(tag) != label:
                dpg.set_item_label(tag, label)
