"""The render cache against uncached renders, for changes that touch only finer layers, on a config-F-shaped
StyleGAN2 (channel_base 32768, channel_max 512, 8 mapping layers) with random weights, in the same run.

    python benchmarks/bench_render_cache.py [--resolution 256] [--repeats 3] [--threads 1] [--device cpu]

Each scenario alternates between two requests that differ only from some layer on (the way a slider on a fine
layer moves); the cached render resumes from the synthesis state before that layer, the uncached one runs
everything. Prints the median time of each, the ratio uncached / cached, and the layers each ran; checks that
both give the same pixels.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.networks.stylegan2 import Generator, config_f  # noqa: E402
from explorer.render import RenderCache, RenderRequest, render  # noqa: E402
from explorer.state import NetworkFacts  # noqa: E402


def scenarios(G) -> dict[str, tuple[RenderRequest, RenderRequest]]:
    facts = NetworkFacts.from_generator(G)
    base = RenderRequest("bench", seed_weights=((0, 1.0),), truncation_psi=0.7)
    fine_start, fine_stop = facts.preset_range("fine")
    last_conv = [l.name for l in G.synthesis.layers if l.has_noise][-1]

    def with_(**changes):
        return RenderRequest(**{**base.__dict__, **changes})

    return {
        f"fine mix (w {fine_start}-{fine_stop - 1}, 64 px up)":
            (base, with_(layer_seeds=(None,) * fine_start + (1,) * (fine_stop - fine_start))),
        f"finest mix (w {G.num_ws - 2}-{G.num_ws - 1}, {G.img_resolution} px)":
            (base, with_(layer_seeds=(None,) * (G.num_ws - 2) + (1, 1))),
        f"noise strength of {last_conv}": (base, with_(layer_noise_strength=((last_conv, 0.0),))),
        "view only (layer view normalisation)":
            (base, with_(view=RenderRequest("x").view.__class__(normalise="global", scale_db=6.0))),
    }


def timed(G, request, cache):
    start = time.perf_counter()
    result = render(G, request, cache)
    elapsed = time.perf_counter() - start
    if result.error:
        raise SystemExit(f"render failed: {result.error}")
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="renders of each request per path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    G = Generator(**config_f(args.resolution)).eval().requires_grad_(False).to(device)
    print(f"config-F-shaped StyleGAN2, {args.resolution} px, random weights, {G.num_ws} ws, "
          f"{len(G.synthesis.layers)} layers, device {device}, {args.threads} thread(s), "
          f"median of {args.repeats} x 2 renders")
    base = RenderRequest("bench", seed_weights=((0, 1.0),), truncation_psi=0.7, device=args.device)
    timed(G, base, None)                 # warm-up
    fill, plain = [], []
    for seed in range(args.repeats):
        request = RenderRequest(**{**base.__dict__, "seed_weights": ((seed + 1, 1.0),)})
        plain.append(timed(G, request, None)[0])
        cache = RenderCache()
        fill.append(timed(G, request, cache)[0])
    print(f"first render into an empty cache (keeps a state after every layer): "
          f"{statistics.median(fill) * 1000:.1f}ms vs {statistics.median(plain) * 1000:.1f}ms uncached, ratio "
          f"{statistics.median(plain) / statistics.median(fill):.2f}x, states {cache.state_nbytes / 2 ** 20:.1f} MiB")
    print(f"{'change':<44} {'uncached':>9} {'cached':>9} {'ratio':>7}  layers run (uncached / cached)")
    for name, (first, second) in scenarios(G).items():
        first = RenderRequest(**{**first.__dict__, "device": args.device})
        second = RenderRequest(**{**second.__dict__, "device": args.device})
        cache = RenderCache()
        timed(G, first, None)            # warm-up: allocator, thread pool
        timed(G, first, cache)
        uncached, cached, layers = [], [], []
        for _ in range(args.repeats):
            for request in (second, first):
                t_plain, plain = timed(G, request, None)
                t_cached, hit = timed(G, request, cache)
                if not np.array_equal(plain.raw, hit.raw):
                    raise SystemExit(f"{name}: the cached render differs from the uncached one")
                uncached.append(t_plain)
                cached.append(t_cached)
                layers.append(hit.timings.layers_run)
        u, c = statistics.median(uncached), statistics.median(cached)
        print(f"{name:<44} {u * 1000:>7.1f}ms {c * 1000:>7.1f}ms {u / c:>6.1f}x  "
              f"{len(G.synthesis.layers)} / {statistics.median(layers):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
