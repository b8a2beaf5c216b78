"""Files of layouts the explorer does not read are named in one line (what they are, what can be done), never a
generic error; pSp/e4e checkpoints open their StyleGAN2 decoder; torch's legacy layout is read as safely as
its zip layout. The files are written by tests/fixtures/foreign_writer.py and rosinality_writer.py."""
import collections
import io
import pickle
import types
import warnings

import numpy as np
import pytest
import torch

from explorer.formats import NetworkLoadError, load_network
from explorer.formats.foreign import FOREIGN_LAYOUTS, identify
from explorer.networks.stylegan2 import Generator
from tests.fixtures import foreign_writer
from tests.fixtures.networks import randomize_
from tests.fixtures.nvlabs_pickle_writer import nvlabs_torch_save_bytes
from tests.fixtures.rosinality_writer import rosinality_state

torch.set_num_threads(1)
NARROW = {4: 8, 8: 8, 16: 4}

CASES = {
    "xl-superres": (lambda: foreign_writer.stylegan_xl_pickle(superres=True), "StyleGAN-XL pickle: not supported yet"),
    "xl-stem": (lambda: foreign_writer.stylegan_xl_pickle(superres=False), "StyleGAN-XL pickle: not supported yet"),
    "projected-gan": (foreign_writer.projected_gan_pickle, "Projected GAN pickle: not supported yet"),
    "stylegan-t": (foreign_writer.stylegan_t_pickle, "StyleGAN-T pickle: not supported yet"),
    "lucidrains": (foreign_writer.lucidrains_checkpoint, "lucidrains stylegan2-pytorch checkpoint: not supported yet"),
    "lightweight-gan": (foreign_writer.lightweight_gan_checkpoint,
                        "lucidrains lightweight-gan checkpoint: not supported yet"),
    "mmgeneration": (foreign_writer.mmgeneration_checkpoint, "MMGeneration checkpoint: not supported yet"),
    "psp-encoder": (lambda: foreign_writer.psp_checkpoint(None),
                    "pSp/e4e encoder checkpoint: this is an encoder without its generator (no decoder weights); "
                    "open the StyleGAN2 generator it was trained with"),
    "torchscript": (foreign_writer.torchscript_archive,
                    "TorchScript archive: it holds program code, which this explorer never runs; open the network "
                    "file it was exported from"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_foreign_layout_is_named_in_one_line(tmp_path, name):
    make, line = CASES[name]
    path = tmp_path / "file"
    path.write_bytes(make())
    with pytest.raises(NetworkLoadError) as error:
        load_network(path)
    assert str(error.value) == line


def test_every_foreign_layout_has_a_case():
    named = {line.split(":")[0] for _, line in CASES.values()}
    assert named == {layout.label for layout in FOREIGN_LAYOUTS}


def test_files_of_no_known_layout_keep_the_loaders_own_message(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model": torch.zeros(3)}, buffer)
    assert identify(buffer.getvalue()) is None
    path = tmp_path / "other.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(NetworkLoadError, match="not a rosinality one .* its entries: 'model'"):
        load_network(path)


def _render(G, seed=0):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        return G.synthesis(G.mapping(z, None, truncation_psi=0.7), noise_mode="const").image


@pytest.mark.parametrize("latent_shape", [(8,), (6, 8)], ids=["w", "w-per-layer"])
def test_a_psp_checkpoint_opens_its_decoder_as_the_rosinality_generator_it_is(tmp_path, latent_shape):
    decoder = rosinality_state(size=16, style_dim=8, n_mlp=2, channels=NARROW, seed=3)
    latent = torch.randn(8)
    buffer = io.BytesIO()
    torch.save({"g_ema": decoder, "latent_avg": latent}, buffer)
    (tmp_path / "ros.pt").write_bytes(buffer.getvalue())
    (tmp_path / "psp.pt").write_bytes(foreign_writer.psp_checkpoint(decoder, latent.expand(latent_shape).clone()))
    reference, psp = load_network(tmp_path / "ros.pt"), load_network(tmp_path / "psp.pt")
    assert psp.format == "rosinality" and psp.detail.startswith("pSp/e4e checkpoint (its decoder")
    assert not psp.w_avg_estimated and torch.equal(psp.generator.mapping.w_avg, latent)
    image = _render(psp.generator)
    assert torch.equal(image, _render(reference.generator)) and image.abs().max() > 0.1


def test_legacy_and_zip_layouts_load_the_same_network(tmp_path):
    checkpoint = {"g_ema": rosinality_state(size=16, style_dim=8, n_mlp=2, channels=NARROW, seed=4),
                  "latent_avg": torch.randn(8)}
    for legacy in (False, True):
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer, _use_new_zipfile_serialization=not legacy)
        (tmp_path / f"{legacy}.pt").write_bytes(buffer.getvalue())
    zipped, legacy = load_network(tmp_path / "False.pt"), load_network(tmp_path / "True.pt")
    assert (tmp_path / "True.pt").read_bytes()[:2] == b"\x80\x02"
    assert torch.equal(_render(zipped.generator), _render(legacy.generator))


def _legacy_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def test_legacy_files_that_declare_more_than_they_hold_are_refused(tmp_path):
    data = _legacy_bytes({"g_ema": {"style.1.weight": torch.zeros(1000)}})
    count = (1000).to_bytes(8, "little")
    assert data.count(count) == 1
    path = tmp_path / "x.pt"
    path.write_bytes(data[:-8])   # its data cut short
    with pytest.raises(NetworkLoadError, match="truncated or damaged: a storage of 1,000 values has only"):
        load_network(path)
    path.write_bytes(data.replace(count, (999).to_bytes(8, "little")))   # a count other than it declared
    with pytest.raises(NetworkLoadError, match="declared with 1,000 values holds 999"):
        load_network(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_an_nvlabs_generator_saved_whole_with_torch_save_opens(tmp_path, legacy):
    """PTI saves its tuned generators with torch.save(G): NVlabs' persistent records inside torch's layout."""
    G = randomize_(Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                             mapping_kwargs=dict(num_layers=2), channel_base=64, channel_max=8, num_fp16_res=0,
                             conv_clamp=None), 7).eval()
    (tmp_path / "model.pt").write_bytes(nvlabs_torch_save_bytes(G, legacy=legacy))
    loaded = load_network(tmp_path / "model.pt")
    assert loaded.format == "nvlabs-pickle" and "saved with torch.save" in loaded.detail
    image = _render(loaded.generator)
    assert torch.equal(image, _render(G)) and image.abs().max() > 0.1


class _StretchingPickler(pickle.Pickler):
    """Records the tensor marked `stretch` with a size ten times its storage (a damaged or hostile file)."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor) and getattr(obj, "stretch", False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                storage = obj.storage()
            return torch._utils._rebuild_tensor_v2, (storage, 0, (obj.numel() * 10,), (1,), False,
                                                     collections.OrderedDict())
        return NotImplemented


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_tensor_larger_than_its_storage_is_refused_in_both_layouts(tmp_path, legacy):
    tensor = torch.zeros(10)
    tensor.stretch = True
    buffer = io.BytesIO()
    torch.save({"g_ema": {"style.1.weight": tensor}}, buffer, _use_new_zipfile_serialization=not legacy,
               pickle_module=types.SimpleNamespace(Pickler=_StretchingPickler, dump=pickle.dump, __name__="pickle"))
    (tmp_path / "x.pt").write_bytes(buffer.getvalue())
    with pytest.raises(NetworkLoadError, match=r"size \[100\] reaches value 100 of a storage that holds 10"):
        load_network(tmp_path / "x.pt")
