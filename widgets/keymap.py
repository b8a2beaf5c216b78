"""What the viewer's keys and mouse do: each one a controller command or a session edit through the controller.

The table of keys a user reads is renderer/shortcuts.py; this is what they mean."""
from __future__ import annotations

from typing import Callable

from explorer.controller import Controller
from explorer.latents import SEED_LIMIT
from explorer.controls import NOISE_MODES, PSI_RANGE

from renderer import messages as msg

# A drag across a 512-px window moves ~5 seeds: slow enough to watch one face turn into the next. Right and down
# go to higher x and y, as in NVlabs' visualizer.
DRAG_SEEDS_PER_PIXEL = 0.01
PSI_KEY_STEP = 0.1
ZOOM_KEYS = {"1": 1, "2": 2, "3": 3, "4": 4}


class Keymap:
    def __init__(self, controller: Controller, quit_app: Callable[[], None]):
        self.controller = controller
        self.quit_app = quit_app
        self.last_layer: str | None = None

    def on_event(self, event) -> None:
        """A viewer input event (messages.Drag, Pan, Zoom, Key, Dropped)."""
        c, s = self.controller, self.controller.session
        if isinstance(event, msg.Drag):
            c.edit(s.latent.drag, event.dx * DRAG_SEEDS_PER_PIXEL, event.dy * DRAG_SEEDS_PER_PIXEL,
                   key="viewer-drag")
        elif isinstance(event, msg.Pan):
            s.viewer.pan_by(event.dx, event.dy)
        elif isinstance(event, msg.Zoom):
            s.viewer.zoom_by(event.steps, event.scale)
        elif isinstance(event, msg.Selected):
            c.rank_region(event.top, event.left, event.bottom, event.right)
        elif isinstance(event, msg.Dropped) and event.paths:
            c.open_network(event.paths[0])
        elif isinstance(event, msg.Key):
            self.key(event)

    def key(self, event: msg.Key) -> None:
        c, s = self.controller, self.controller.session
        if event.ctrl:
            if event.name == "y" or (event.name == "z" and event.shift):
                c.redo()
            elif event.name == "z":
                c.undo()
            return
        latent, truncation = s.latent, s.truncation
        actions = {
            "right": lambda: c.edit(latent.set_seed, (latent.seed + 1) % SEED_LIMIT),
            "left": lambda: c.edit(latent.set_seed, max(latent.seed - 1, 0)),
            "up": lambda: c.set("truncation", "psi", min(truncation.psi + PSI_KEY_STEP, PSI_RANGE[1])),
            "down": lambda: c.set("truncation", "psi", max(truncation.psi - PSI_KEY_STEP, PSI_RANGE[0])),
            "space": lambda: c.set("latent", "animate", not latent.animate),
            "f": lambda: setattr(s.viewer, "fullscreen", not s.viewer.fullscreen),
            "0": s.viewer.fit_to_window,
            "plus": lambda: s.viewer.zoom_by(+1),
            "minus": lambda: s.viewer.zoom_by(-1),
            "s": c.screenshot,
            "r": c.toggle_recording,
            # n steps through the noise modes in their order: const -> random -> none -> const.
            "n": lambda: c.set("noise", "mode", NOISE_MODES[(NOISE_MODES.index(s.noise.mode) + 1) % len(NOISE_MODES)]),
            "l": self.toggle_layer_view,
            # Escape leaves fullscreen; it never quits (q does), so a stray key press cannot lose the session.
            "escape": lambda: setattr(s.viewer, "fullscreen", False),
            "q": self.quit_app,
        }
        if event.name in ZOOM_KEYS:
            s.viewer.set_zoom(ZOOM_KEYS[event.name])
        elif event.name in actions:
            actions[event.name]()

    def toggle_layer_view(self) -> None:
        c, s = self.controller, self.controller.session
        if s.layers.layer is not None:
            self.last_layer = s.layers.layer
            c.set("layers", "layer", None)
            return
        facts = s.facts
        fallback = next((l.name for l in reversed(facts.layers) if l.kind == "conv"), None) if facts else None
        layer = self.last_layer if facts and self.last_layer in facts.layer_names else fallback
        c.set("layers", "layer", layer)
