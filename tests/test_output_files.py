"""What the commands write: never over a user's file, never half a file, never outside the folder asked for, with
the user's usual permissions; a full disk is one line and leaves nothing behind."""
import errno
import os
import stat

import numpy as np
import pytest
from PIL import Image

import explorer.export.files
import explorer.formats.native
from explorer.commands import main
from explorer.formats import load_network
from explorer.formats.native import save_network
from tests.fixtures.networks import tiny_stylegan2


@pytest.fixture
def network(tmp_path):
    path = tmp_path / "net.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), path)
    return path


def _full(*_, **__):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_convert_publishes_whole_with_the_users_permissions_and_never_touches_other_files(tmp_path, network,
                                                                                          capsys):
    out = tmp_path / "out.safetensors"
    partial = tmp_path / "out.safetensors.partial"
    partial.write_bytes(b"a user's file that happens to have this name")
    old_mask = os.umask(0o022)
    try:
        assert main(["convert", "--pkl", str(network), "--out", str(out)]) == 0
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert partial.read_bytes() == b"a user's file that happens to have this name"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors", "out.safetensors",
                                                          "out.safetensors.partial"]
    G = load_network(out).generator
    assert G.img_resolution == 32
    # Not overwritten; a .pkl name for safetensors is refused.
    before = out.read_bytes()
    assert main(["convert", "--pkl", str(network), "--out", str(out)]) == 1
    assert out.read_bytes() == before and "not overwriting" in capsys.readouterr().err
    assert main(["convert", "--pkl", str(network), "--out", str(tmp_path / "a.pkl")]) == 1
    assert "NAME.safetensors" in capsys.readouterr().err and not (tmp_path / "a.pkl").exists()


def test_convert_into_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, network, monkeypatch, capsys):
    monkeypatch.setattr(explorer.formats.native, "save_network", _full)
    out = tmp_path / "out.safetensors"
    assert main(["convert", "--pkl", str(network), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "No space left on device" in error and len(error.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]


def test_render_into_a_full_disk_leaves_no_empty_file_and_a_rerun_works(tmp_path, network, monkeypatch, capsys):
    outdir = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(explorer.export.files.os, "fsync", _full)
        assert main(["render", "--pkl", str(network), "--seeds", "3", "--outdir", str(outdir)]) == 1
    error = capsys.readouterr().err
    assert "disk is full" in error and len(error.strip().splitlines()) == 1
    assert list(outdir.iterdir()) == []
    assert main(["render", "--pkl", str(network), "--seeds", "3", "--outdir", str(outdir)]) == 0
    assert np.asarray(Image.open(outdir / "seed0003.png")).shape == (32, 32, 3)


def test_video_names_what_it_writes(tmp_path, network, capsys):
    assert main(["video", "--pkl", str(network), "--seeds", "0,1", "--frames-per-seed", "2", "--out",
                 str(tmp_path / "x.avi")]) == 1
    assert "NAME.mp4, NAME.gif" in capsys.readouterr().err and not (tmp_path / "x.avi").exists()
    for flag, value, message in (("--trunc", "1e9", "truncation.psi must be between -1 and 2"),
                                 ("--trunc", "nan", "truncation.psi must be a finite number")):
        assert main(["video", "--pkl", str(network), "--seeds", "0", "--out", str(tmp_path / "v.gif"), flag,
                     value]) == 1
        assert message in capsys.readouterr().err and not (tmp_path / "v.gif").exists()
