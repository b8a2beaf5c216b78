"""Network: open a file (dialog or path), recent files, reload, what `info` says, and load errors."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.description import layer_lines, summary_lines

from .panel import Panel


class NetworkPanel(Panel):
    title = "Network"
    sections = ("network",)
    status_fields = ("loading", "load_error", "recent_files")

    def build_items(self):
        self.path_tag = dpg.add_input_text(label="file", width=self.layout.full_width, on_enter=True,
                                           hint="a .pkl, .pt or .safetensors file; Enter loads it",
                                           callback=lambda _, value: self.open(value))
        with dpg.group(horizontal=True):
            self.open_tag = dpg.add_button(label="Open...", callback=lambda: dpg.show_item(self.dialog_tag))
            self.reload_tag = dpg.add_button(label="Reload", callback=self.reload)
        self.recent_tag = dpg.add_combo(label="recent", items=[], width=self.layout.full_width,
                                        callback=lambda _, value: self.open(value))
        self.error_text = dpg.add_text("", color=self.layout.error_color, wrap=self.layout.text_wrap)
        self.info_tag = dpg.add_text("", wrap=self.layout.text_wrap)
        with dpg.tree_node(label="layers", default_open=False, show=False) as self.layers_node:
            self.layers_tag = dpg.add_text("")
        with dpg.file_dialog(show=False, callback=self.on_dialog, width=self.layout.dialog_width,
                             height=self.layout.dialog_height) as self.dialog_tag:
            dpg.add_file_extension("network files (*.pkl *.pt *.pth *.safetensors){.pkl,.pt,.pth,.safetensors}")
            for extension in (".pkl", ".pt", ".pth", ".safetensors", ".*"):
                dpg.add_file_extension(extension)

    def ask_for_file(self):
        """Opens the file dialog: the first thing to do when the explorer starts without a network."""
        dpg.show_item(self.dialog_tag)

    def reload(self):
        self.controller.reload()

    def open(self, path):
        if path:
            self.call(self.controller.open_network, path)

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        self.open(path)

    def refresh(self):
        s, status = self.session, self.controller.status
        self.put(self.path_tag, s.network.path or "")
        dpg.configure_item(self.recent_tag, items=list(status.recent_files))
        error = status.load_error
        self.put(self.error_text, f"could not load: {error}" if error else "")
        description = status.network
        if status.loading:
            self.put(self.info_tag, f"loading {status.loading} ...")
        elif description is None:
            self.put(self.info_tag, "No network loaded: open a .pkl, .pt or .safetensors file (Open..., or drop it "
                                    "on the viewer window).")
            self.show_layer_table("")
        else:
            self.put(self.info_tag, "\n".join(summary_lines(description)))
            self.show_layer_table("\n".join(layer_lines(description.layers)))

    def show_layer_table(self, table: str) -> None:
        self.put(self.layers_tag, table)
        count = len(table.splitlines())
        dpg.configure_item(self.layers_node, show=count > 0, label=f"layers ({count})")
