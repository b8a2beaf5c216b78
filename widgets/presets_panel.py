"""Presets: a grid of bookmarks of the whole state, kept in the session (saved with it, reopened with it). A click
recalls one (one undo step), or morphs to it over the chosen time; with "store" chosen a click stores the current
state there under the name typed (one undo step), with "clear" it empties the slot. OSC and MIDI reach the same
presets (/explorer/preset/N, /explorer/preset/store, /explorer/remote/clear_preset)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.instrument import PRESET_NAME_MAX
from explorer.presets import PresetError
from explorer.remote.live import remote_for

from .panel import Panel

GRID_COLUMNS = 4
MORPH_SLIDER_MAX_S = 10.0     # longer morphs: type the value (ctrl+click) or send it by OSC
LABEL_NAME_CHARS = 8          # a slot button shows this much of its preset's name
CLICK_MODES = ("recall", "store", "clear")


class PresetsPanel(Panel):
    title = "Presets"
    sections = ("remote",)
    status_fields = ("capture_message",)

    def build_items(self):
        self.remote = remote_for(self.controller)
        self.mode_tag = dpg.add_radio_button(CLICK_MODES, default_value=CLICK_MODES[0], horizontal=True,
                                             tag="presets.mode")
        self.name_tag = dpg.add_input_text(label="name", hint=f"a name ({PRESET_NAME_MAX} characters kept)",
                                           width=self.layout.slider_width, tag="presets.name")
        self.seconds_tag = dpg.add_slider_float(label="morph s", min_value=0.0, max_value=MORPH_SLIDER_MAX_S,
                                                width=self.layout.slider_width, tag="presets.seconds")
        self.slot_tags = []
        slots = len(self.remote.bank.slots)
        for row in range(0, slots, GRID_COLUMNS):
            with dpg.group(horizontal=True):
                for n in range(row, min(row + GRID_COLUMNS, slots)):
                    self.slot_tags.append(dpg.add_button(label=str(n), width=self.layout.number_width,
                                                         callback=lambda _s, _a, u: self.click(u), user_data=n,
                                                         tag=f"presets.slot{n}"))
        self.note_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)

    @staticmethod
    def slot_label(n: int, preset) -> str:
        """'4' empty, '4 *' holding a preset of the default name, '4: storm' one named."""
        if preset is None:
            return f"{n}"
        return f"{n}: {preset.name[:LABEL_NAME_CHARS]}" if preset.name != f"preset {n}" else f"{n} *"

    def click(self, n: int) -> bool:
        mode = dpg.get_value(self.mode_tag)
        try:
            if mode == "store":
                self.remote.store(n, dpg.get_value(self.name_tag).strip() or None)
                note = f"stored preset {n}"
            elif mode == "clear":
                self.remote.clear(n)
                note = f"preset {n} cleared"
            else:
                seconds = dpg.get_value(self.seconds_tag)
                self.remote.recall(n, seconds)
                note = f"morphing to preset {n} over {seconds:.1f} s" if seconds > 0 else f"preset {n}"
        except (PresetError, ValueError) as error:
            self.show_error(str(error))
            return False
        self.show_error("")
        self.put(self.note_tag, note)
        return True

    def refresh(self):
        for n, (tag, preset) in enumerate(zip(self.slot_tags, self.remote.bank.slots)):
            label = self.slot_label(n, preset)
            if dpg.get_item_label(tag) != label:
                dpg.set_item_label(tag, label)
