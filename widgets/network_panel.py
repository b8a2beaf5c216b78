"""Network: open a file (dialog or path), recent files, reload, what `info` says, and load errors."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from .panel import Panel

# Where `info` (explorer.cli.format_description) starts its table of layers: the panel folds that table away, so
# that a 1024 px network's ~30 layer lines do not push the Latent panel off the screen.
LAYER_TABLE_HEADING = "\nlayers\n"


class NetworkPanel(Panel):
    title = "Network"
    sections = ("network", "status")

    def build_items(self):
        s = self.session
        self.path_tag = dpg.add_input_text(label="file", width=self.layout.full_width, on_enter=True,
                                           hint="a .pkl, .pt or .safetensors file; Enter loads it",
                                           callback=lambda _, value: self.set("network", "path", value or None))
        with dpg.group(horizontal=True):
            self.open_tag = dpg.add_button(label="Open...", callback=lambda: dpg.show_item(self.dialog_tag))
            self.reload_tag = dpg.add_button(label="Reload", callback=self.reload)
        self.recent_tag = dpg.add_combo(label="recent", items=[], width=self.layout.full_width,
                                        callback=lambda _, value: self.set("network", "path", value))
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
        status = self.session.status
        status.reload_requests = status.reload_requests + 1

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path:
            self.set("network", "path", path)

    def refresh(self):
        s = self.session
        self.put(self.path_tag, s.network.path or "")
        dpg.configure_item(self.recent_tag, items=list(s.status.recent_files))
        error = s.status.load_error
        self.put(self.error_text, f"could not load: {error}" if error else "")
        if s.network.path is None and not error:
            self.put(self.info_tag, "No network loaded: open a .pkl, .pt or .safetensors file (Open..., or drop it "
                                    "on the viewer window).")
            self.show_layer_table("")
        else:
            summary, _, table = s.status.network_info.partition(LAYER_TABLE_HEADING)
            self.put(self.info_tag, summary)
            self.show_layer_table(table)

    def show_layer_table(self, table: str) -> None:
        self.put(self.layers_tag, table)
        count = len(table.splitlines())
        dpg.configure_item(self.layers_node, show=count > 0, label=f"layers ({count})")
