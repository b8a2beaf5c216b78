"""This project's synthesis against NVlabs' own PyTorch code, with the same weights, in one process, interleaved.

    python benchmarks/bench_vs_nvlabs.py --nvlabs DIR [--networks NAME ...] [--repeats 3] [--threads 2]
    python benchmarks/bench_vs_nvlabs.py --nvlabs DIR --device cuda [--networks config-f-1024] [--batch 1 8]

DIR is a checkout of NVlabs' stylegan3 repository (https://github.com/NVlabs/stylegan3) that you provide; it is
never fetched or copied here. For each network the script builds NVlabs' Generator with random weights (noise
strengths and biases drawn too, so that those paths count; w_avg the mean w of 1000 random z), writes the
snapshot pickle the way NVlabs' training loop does (G, D, G_ema, augment_pipe, training_set_kwargs), loads it
back with NVlabs' own loader (legacy.load_network_pkl) and with this project's (explorer.formats.load_network),
checks that both give the same image within 1e-4 (float32, const noise), then times the synthesis of both, and
this project's preview precision, round-robin in the same process with the same thread count. On a CPU NVlabs'
custom ops run their reference implementations (nothing is compiled). Prints medians (wall and process CPU time)
and ratios (> 1: this project is faster); for config F 1024 also the cached re-renders through
explorer.render.render and a RenderCache (the last 4 ws mixed; the finest noise layer's strength changed).
With --device cuda, NVlabs' custom CUDA ops (built by NVlabs' code, which needs nvcc and ninja) are compared on
the GPU, float32 and float16, batch 1 and 8; an op that does not build runs NVlabs' reference code instead, and
the script says which did.

Exit status: 0 when every network agreed, 1 when one did not, 2 without a usable NVlabs checkout.
"""
from __future__ import annotations

import argparse
import copy
import functools
import importlib
import math
import pickle
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOLERANCE = 1e-4          # max abs difference of the raw float32 images (DEVELOPERS.md)
W_AVG_SAMPLES = 1000      # random z whose mean w becomes w_avg
CACHED_NETWORK = "config-f-1024"
MIXED_WS = 4              # the cached mix changes the last this many ws
PREVIEW_DTYPE = {"cpu": torch.bfloat16, "cuda": torch.float16}

# NVlabs' train.py settings for each configuration: mapping depth 8 for StyleGAN2 and 2 for StyleGAN3, float16
# in the 4 highest-resolution blocks, conv_clamp 256; StyleGAN3-R doubles the channels, 1x1 convs, radial filters.
STYLEGAN2 = dict(module="networks_stylegan2", mapping_layers=8, num_fp16_res=4, conv_clamp=256, channel_max=512)
STYLEGAN3 = dict(module="networks_stylegan3", mapping_layers=2, num_fp16_res=4, conv_clamp=256, channel_max=512,
                 extra=dict(magnitude_ema_beta=0.5 ** (32 / (20 * 1e3))))
NETWORKS = {
    "stylegan2-256": dict(STYLEGAN2, resolution=256, channel_base=16384),
    "config-f-256": dict(STYLEGAN2, resolution=256, channel_base=32768),
    "config-f-1024": dict(STYLEGAN2, resolution=1024, channel_base=32768),
    "stylegan3-t-256": dict(STYLEGAN3, resolution=256, channel_base=32768),
    "stylegan3-r-256": dict(STYLEGAN3, resolution=256, channel_base=65536, channel_max=1024,
                            extra=dict(STYLEGAN3["extra"], conv_kernel=1, use_radial_filters=True)),
}
# Small networks for checking the script itself in seconds; not part of the default set.
SMOKE_NETWORKS = {
    "smoke-stylegan2-32": dict(STYLEGAN2, resolution=32, channel_base=512, channel_max=64),
    "smoke-stylegan3-32": dict(STYLEGAN3, resolution=32, channel_base=1024, channel_max=64),
}

HOW_TO_GET = """bench_vs_nvlabs.py needs a checkout of NVlabs' stylegan3 repository:
    git clone https://github.com/NVlabs/stylegan3 /path/to/stylegan3
    python benchmarks/bench_vs_nvlabs.py --nvlabs /path/to/stylegan3
(it is only read: its networks are built in this process, nothing is compiled or copied)"""


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, function):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)
        return result

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def import_nvlabs(directory: Path):
    """NVlabs' modules (legacy, dnnlib, training.networks_*) from the user's checkout, or None."""
    if not (directory / "training" / "networks_stylegan2.py").is_file() or not (directory / "legacy.py").is_file():
        return None
    sys.path.insert(0, str(directory))
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        # NVlabs' ops ask pkg_resources for parse_version, which recent setuptools no longer ships: give them
        # the same comparison from packaging (no file of the checkout is changed).
        import types
        from packaging.version import parse
        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    import legacy  # noqa: F401
    import training.networks_stylegan2  # noqa: F401   (StyleGAN3's module is imported when a network needs it:
    return sys.modules                                 #  it needs scipy, StyleGAN2's does not)


def build_nvlabs(spec: dict, seed: int):
    """NVlabs' G (random weights, noise strengths and biases, w_avg from random z) and D, as train.py sets them."""
    module = importlib.import_module(f"training.{spec['module']}")
    torch.manual_seed(seed)
    G = module.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=spec["resolution"], img_channels=3,
                         channel_base=spec["channel_base"], channel_max=spec["channel_max"],
                         num_fp16_res=spec["num_fp16_res"], conv_clamp=spec["conv_clamp"],
                         mapping_kwargs=dict(num_layers=spec["mapping_layers"]), **spec.get("extra", {}))
    D = sys.modules["training.networks_stylegan2"].Discriminator(
        c_dim=0, img_resolution=spec["resolution"], img_channels=3, channel_base=spec["channel_base"],
        channel_max=spec["channel_max"], num_fp16_res=spec["num_fp16_res"], conv_clamp=spec["conv_clamp"],
        block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4))
    with torch.no_grad():
        # A trained network's noise strengths and biases are not zero, their initial values are: draw them so the
        # noise and bias work is part of what is compared and timed.
        for name, parameter in G.synthesis.named_parameters():
            if name.endswith("noise_strength") or (name.endswith(".bias") and ".affine." not in name):
                parameter.copy_(torch.randn_like(parameter) * 0.1)
        if hasattr(G.synthesis, "layer_names"):   # StyleGAN3: each layer's tracked input magnitude
            rng = np.random.default_rng(seed)
            for layer_name in G.synthesis.layer_names:
                getattr(G.synthesis, layer_name).magnitude_ema.fill_(float(rng.uniform(0.5, 2)))
        w = G.mapping(torch.randn([W_AVG_SAMPLES, G.z_dim]), None)[:, 0]
        G.mapping.w_avg.copy_(w.mean(dim=0))
    return G, D


def write_snapshot(path: Path, G, D) -> None:
    """The pickle NVlabs' training loop writes: deep copies in eval mode without gradients, on the CPU."""
    snapshot = dict(G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None, training_set_kwargs=dict(resolution=G.img_resolution))
    for key, value in snapshot.items():
        if isinstance(value, torch.nn.Module):
            snapshot[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
    with open(path, "wb") as file:
        pickle.dump(snapshot, file)


def psnr_8bit(image: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR of the 8-bit images the viewer shows (x * 127.5 + 128, clamped and rounded, as NVlabs' scripts)."""
    def to8(x):
        return (x * 127.5 + 128).clamp(0, 255).round()
    mse = float((to8(image) - to8(reference)).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def snapshot_both(spec: dict, seed: int, path: Path):
    """(NVlabs' G_ema, this project's generator), both read from the snapshot pickle written at `path` for a
    network built by NVlabs' code, in eval mode without gradients."""
    import legacy
    from explorer.formats import load_network

    G_built, D = build_nvlabs(spec, seed)
    write_snapshot(path, G_built, D)
    del G_built, D
    with open(path, "rb") as file:
        G_nvlabs = legacy.load_network_pkl(file)["G_ema"].eval().requires_grad_(False)
    return G_nvlabs, load_network(path).generator.eval().requires_grad_(False)


def stylegan2_conv_macs(synthesis) -> int:
    """Multiply-adds of a StyleGAN2 synthesis network's convolutions as the plainest exact path computes them:
    each 3x3 layer over its output (an upsampling layer as a transposed convolution over its input, so the zeros
    that upsampling inserts are not multiplied), and each block's 1x1 ToRGB."""
    total = 0
    for resolution in synthesis.block_resolutions:
        block = getattr(synthesis, f"b{resolution}")
        for layer in (getattr(block, "conv0", None), block.conv1):
            if layer is not None:
                out_channels, in_channels, kh, kw = layer.weight.shape
                total += (resolution // layer.up) ** 2 * out_channels * in_channels * kh * kw
        torgb = getattr(block, "torgb", None)
        if torgb is not None:
            total += resolution ** 2 * torgb.weight.shape[0] * torgb.weight.shape[1]
    return total


def compare_network(name: str, spec: dict, repeats: int, workdir: Path, seed: int, dense_rate: float) -> bool:
    from explorer.networks.common import bfloat16_is_fast_on_cpu

    path = workdir / f"{name}.pkl"
    G_nvlabs, G_ours = snapshot_both(spec, seed, path)
    size_mb = path.stat().st_size / 2 ** 20

    preview = PREVIEW_DTYPE["cpu"] if bfloat16_is_fast_on_cpu() else None
    with torch.no_grad():
        ws = G_nvlabs.mapping(torch.randn([1, G_nvlabs.z_dim], generator=torch.Generator().manual_seed(seed)),
                              None, truncation_psi=0.7)
        ws_ours = G_ours.mapping(torch.randn([1, G_nvlabs.z_dim], generator=torch.Generator().manual_seed(seed)),
                                 None, truncation_psi=0.7)
        mapping_difference = float((ws - ws_ours).abs().max())

        def nvlabs():
            return G_nvlabs.synthesis(ws, noise_mode="const", force_fp32=True)

        def ours():
            return G_ours.synthesis(ws, noise_mode="const").image

        def ours_preview():
            return G_ours.synthesis(ws, noise_mode="const", compute_dtype=preview).image

        reference, image = nvlabs(), ours()     # also the warm-up
        difference = float((reference - image).abs().max())
        if preview is not None:
            preview_image = ours_preview()
            preview_difference = float((preview_image - image).abs().max())
            preview_psnr = psnr_8bit(preview_image, image)
        timings = {"nvlabs": Timings(), "ours": Timings(), "preview": Timings()}
        for _ in range(repeats):
            timings["nvlabs"].add(nvlabs)
            timings["ours"].add(ours)
            if preview is not None:
                timings["preview"].add(ours_preview)

    agree = difference <= TOLERANCE and mapping_difference <= TOLERANCE
    nv, fp, bf = timings["nvlabs"], timings["ours"], timings["preview"]
    print(f"{name}: pickle {size_mb:.0f} MiB; max |difference| image {difference:.2e}, ws {mapping_difference:.2e} "
          f"-> {'agree' if agree else 'DIFFER'} (tolerance {TOLERANCE:g})")
    print(f"  NVlabs float32   wall {nv.median_wall:7.3f} s   cpu {nv.median_cpu:7.3f} s")
    print(f"  ours float32     wall {fp.median_wall:7.3f} s   cpu {fp.median_cpu:7.3f} s   "
          f"ratio wall {nv.median_wall / fp.median_wall:5.2f}x   cpu {nv.median_cpu / fp.median_cpu:5.2f}x")
    if preview is not None:
        print(f"  ours {str(preview).replace('torch.', ''):<11} wall {bf.median_wall:7.3f} s   cpu {bf.median_cpu:7.3f} s   "
              f"ratio wall {nv.median_wall / bf.median_wall:5.2f}x   cpu {nv.median_cpu / bf.median_cpu:5.2f}x   "
              f"vs ours float32: max |difference| {preview_difference:.3f}, PSNR (8-bit) {preview_psnr:.1f} dB")
    else:
        print("  ours bfloat16   not run: this CPU has no bfloat16 units (AVX-512 BF16 or AMX), the preview is refused")
    if spec["module"] == "networks_stylegan2":
        macs = stylegan2_conv_macs(G_nvlabs.synthesis)
        bound = 2 * macs / (dense_rate * 1e9)
        print(f"  limit: {macs / 1e9:.1f} GMAC of convolutions (transposed upsampling, no zeros multiplied) at this "
              f"CPU's dense 3x3 rate of {dense_rate:.0f} GFLOP/s take {bound:.3f} s: no float32 path that does this "
              f"arithmetic beats {nv.median_wall / bound:.2f}x NVlabs here")
        from benchmarks.bench_layers import shipped_macs
        fewer = shipped_macs(G_ours.synthesis)
        bound = 2 * fewer / (dense_rate * 1e9)
        print(f"  the multiplies of this project's algorithms (Winograd's, benchmarks/bench_layers.py): "
              f"{fewer / 1e9:.1f} GMAC, {bound:.3f} s at the same rate, {nv.median_wall / bound:.2f}x NVlabs")
    if name == CACHED_NETWORK:
        cached_cases(G_ours, repeats)
    sys.stdout.flush()
    return agree


def build_nvlabs_plugins(ops: tuple[str, ...]) -> dict[str, str]:
    """Builds NVlabs' custom CUDA ops that a network uses, as their first call would; an op whose build fails
    is told to take its reference path (stylegan3's own code re-raises the failure), so the run goes on and says
    so. Returns each op's state: 'compiled' or why not."""
    states = {}
    for op in ops:
        module = importlib.import_module(f"torch_utils.ops.{op}")
        try:
            states[op] = "compiled" if module._init() else "reference code (not built)"
        except Exception as error:  # noqa: BLE001 - any build failure (no nvcc, no ninja, a compiler error)
            module._init = lambda: False
            states[op] = f"reference code (build failed: {str(error).splitlines()[0][:120]})"
    return states


def compare_on_cuda(name: str, spec: dict, repeats: int, workdir: Path, seed: int, batches: list[int]) -> bool:
    """NVlabs' networks with their custom CUDA ops against this project's, on the GPU: float32 (TF32 off, so both
    are exact) and float16 (NVlabs' own: its 4 highest-resolution blocks in float16; this project's preview:
    every layer), for each batch size; medians of `repeats` after two warm-ups, the GPU synchronised around
    each."""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    ops = ("bias_act", "upfirdn2d") + (("filtered_lrelu",) if spec["module"] == "networks_stylegan3" else ())
    plugins = build_nvlabs_plugins(ops)
    print(f"{name}: NVlabs' custom ops: " + ", ".join(f"{op} {state}" for op, state in plugins.items()), flush=True)
    G_nvlabs, G_ours = (G.to(device) for G in snapshot_both(spec, seed, workdir / f"{name}.pkl"))

    def timed(function) -> float:
        times = []
        for run in range(repeats + 2):
            torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            torch.cuda.synchronize()
            if run >= 2:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    agree = True
    with torch.no_grad():
        for batch in batches:
            z = torch.randn([batch, G_nvlabs.z_dim], generator=torch.Generator().manual_seed(seed)).to(device)
            ws = G_nvlabs.mapping(z, None, truncation_psi=0.7)
            paths = {
                "NVlabs float32": lambda: G_nvlabs.synthesis(ws, noise_mode="const", force_fp32=True),
                "NVlabs float16": lambda: G_nvlabs.synthesis(ws, noise_mode="const", force_fp32=False),
                "ours float32": lambda: G_ours.synthesis(ws, noise_mode="const").image,
                "ours float16": lambda: G_ours.synthesis(ws, noise_mode="const", compute_dtype=torch.float16).image,
            }
            images = {label: function().float() for label, function in paths.items()}
            difference = float((images["NVlabs float32"] - images["ours float32"]).abs().max())
            agree &= difference <= TOLERANCE
            seconds = {label: timed(function) for label, function in paths.items()}
            print(f"{name}, batch {batch}, cuda ({torch.cuda.get_device_name(device)}): float32 max |difference| "
                  f"{difference:.2e} -> {'agree' if difference <= TOLERANCE else 'DIFFER'}")
            for precision in ("float32", "float16"):
                theirs, ours = seconds[f"NVlabs {precision}"], seconds[f"ours {precision}"]
                psnr = psnr_8bit(images[f"ours {precision}"], images["ours float32"])
                print(f"  {precision}: NVlabs {theirs * 1000:8.2f} ms   ours {ours * 1000:8.2f} ms   "
                      f"ratio {theirs / ours:5.2f}x   ours against our float32: PSNR (8-bit) {psnr:.1f} dB")
            sys.stdout.flush()
    return agree


def cached_cases(G, repeats: int) -> None:
    """Re-renders through the render cache after a change of the last ws, or of the finest noise layer."""
    from explorer.render import RenderCache, RenderRequest, render

    base = RenderRequest("bench", seed_weights=((0, 1.0),), truncation_psi=0.7)

    def changed(**changes):
        return RenderRequest(**{**base.__dict__, **changes})

    finest_noise = [layer.name for layer in G.synthesis.layers if layer.has_noise][-1]
    cases = {
        f"last {MIXED_WS} ws mixed from another seed": changed(layer_seeds=(None,) * (G.num_ws - MIXED_WS) + (1,) * MIXED_WS),
        f"noise strength of {finest_noise}": changed(layer_noise_strength=((finest_noise, 0.0),)),
    }
    for case, second in cases.items():
        cache = RenderCache()
        full, cached = Timings(), Timings()
        render(G, base, cache)
        for _ in range(repeats):
            for request in (second, base):
                plain = full.add(lambda: render(G, request, None))
                hit = cached.add(lambda: render(G, request, cache))
                if plain.error or hit.error or not np.array_equal(plain.raw, hit.raw):
                    raise SystemExit(f"{case}: the cached render failed or differs from the full one")
        print(f"  cached: {case:<44} full {full.median_wall:6.3f} s  cached {cached.median_wall:6.3f} s  "
              f"= {cached.median_wall / full.median_wall:.2f} of a full render (cpu {cached.median_cpu / full.median_cpu:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nvlabs", type=Path, help="a checkout of https://github.com/NVlabs/stylegan3")
    parser.add_argument("--networks", nargs="+", choices=[*NETWORKS, *SMOKE_NETWORKS], default=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=3, help="timed syntheses of each path (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: against NVlabs' custom CUDA ops, float32 and float16, for each --batch")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes of the cuda comparison")
    args = parser.parse_args()
    if args.nvlabs is None or import_nvlabs(args.nvlabs.expanduser().resolve()) is None:
        print(HOW_TO_GET if args.nvlabs is None else f"{args.nvlabs} is not a checkout of NVlabs' stylegan3 "
              f"(no training/networks_stylegan2.py or legacy.py there)\n\n{HOW_TO_GET}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA device here", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    import platform

    from explorer.memory import keep_freed_memory
    # As the stylegan-explorer command does: both sides then reuse freed memory, whatever allocator the
    # process was started with (an LD_PRELOAD of tcmalloc gives about the same).
    kept = keep_freed_memory()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; median of {args.repeats} after a warm-up; "
          f"freed memory {'kept' if kept else 'as the allocator does'}")
    if args.device == "cuda":
        compare = functools.partial(compare_on_cuda, batches=args.batch)
    else:
        from benchmarks.bench_stylegan3 import dense_conv_gflops     # the same yardstick as the StyleGAN3 profile
        dense_rate = dense_conv_gflops()
        print(f"this CPU's float32 rate on a dense 3x3 convolution (512 channels, 64x64, channels-last): "
              f"{dense_rate:.0f} GFLOP/s")
        compare = functools.partial(compare_network, dense_rate=dense_rate)
    all_agree = True
    with tempfile.TemporaryDirectory(prefix="bench-vs-nvlabs-") as workdir:
        for name in args.networks:
            all_agree &= compare(name, {**NETWORKS, **SMOKE_NETWORKS}[name], args.repeats, Path(workdir), args.seed)
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
