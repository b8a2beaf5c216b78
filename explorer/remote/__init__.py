"""Remote control of a running explorer: OSC (explorer.remote.osc), MIDI (explorer.remote.midi), live sound
(explorer.remote.live_audio), preset recall and morphs (explorer.remote.live), all over one address table
(explorer.remote.addresses) generated from the session state's sections and the controller's commands. Everything
here reaches the state through `controller.post`, on the controller's own thread."""
