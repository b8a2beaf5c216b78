"""Fuzzing the loaders: mutants of a valid file of every format (byte flips, truncations, splices; fixed seeds)
either load and render, or are refused with the loaders' own one-line error. They run in a child process under
a memory limit, each within a time bound; nothing else may come out of load_network.
"""
from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FUZZ_SEED = 20261202
MUTANTS_PER_FORMAT = 200
MEMORY_HEADROOM = 2 << 30     # address space the child may add after its imports
MUTANT_TIME_S = 5.0           # the slowest mutant, load and render together
CHILD_TIMEOUT_S = 600
REPO = Path(__file__).resolve().parents[1]

# Narrow networks: their files are mostly structure (what mutations should reach), and they load fast.
SG2_FUZZ_CONFIG = dict(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                       channel_base=64, channel_max=8, num_fp16_res=2, conv_clamp=256, architecture="skip")
SG3_FUZZ_CONFIG = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                       channel_base=128, channel_max=8, num_layers=4, num_critical=1, margin_size=2, conv_clamp=256,
                       num_fp16_res=2)


def _seed_files() -> dict[str, bytes]:
    """One small valid file per format (and per family where a format holds several), made by our writers."""
    import torch

    from explorer.formats.native import save_network
    from explorer.networks.stylegan2 import Generator as StyleGAN2
    from explorer.networks.stylegan3 import Generator as StyleGAN3
    from tests.fixtures.networks import randomize_
    from tests.fixtures.nvlabs_pickle_writer import nvlabs_pickle_bytes
    from tests.fixtures.genforce_writer import (genforce_bytes, genforce_checkpoint, genforce_stylegan2_state,
                                                genforce_stylegan_state)
    from tests.fixtures.rosinality_writer import rosinality_state
    from tests.fixtures.tf_pickle_writer import stylegan1_tf_variables, stylegan2_tf_variables, tf_pickle_bytes

    torch.manual_seed(FUZZ_SEED)
    sg2 = randomize_(StyleGAN2(**SG2_FUZZ_CONFIG), FUZZ_SEED).eval()
    sg3 = StyleGAN3(**SG3_FUZZ_CONFIG).eval()
    human = randomize_(StyleGAN2(**dict(SG2_FUZZ_CONFIG, c_dim=0), base_shape=[4, 2]), FUZZ_SEED).eval()
    sg2_funcs = ("training.networks_stylegan2.G_main", "training.networks_stylegan2.G_mapping",
                 "training.networks_stylegan2.G_synthesis_stylegan2")
    sg1_funcs = ("training.networks_stylegan.G_style", "training.networks_stylegan.G_mapping",
                 "training.networks_stylegan.G_synthesis")
    sg1 = stylegan1_tf_variables(resolution=8, z_dim=8, w_dim=8, mapping_layers=2, fmap_base=16, fmap_max=8)
    narrow = {4: 8, 8: 8, 16: 4}
    checkpoint = io.BytesIO()
    torch.save({"g_ema": rosinality_state(size=16, style_dim=8, n_mlp=2, channels=narrow),
                "latent_avg": torch.randn([8])}, checkpoint)
    from explorer.networks.discriminator import Discriminator
    from explorer.training.trainer import Trainer, TrainingOptions
    from tests.fixtures.rosinality_writer import rosinality_d_state
    D = randomize_(Discriminator(img_resolution=16, channel_base=64, channel_max=8, conv_clamp=256, c_dim=2,
                                 mapping_kwargs=dict(num_layers=1)), FUZZ_SEED).eval()
    with_d = io.BytesIO()
    torch.save({"g_ema": rosinality_state(size=16, style_dim=8, n_mlp=2, channels=narrow),
                "latent_avg": torch.randn([8]), "d": rosinality_d_state(16, channels=narrow)}, with_d)
    trainer = Trainer(TrainingOptions(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64,
                                      channel_max=8, batch=4, seed=3),
                      torch.zeros([4, 3, 16, 16], dtype=torch.uint8))
    with tempfile.TemporaryDirectory() as folder:
        native = Path(folder) / "net.safetensors"
        save_network(sg2, native)
        native_bytes = native.read_bytes()
        trainer.save(Path(folder) / "run.pt")
        training_bytes = (Path(folder) / "run.pt").read_bytes()
    return {
        "nvlabs-stylegan2": nvlabs_pickle_bytes(sg2, code_base="stylegan2-ada-pytorch"),
        "nvlabs-stylegan3": nvlabs_pickle_bytes(sg3),
        "nvlabs-stylegan2-with-d": nvlabs_pickle_bytes(sg2, D=D),
        "rosinality-with-d": with_d.getvalue(),
        "training-checkpoint": training_bytes,
        "nvlabs-stylegan-human": nvlabs_pickle_bytes(human, code_base="stylegan-human"),
        "tf-stylegan2": tf_pickle_bytes([("G", *stylegan2_tf_variables(sg2), sg2_funcs)] * 3),
        "tf-stylegan1": tf_pickle_bytes([("G", *sg1, sg1_funcs)] * 3, version=3),
        "rosinality": checkpoint.getvalue(),
        "genforce-stylegan2": genforce_bytes(genforce_checkpoint(genforce_stylegan2_state(
            16, z_dim=8, w_dim=8, mapping_fmaps=8, fmaps_base=64, fmaps_max=8))),
        "genforce-stylegan-legacy": genforce_bytes(genforce_checkpoint(genforce_stylegan_state(
            16, z_dim=8, w_dim=8, mapping_fmaps=8, fmaps_base=64, fmaps_max=8)), legacy=True),
        "native": native_bytes,
    }


def mutate(data: bytes, rng: np.random.RandomState) -> tuple[bytes, str]:
    """One mutant of `data` and what was done to it."""
    size = len(data)
    kind = rng.randint(5)
    if kind == 0:    # a few bytes set to random values
        out = bytearray(data)
        positions = rng.randint(0, size, rng.randint(1, 9))
        for position in positions:
            out[position] = rng.randint(256)
        return bytes(out), f"flip {sorted(positions.tolist())}"
    if kind == 1:    # small integers nudged, where lengths, counts and sizes live: one byte +-1, +-2**k
        out = bytearray(data)
        position = rng.randint(size)
        out[position] = (out[position] + int(rng.choice([1, -1, 2, -2, 16, 128]))) % 256
        return bytes(out), f"nudge {position}"
    if kind == 2:    # truncated
        cut = rng.randint(size)
        return data[:cut], f"truncate {cut}"
    start, length = rng.randint(size), rng.randint(1, 512)
    chunk = data[start:start + length]
    target = rng.randint(size)
    if kind == 3:    # a chunk of the file copied over another place
        return data[:target] + chunk + data[target + len(chunk):], f"overwrite {target} with {start}+{length}"
    return data[:target] + chunk + data[target:], f"insert {start}+{length} at {target}"   # a chunk inserted


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def run_mutants(count: int) -> dict:
    """In the child: every format's mutants, loaded and rendered; a summary of outcomes and any escapes."""
    import torch

    from explorer.formats import NetworkLoadError, load_network

    torch.set_num_threads(1)
    seeds = _seed_files()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_vm_bytes() + MEMORY_HEADROOM, hard))
    summary = {"escapes": [], "multiline": [], "counts": {}, "slowest": [0.0, ""]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant"
        for index, (name, data) in enumerate(sorted(seeds.items())):
            rng = np.random.RandomState(FUZZ_SEED + index)
            counts = {"rendered": 0, "refused": 0}
            for number in range(count):
                mutant, how = mutate(data, rng)
                path.write_bytes(mutant)
                started = time.monotonic()
                label = f"{name} #{number} ({how})"
                try:
                    loaded = load_network(path)
                    G, D = loaded.generator, loaded.discriminator
                    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(number))
                    c = torch.eye(G.c_dim)[:1] if G.c_dim else None
                    with torch.no_grad():
                        image = G(z, c).image
                        # A discriminator read is one that runs on the generator's image.
                        logits = D(image, torch.eye(D.c_dim)[:1] if D.c_dim else None) if D is not None else None
                    shape = getattr(G.synthesis, "img_shape", (G.img_resolution, G.img_resolution))
                    if tuple(image.shape) != (1, G.img_channels, *shape):
                        raise AssertionError(f"rendered an image of shape {list(image.shape)}")
                    if logits is not None and tuple(logits.shape) != (1, 1):
                        raise AssertionError(f"the discriminator gave {list(logits.shape)}")
                    if any("\n" in note for note in loaded.notes):
                        summary["multiline"].append(f"{label}: notes {loaded.notes!r}")
                    counts["rendered"] += 1
                except NetworkLoadError as error:
                    counts["refused"] += 1
                    if "\n" in str(error) or not str(error):
                        summary["multiline"].append(f"{label}: {error!r}")
                except BaseException as error:   # what the test exists to catch, MemoryError included
                    summary["escapes"].append(f"{label}: {type(error).__name__}: {str(error)[:300]}")
                elapsed = time.monotonic() - started
                if elapsed > summary["slowest"][0]:
                    summary["slowest"] = [elapsed, label]
            summary["counts"][name] = counts
    return summary


def test_mutants_of_every_format_load_and_render_or_are_refused_in_one_line():
    code = (f"import json, sys; sys.path.insert(0, {str(REPO)!r}); from tests.test_formats_fuzz import run_mutants; "
            f"print('FUZZ ' + json.dumps(run_mutants({MUTANTS_PER_FORMAT})))")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                            cwd=REPO, env=env)
    elapsed = time.monotonic() - started
    lines = [line for line in result.stdout.splitlines() if line.startswith("FUZZ ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    summary = json.loads(lines[-1][len("FUZZ "):])
    assert not summary["escapes"], "\n".join(summary["escapes"][:20])
    assert not summary["multiline"], "\n".join(summary["multiline"][:20])
    assert summary["slowest"][0] < MUTANT_TIME_S, summary["slowest"]
    for name, counts in summary["counts"].items():
        assert counts["rendered"] + counts["refused"] == MUTANTS_PER_FORMAT, (name, counts)
        # Both outcomes happen for every format: the mutants reach the data and the structure.
        assert counts["rendered"] > 0 and counts["refused"] > 0, (name, counts)
    print(f"fuzz: {elapsed:.1f} s, {summary['counts']}, slowest {summary['slowest']}")
