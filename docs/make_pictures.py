"""Makes the README's pictures of the window with the explorer's own automation (run under a display, e.g.
`xvfb-run -s "-screen 0 1920x1080x24" python3 docs/make_pictures.py`):

    docs/droplets-window.png    the AdaIN model: the Droplets panel over seeds 18-33 (chart, a line per layer, the
                                ranked findings); the layer view shows the channel grid of the layer with the most
                                droplet seeds on its widest spot's seed (else the layer and seed of the widest
                                shared spot when it reaches SHARED_SPOT_SHARE, else the top finding's layer), each
                                channel's spike marked: a droplet is the spot where most of them peak
    docs/droplets-ablated.png   the same view after "Ablate droplet" (the channels at the widest shared spot of each
                                layer with a droplet on some seed, zeroed), or "Ablate top 3" when there is none
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.analysis.droplets import SHARED_SPOT_SHARE  # noqa: E402
from explorer.assets import DEFAULT_ADAIN_MODEL  # noqa: E402
from widgets.app import App  # noqa: E402
from widgets.automation import capture_both  # noqa: E402

OPEN_PANELS = ("NetworkPanel", "LatentPanel", "DropletsPanel", "LayersPanel", "BendingPanel")
TIMEOUT_S = 600
FIRST_SEED = 18      # the AdaIN model's droplets are on a few seeds in a hundred; 18 is one (README)


def wait(app, condition):
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        app.step()


def main() -> int:
    import dearpygui.dearpygui as dpg
    app = App(pkl=str(DEFAULT_ADAIN_MODEL), viewer_size=(900, 600))
    c = app.controller
    try:
        assert app.wait_for_frame(), c.status.load_error
        for panel in app.panels:
            dpg.set_value(panel.header_tag, type(panel).__name__ in OPEN_PANELS)
        c.edit(c.session.latent.set_seed, FIRST_SEED)
        assert app.wait_for_frame()
        c.detect_droplets()            # the panel's "16 seeds": FIRST_SEED and the 15 after it
        wait(app, lambda: c.status.droplets is not None and c.status.analysis is None)
        report = c.status.droplets
        best = report.findings[0]
        droplet_layers = sorted(report.droplet_layers, key=lambda layer: (-layer.seeds, -layer.shared_share))
        widest = max(report.layers, key=lambda layer: layer.widest_share)
        if droplet_layers:
            shown_layer, shown_seed = droplet_layers[0].layer, droplet_layers[0].best_seed
        elif widest.widest_share >= SHARED_SPOT_SHARE:
            # A droplet on some seeds but not on half of them: show the seed where it is widest.
            shown_layer, shown_seed = widest.layer, widest.best_seed
        else:
            shown_layer, shown_seed = best.layer, best.best_seed
        channels = next(info.channels for info in c.status.network.layers if info.name == shown_layer)
        with c.history.step("show"):
            c.session.latent.set_seed(shown_seed)
            c.set("layers", "layer", shown_layer)
            c.set("layers", "mode", "grid")
            c.set("layers", "first_channel", 0)
            c.set("layers", "channel_count", channels)
            c.set("layers", "mark_spikes", True)
        assert app.wait_for_frame()
        capture_both(app, str(ROOT / "docs" / "droplets-window.png"))
        # The droplet's own channels when a layer has one on some seed ("Ablate droplet"), else the top three.
        ablated = c.ablate_droplet_spots() or c.ablate_top_droplets(3)
        assert ablated and app.wait_for_frame()
        capture_both(app, str(ROOT / "docs" / "droplets-ablated.png"))
        print(report.note)
        print(f"shown: {shown_layer} on seed {shown_seed}; top finding {best.layer} channel {best.channel} at ({best.y}, {best.x}), score {best.score:.1f}, "
              f"{best.seeds}/{best.seed_count} seeds")
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
