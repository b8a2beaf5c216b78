"""The `stylegan-explorer render ...` line that makes the same image as a render request.

A plain request (one seed, psi, cutoff, noise mode, class) becomes a line of flags anyone can read. Whatever else
decides the pixels (a position between seeds, style mixing, W+ edits, style-channel edits, noise strengths, the
StyleGAN3 input transform) the flags cannot say; then the line renders from the screenshot or session file
itself (`render --state FILE`), which carries the whole session, and is exact too. Without such a file the result
says what the line leaves out.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReproduceCommand:
    command: str                # the shell line; when not exact, it ends in a comment saying what it leaves out
    exact: bool                 # True: the line writes exactly the request's output image
    missing: tuple[str, ...]    # the controls the line cannot express
    note: str                   # "" when exact; else which controls are left out and where the exact view is


def _class_of_seed(seed: int, z_dim: int, c_dim: int) -> int:
    """The class NVlabs' visualizer (and render() with class_index None) draws for a seed: the same random
    stream as z, one draw later."""
    stream = np.random.RandomState(seed)
    stream.randn(1, z_dim)
    return int(stream.randint(c_dim))


def _number(value: float) -> str:
    """The shortest text that reads back as exactly this float (0.7, not 0.69999999999999996 or 0.7000)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def reproduce_command(request, pkl: str, state_file: str | None = None, facts=None,
                      outdir: str = "out") -> ReproduceCommand:
    """The `stylegan-explorer render` line for a RenderRequest rendered with network file `pkl`.

    facts (explorer.state.NetworkFacts, optional): lets the line name the class a conditional network draws
    from the seed, and keep psi on every w of a StyleGAN (2019) network, whose `render` default cutoff is 8.
    state_file: the screenshot or session file to point to when the line is not exact.
    """
    weights = [(seed, weight) for seed, weight in request.seed_weights if weight != 0]
    missing: list[str] = []
    if len(weights) == 1 and weights[0][1] == 1:
        seed = weights[0][0]
    else:
        missing.append(f"a position between seeds (a blend of {len(weights)} seeds)")
        seed = max(weights, key=lambda pair: pair[1])[0] if weights else 0

    parts = ["stylegan-explorer", "render", "--pkl", str(pkl), "--seeds", str(seed),
             "--trunc", _number(request.truncation_psi)]
    if request.truncation_cutoff is not None:
        parts += ["--trunc-cutoff", str(request.truncation_cutoff)]
    elif facts is not None and facts.family == "stylegan" and request.truncation_psi != 1:
        parts += ["--trunc-cutoff", str(facts.num_ws)]   # render() truncates every w; `render` would stop at 8

    noise_mode = request.noise_mode
    if noise_mode != "none":
        layer_strengths = dict(request.layer_noise_strength)
        if request.noise_strength == 0 or (layer_strengths and facts is not None and
                                           all(layer_strengths.get(name, 1.0) == 0 for name in facts.noise_layers)):
            noise_mode = "none"   # strength 0 everywhere gives exactly the pixels of mode 'none'
        elif request.noise_strength != 1 or any(value != 1 for value in layer_strengths.values()):
            missing.append("noise strengths")
    if noise_mode == "random" and request.noise_seed != seed:
        missing.append(f"noise seed {request.noise_seed} (`render` draws random noise from the image's seed)")
    parts += ["--noise-mode", noise_mode]

    if request.class_index is not None:
        parts += ["--class", str(request.class_index)]
    elif facts is not None and facts.c_dim > 0:
        parts += ["--class", str(_class_of_seed(seed, facts.z_dim, facts.c_dim))]

    if any(source is not None and source != seed for source in request.layer_seeds):
        missing.append("style mixing")
    if request.w_copies:
        missing.append("copied ws")
    if any(offset.strength != 0 for offset in request.w_offsets):
        missing.append("w offsets")
    if any(delta.delta != 0 for delta in request.style_deltas):
        missing.append("style-channel edits")
    if request.input_transform is not None and tuple(request.input_transform) != (0.0, 0.0, 0.0):
        missing.append("the input transform (translate, rotate)")
    if request.dtype != "float32":
        missing.append(f"{request.dtype} (`render` computes in float32; pixels may differ slightly)")
    parts += ["--outdir", outdir]

    command = " ".join(shlex.quote(part) for part in parts)
    note = ""
    precision = [m for m in missing if m.startswith(request.dtype)]
    if missing and state_file and len(precision) < len(missing):
        # The file carries every control: `render --state` reproduces it in float32.
        parts = ["stylegan-explorer", "render", "--pkl", str(pkl), "--state", str(state_file), "--outdir", outdir]
        command = " ".join(shlex.quote(part) for part in parts)
        missing = precision
        if missing:
            note = f"this line computes in float32, the view in {request.dtype}; pixels may differ slightly"
            command += f"   # {note}"
        return ReproduceCommand(command, not missing, tuple(missing), note)
    if missing:
        where = (f"reopen the exact view with: stylegan-explorer --state {shlex.quote(str(state_file))}"
                 if state_file else "save a screenshot or the session and reopen it with "
                                    "`stylegan-explorer --state FILE` for the exact view")
        note = f"this line leaves out {', '.join(missing)}; {where}"
        command += f"   # {note}"
    return ReproduceCommand(command, not missing, tuple(missing), note)
