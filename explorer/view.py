"""What the viewer shows for a render result: the output, with the selected layer's grid (and its spectrum)
beside it at the same height. Pure numpy, so screenshots of the view are made the same way headless."""
from __future__ import annotations

import numpy as np

from .render import RenderResult

LAYER_VIEW_GAP_PX = 4            # between the output and the layer grid


def compose_view(result: RenderResult) -> np.ndarray:
    parts = [result.image]
    view = result.request.view
    extras = ([result.layer_image] if view.layer is not None else []) + ([result.fft_image] if view.fft else [])
    for extra in extras:
        if extra is None:
            continue
        height = result.image.shape[0]
        factor = height / extra.shape[0]
        rows = np.minimum((np.arange(height) / factor).astype(int), extra.shape[0] - 1)
        width = max(int(round(extra.shape[1] * factor)), 1)
        cols = np.minimum((np.arange(width) / factor).astype(int), extra.shape[1] - 1)
        parts.append(np.zeros([height, LAYER_VIEW_GAP_PX, 3], np.uint8))
        parts.append(extra[rows][:, cols])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
