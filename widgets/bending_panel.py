"""Bending: operations on the feature maps of chosen channels of a layer (translate, rotate, scale, flip, erode,
dilate, invert, multiply, ablate), applied in the order listed; each with its amount."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.bending import OPERATION_KINDS, OPERATIONS

from .panel import Panel


def parse_channels(text: str) -> tuple[int, ...]:
    """'3, 7-9' -> (3, 7, 8, 9); '' or 'all' -> () (every channel)."""
    text = text.strip().lower()
    if text in ("", "all"):
        return ()
    channels = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = (int(v) for v in part.split("-", 1))
            channels.extend(range(low, high + 1))
        elif part:
            channels.append(int(part))
    return tuple(channels)


class BendingPanel(Panel):
    title = "Bending"
    sections = ("bending",)

    def open_by_default(self):
        return False

    def build_items(self):
        self.layer_tag = dpg.add_combo([], label="layer", width=self.layout.slider_width, tag="bending.layer")
        self.operation_tag = dpg.add_combo([k.name for k in OPERATION_KINDS], label="operation",
                                           default_value="rotate", width=self.layout.slider_width,
                                           tag="bending.operation")
        self.channels_tag = dpg.add_input_text(label="channels", hint="all, or 3,7-9", tag="bending.channels",
                                               width=self.layout.slider_width)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Add", tag="bending.add", callback=self.add)
            dpg.add_button(label="Clear", tag="bending.clear", callback=lambda: self.call(self.session.bending.clear))
        self.list_group = dpg.add_group()
        self._shape = None

    def add(self, *_):
        try:
            channels = parse_channels(dpg.get_value(self.channels_tag))
        except ValueError:
            self.show_error("channels: write 'all', or numbers and ranges like 3,7-9")
            return
        self.call(self.session.bending.add, dpg.get_value(self.layer_tag), dpg.get_value(self.operation_tag),
                  channels)

    def build_rows(self):
        dpg.delete_item(self.list_group, children_only=True)
        bending = self.session.bending
        for index, op in enumerate(bending.operations):
            kind = OPERATIONS[op.operation]
            channels = ",".join(map(str, op.channels)) if op.channels else "all"
            with dpg.group(horizontal=True, parent=self.list_group):
                dpg.add_text(f"{index + 1}. {op.operation} {op.layer} [{channels}]")
                dpg.add_button(label="^", user_data=index, callback=lambda _, __, i: self.call(bending.move, i, -1))
                dpg.add_button(label="x", user_data=index, tag=f"bending.remove.{index}",
                               callback=lambda _, __, i: self.call(bending.remove, i))
            if kind.low != kind.high and not kind.amount.startswith("ignored"):
                dpg.add_slider_float(label=kind.amount.split(" (")[0], parent=self.list_group,
                                     tag=f"bending.amount.{index}", min_value=kind.low, max_value=kind.high,
                                     width=self.layout.slider_width, user_data=index,
                                     callback=lambda _, v, i: self.call(bending.set_amount, i, v,
                                                                        key=("bending.amount", i)))

    def refresh(self):
        facts, operations = self.session.facts, self.session.bending.operations
        if facts is not None:
            names = [l.name for l in facts.layers if l.kind in ("conv", "input")]
            dpg.configure_item(self.layer_tag, items=names)
            if not dpg.get_value(self.layer_tag) and names:
                dpg.set_value(self.layer_tag, names[len(names) // 2])
        shape = tuple((op.layer, op.operation, op.channels) for op in operations)
        if shape != self._shape:
            self._shape = shape
            self.build_rows()
        for index, op in enumerate(operations):
            self.put(f"bending.amount.{index}", op.amount)
