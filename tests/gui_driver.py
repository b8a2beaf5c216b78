"""Driving the explorer app in tests as a user would: through the panels' callbacks, reading pixels back
from the viewer window."""
import inspect

import numpy as np
from PIL import Image

from explorer.render import RenderRequest, render
from explorer.state import Session
from widgets.automation import capture_viewer


def fire(tag, value, user_data=None):
    """What a user's edit does: Dear PyGui calls the item's callback (set_value alone fires nothing)."""
    import dearpygui.dearpygui as dpg
    if value is not None:
        dpg.set_value(tag, value)
    callback = dpg.get_item_callback(tag)
    if user_data is None:
        user_data = dpg.get_item_user_data(tag)
    count = len(inspect.signature(callback).parameters)
    args = (tag, value, user_data)[:count]
    callback(*args)


def panel(app, name):
    return next(p for p in app.panels if type(p).__name__ == name)


def settle(app):
    """Run frames until the newest request is rendered and shown."""
    assert app.wait_for_frame(), app.controller.status.render_error or app.controller.status.load_error


def viewer_pixels(app, tmp_path, name="view.png", wait=True):
    """The frame as the viewer window shows it at 1:1 zoom, read back from the window (glReadPixels).
    wait: first let the newest request render (off when it is known to fail)."""
    app.session.viewer.fit = False
    app.session.viewer.zoom = 1
    if wait:
        settle(app)
    path = tmp_path / name
    assert capture_viewer(app, str(path))
    window = np.asarray(Image.open(path).convert("RGB"))
    h, w = app.controller.frame.view.shape[:2]
    top, left = (window.shape[0] - h) // 2, (window.shape[1] - w) // 2
    return window[top:top + h, left:left + w]


def expected_image(app, **overrides):
    """The image render() gives for a request, straight from the generator the worker holds."""
    G = app.controller.worker._generator
    request = RenderRequest(app.controller.worker.network_key, **overrides)
    result = render(G, request)
    assert result.ok, result.error
    return result.image


def reset(app):
    """Back to the default state (the network stays), rendered."""
    defaults = Session()
    defaults.network.path = app.session.network.path
    defaults.capture.folder = app.session.capture.folder
    app.session.assign(defaults)
    settle(app)
