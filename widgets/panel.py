"""What every panel shares: it reads the session state and the controller's status, and calls the controller.

A panel builds its Dear PyGui items once (`build`), changes the state from its callbacks through the controller
(`set`, `call`: each an undoable step; a refused value becomes a message in the panel, not an exception), and shows
what the state holds when it changes (`on_change`), whoever changed it: another panel, the viewer, undo, a loaded
session file. `status_fields` names the controller Status fields it shows; `on_status` refreshes only for those.
"""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controller import Controller, Status
from explorer.state import StateChange, StateError


class Panel:
    title = ""
    sections: tuple[str, ...] = ()        # the state sections this panel shows; on_change hears only these
    status_fields: tuple[str, ...] = ()   # the Status fields it shows

    def __init__(self, controller: Controller, layout):
        self.controller = controller
        self.session = controller.session
        self.layout = layout
        self.error_tag = None

    def build(self) -> None:
        with dpg.collapsing_header(label=self.title, default_open=self.open_by_default()) as self.header_tag:
            self.build_items()
            self.error_tag = dpg.add_text("", color=self.layout.error_color, wrap=self.layout.text_wrap)
        self.refresh()

    def open_by_default(self) -> bool:
        return True

    def build_items(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Show the whole current state."""

    def on_change(self, change: StateChange) -> None:
        if change.section in self.sections:
            self.refresh()

    def on_status(self, old: Status, new: Status) -> None:
        if new.network is not old.network:
            self.on_network()
        elif any(getattr(old, name) != getattr(new, name) for name in self.status_fields):
            self.refresh()

    def on_network(self) -> None:
        """A network was loaded: rebuild what depends on its layers."""
        self.refresh()

    def set(self, section: str, field: str, value) -> bool:
        """Write one setting; a refused value is shown in the panel, the state keeps its old value."""
        try:
            self.controller.set(section, field, value)
        except (StateError, ValueError, KeyError) as error:
            self.show_error(str(error))
            self.refresh()
            return False
        self.show_error("")
        return True

    def call(self, method, *args, key=None) -> bool:
        """Call a section method (set_seed, apply_preset, ...) as one undo step; a refusal is shown in the panel.
        key: the control's name when it is a slider, so that one drag is one undo step."""
        try:
            self.controller.edit(method, *args, key=key)
        except (StateError, ValueError, KeyError, IndexError) as error:
            self.show_error(str(error))
            self.refresh()
            return False
        self.show_error("")
        return True

    def show_error(self, text: str) -> None:
        if self.error_tag is not None:
            dpg.set_value(self.error_tag, text)

    @staticmethod
    def put(tag, value) -> None:
        """Set an item's value when it differs, so that refreshing does not fight the user's edit."""
        if tag is not None and dpg.does_item_exist(tag) and dpg.get_value(tag) != value:
            dpg.set_value(tag, value)
