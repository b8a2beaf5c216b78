"""Remote: the OSC server (off until started here or by --osc PORT; on 127.0.0.1), the MIDI input, MIDI learn
(press Learn, touch a control in any panel, move a knob), the list of MIDI bindings the session holds (saved with
it, each learned or removed one undo step), and live sound (off until started: the bass walks the latent, the mids
move psi, onsets push a W offset; stopping puts them back)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.remote.addresses import AddressError
from explorer.remote.live import remote_for
from explorer.remote.live_audio import AudioUnavailable
from explorer.remote.midi import MidiUnavailable, binding_key, describe
from explorer.remote.osc import OscError

from .panel import Panel

DEFAULT_OSC_PORT = 9000       # TouchOSC's and most OSC apps' usual outgoing port


class RemotePanel(Panel):
    title = "Remote"
    sections = ("remote",)
    status_fields = ("capture_message",)

    def build_items(self):
        self.remote = remote_for(self.controller)
        with dpg.group(horizontal=True):
            self.port_tag = dpg.add_input_int(label="OSC port", default_value=DEFAULT_OSC_PORT, min_value=0,
                                              max_value=65535, min_clamped=True, max_clamped=True,
                                              width=self.layout.number_width * 2, tag="remote.port")
            self.osc_button = dpg.add_button(label="Start", callback=self.toggle_osc, tag="remote.osc")
        self.osc_tag = dpg.add_text("", color=self.layout.note_color, wrap=self.layout.text_wrap)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Open MIDI input", callback=self.open_midi, tag="remote.midi")
            self.learn_tag = dpg.add_button(label="Learn", callback=self.toggle_learning, tag="remote.learn")
        self.midi_tag = dpg.add_text("", color=self.layout.note_color, wrap=self.layout.text_wrap)
        self.bindings_group = dpg.add_group(tag="remote.bindings")
        self.audio_button = dpg.add_button(label="Live sound", callback=self.toggle_audio, tag="remote.audio")
        self.audio_tag = dpg.add_text("", color=self.layout.note_color, wrap=self.layout.text_wrap)
        self.audio_note = "live sound off"
        self._shown_bindings = None
        self.midi_note = "MIDI: no input open"

    # -- OSC --------------------------------------------------------------------------------------------------

    def toggle_osc(self, *_) -> bool:
        if self.remote.osc is not None:
            self.remote.stop_osc()
        else:
            try:
                self.remote.start_osc(dpg.get_value(self.port_tag))
            except OscError as error:
                self.show_error(str(error))
                return False
        self.show_error("")
        self.refresh()
        return True

    # -- MIDI -------------------------------------------------------------------------------------------------

    def open_midi(self, *_) -> bool:
        try:
            name = self.remote.mapper().open_input()
        except MidiUnavailable as error:
            self.midi_note = str(error)
            self.refresh()
            return False
        self.midi_note = f"MIDI input: {name}"
        self.refresh()
        return True

    def toggle_learning(self, *_) -> None:
        mapper = self.remote.mapper()
        if mapper.learning:
            mapper.cancel_learning()
        else:
            mapper.start_learning()
        self.refresh()

    def unbind(self, key) -> bool:
        """The knob's binding leaves the session: one undo step (its row goes at the change)."""
        held = self.session.remote.midi_bindings
        index = next((n for n, b in enumerate(held) if binding_key(b) == tuple(key)), None)
        return index is not None and self.call(self.session.remote.unbind, index)

    # -- live sound -------------------------------------------------------------------------------------------

    def toggle_audio(self, *_) -> bool:
        live = self.remote.audio()
        if live.running:
            live.stop()
            self.audio_note = "live sound off"
        else:
            try:
                self.audio_note = f"live sound from {live.start()}"
            except AudioUnavailable as error:
                self.audio_note = str(error)
                self.refresh()
                return False
        self.refresh()
        return True

    # -- showing ----------------------------------------------------------------------------------------------

    def on_change(self, change):
        mapper = self.remote.midi
        if change.section in self.sections or (mapper is not None and mapper.learning):
            self.refresh()     # the bindings changed, or learning picked the touched control: show it

    def refresh(self):
        osc = self.remote.osc
        self.put(self.osc_tag, f"OSC listening on {osc.host}:{osc.port}, {self.remote.messages} messages"
                 if osc is not None else "OSC off")
        if osc is not None:
            self.put(self.port_tag, osc.port)       # the port it got (asked for 0, or started by --osc)
        dpg.set_item_label(self.osc_button, "Stop" if osc is not None else "Start")
        if self.remote.last_error:
            self.show_error(f"last refused: {self.remote.last_error}")
        mapper = self.remote.midi
        learning = mapper is not None and mapper.learning
        dpg.set_item_label(self.learn_tag, "Cancel learn" if learning else "Learn")
        if learning:
            self.put(self.midi_tag, f"now move a knob for {mapper.learn_address}" if mapper.learn_address
                     else "touch a control in any panel, then move a knob")
        else:
            self.put(self.midi_tag, self.midi_note)
        live = self.remote.live_audio
        dpg.set_item_label(self.audio_button, "Stop live sound" if live is not None and live.running else "Live sound")
        self.put(self.audio_tag, self.audio_note)
        bindings = self.session.remote.midi_bindings
        if bindings != self._shown_bindings:
            self._shown_bindings = bindings
            dpg.delete_item(self.bindings_group, children_only=True)
            for binding in bindings:
                with dpg.group(horizontal=True, parent=self.bindings_group):
                    dpg.add_button(label="x", callback=lambda _s, _a, key: self.unbind(key),
                                   user_data=binding_key(binding))
                    dpg.add_text(describe(binding))

    def learn(self, address: str) -> bool:
        """Learning for a named address (scripts, tests): the next knob moved is bound to it."""
        try:
            self.remote.mapper().start_learning(address)
        except AddressError as error:
            self.show_error(str(error))
            return False
        self.refresh()
        return True
