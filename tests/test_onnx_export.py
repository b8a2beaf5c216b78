"""ONNX export: the files run in onnxruntime give the explorer's own numbers (within 1e-3, issue 16) for any
batch size, StyleGAN2, StyleGAN3-T and StyleGAN (2019); StyleGAN3-R is refused by name; nothing is ever
overwritten."""
import argparse
import os

import numpy as np
import onnxruntime
import pytest
import torch

from explorer.commands import run_command
from explorer.commands import export_onnx as export_onnx_command
from explorer.onnx_export import CHECK_TOLERANCE, OnnxExportError, export_mapping, export_synthesis
from kernels import setup_filter
from tests.fixtures.analysis_networks import tiny_adain
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3


def _session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ws(G, batch, seed):
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z, None)


def _synthesis_error(G, path, batch, seed):
    ws = _ws(G, batch, seed)
    with torch.no_grad():
        expected = G.synthesis(ws, noise_mode="const").image.numpy()
    (image,) = _session(path).run(None, {"ws": ws.numpy()})
    assert image.shape == expected.shape
    return float(np.abs(image - expected).max()), float(np.abs(expected).max())


def _stylegan_2019():
    """The AdaIN fixture with the original's [1, 2, 1] blur (the fixture draws every buffer at random)."""
    G = tiny_adain()
    with torch.no_grad():
        for name, buffer in G.named_buffers():
            if name.endswith("blur_filter"):
                buffer.copy_(setup_filter([1, 2, 1]))
    return G


@pytest.mark.parametrize("make, batched", [(lambda: tiny_stylegan2("sg2_skip_64"), True),
                                           (lambda: tiny_stylegan3("t"), False), (_stylegan_2019, False)],
                         ids=["stylegan2", "stylegan3-t", "stylegan-2019"])
def test_synthesis_matches_the_explorer_for_any_batch(tmp_path, make, batched):
    G = make()
    result = export_synthesis(G, tmp_path / "G.onnx")
    assert result.batched == batched and result.check is not None
    assert result.check.max_abs_error <= CHECK_TOLERANCE
    session = _session(tmp_path / "G.onnx")
    (ws_input,), (image_output,) = session.get_inputs(), session.get_outputs()
    assert ws_input.name == "ws" and ws_input.shape[1:] == [G.num_ws, G.w_dim] and isinstance(ws_input.shape[0], str)
    assert image_output.name == "image"
    for batch, seed in ((1, 11), (4, 12)):
        error, scale = _synthesis_error(G, tmp_path / "G.onnx", batch, seed)
        assert error <= CHECK_TOLERANCE and scale > 0.1    # a real image, not zeros matching zeros
    assert sorted(os.listdir(tmp_path)) == ["G.onnx"]     # the temporary file is gone


def test_noise_const_is_baked_in(tmp_path):
    """The file reproduces the stored noise: the same ws without noise differ from its output."""
    G = tiny_stylegan2("sg2_orig_32")
    export_synthesis(G, tmp_path / "G.onnx")
    ws = _ws(G, 2, 3)
    (image,) = _session(tmp_path / "G.onnx").run(None, {"ws": ws.numpy()})
    with torch.no_grad():
        without_noise = G.synthesis(ws, noise_mode="none").image.numpy()
    assert np.abs(image - without_noise).max() > 100 * CHECK_TOLERANCE


@pytest.mark.parametrize("name", ["sg2_skip_64", "sg2_resnet_cond_64"])
def test_mapping_with_truncation_and_class(tmp_path, name):
    G = tiny_stylegan2(name)
    result = export_mapping(G, tmp_path / "M.onnx")
    assert result.check is not None
    session = _session(tmp_path / "M.onnx")
    names = [i.name for i in session.get_inputs()]
    assert names == (["z", "c", "truncation_psi"] if G.c_dim else ["z", "truncation_psi"])
    generator = torch.Generator().manual_seed(5)
    for batch, psi in ((2, 1.0), (5, 0.6)):
        z = torch.randn([batch, G.z_dim], generator=generator)
        c = torch.eye(G.c_dim)[torch.arange(batch) % G.c_dim] if G.c_dim else None
        with torch.no_grad():
            expected = G.mapping(z, c, truncation_psi=psi).numpy()
        feeds = {"z": z.numpy(), "truncation_psi": np.array(psi, dtype=np.float32)}
        if c is not None:
            feeds["c"] = c.numpy()
        (ws,) = session.run(None, feeds)
        assert ws.shape == (batch, G.num_ws, G.w_dim)
        assert np.abs(ws - expected).max() <= CHECK_TOLERANCE


def test_stylegan3_r_is_refused_by_name(tmp_path):
    with pytest.raises(OnnxExportError, match="radial filters") as caught:
        export_synthesis(tiny_stylegan3("r"), tmp_path / "G.onnx")
    assert "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == []


def test_an_existing_file_is_never_replaced(tmp_path):
    target = tmp_path / "G.onnx"
    target.write_bytes(b"the user's file")
    with pytest.raises(OnnxExportError, match="exists; not overwriting"):
        export_synthesis(tiny_stylegan2("sg2_orig_32"), target)
    assert target.read_bytes() == b"the user's file"
    assert os.listdir(tmp_path) == ["G.onnx"]


def _parser():
    parser = argparse.ArgumentParser()
    export_onnx_command.register(parser.add_subparsers(dest="command"))
    return parser


def _network_file(tmp_path):
    from explorer.formats.native import save_network
    path = tmp_path / "net.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), path)
    return path


def test_command_writes_both_files(tmp_path, capsys):
    network = _network_file(tmp_path)
    args = _parser().parse_args(["export-onnx", "--pkl", str(network), "--out", str(tmp_path / "G.onnx"),
                                 "--mapping-out", str(tmp_path / "M.onnx"), "--threads", "1"])
    assert run_command(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "synthesis ws [N, 8, 24] -> image [N, 3, 32, 32]" in out[0]
    assert "mapping z [N, 16], truncation_psi [] -> ws [N, 8, 24]" in out[1]
    assert all("onnxruntime matches the explorer within" in line for line in out)
    assert sorted(os.listdir(tmp_path)) == ["G.onnx", "M.onnx", "net.safetensors"]


@pytest.mark.parametrize("extra, message", [
    (["--out", "G.txt"], "name the file NAME.onnx"),
    (["--out", "G.onnx", "--mapping-out", "G.onnx"], "name the same file"),
    (["--out", "taken.onnx"], "exists; not overwriting"),
    (["--out", "G.onnx", "--pkl", "missing.pkl"], "no such file"),
])
def test_command_errors_are_one_line(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    args = _parser().parse_args(["export-onnx", *extra])
    assert run_command(args) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["taken.onnx"] and (tmp_path / "taken.onnx").read_bytes() == b"keep"
