"""BIB-AE with its post-processor (arXiv:2005.05334) on the ild-ecal-30 voxels: the networks'
shapes and symmetries, the losses against direct formulas, that each network's training lowers
its loss, checkpoints, seeded sampling and the CLI train -> sample -> evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from factories import shower_ddp
from pcbench.cli import cli
from pcbench.data import formats
from pcbench.data.containers import ShowerPointSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.errors import ConfigError
from pcbench.geometry import get_geometry
from pcbench.models import load_generator, model_config
from pcbench.models.showers.bibae import BIBAE, gradient_penalty, latent_mmd, sorted_kernel_mmd
from pcbench.models.showers.voxels import cells_to_showers, layer_images

#: a network of a few thousand weights with every part of the published one
TINY = {"latent": 8, "latent_encoded": 4, "enc_convs": [[2, 4, 2, 2], [4, 4, 2, 2]], "enc_fc": [16],
        "dec_fc": [16], "dec_start": [4, 8], "dec_up": [[4, 4, 2, 1, 16], [2, 4, 2, 2, 30]],
        "dec_convs": [[2, 3, 1, 1]], "critic_ndf": 2, "critic_features": 8, "critic_head": [8],
        "latent_critic": [8, 8], "pp_ndf": 4, "batch_size": 4, "n_critic": 1, "bibae_epochs": 1, "pp_epochs": 1,
        "mmd_cutoff": 200}


@pytest.fixture(scope="module")
def ild_train():
    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 3, 24)
    return ShowerPointSet(d["points"], d["points"][..., 3] > 0, d["incident_energy"])


@pytest.fixture(scope="module")
def voxels(ild_train):
    grid = get_geometry("ild-ecal-30")
    return torch.as_tensor(layer_images(ild_train.points, ild_train.mask, grid, threshold=0.0))[:, None]


def test_the_full_config_is_the_published_network():
    torch.manual_seed(0)
    m = BIBAE(model_config("bib-ae", "full"))
    assert [conv.out_channels for conv in m.ae.encoder.convs.convs] == [8, 16, 32, 64]
    assert m.ae.encoder.convs.out_shape == (5, 5, 5) and m.ae.encoder.mu.out_features == 24
    assert [n.normalized_shape for n in m.ae.encoder.convs.norms] == [(16,) * 3, (9,) * 3, (5,) * 3, (5,) * 3]
    assert m.ae.encoder.fc[0].in_features == 8001 and m.decoder.fc[0].in_features == 513
    assert m.decoder.up_sizes == [30, 60] and m.critic.branch_b.out_shape == (4, 4, 4)
    assert m.critic.fc_diff.in_features == 27000 and m.critic.head[0].in_features == 256
    x = torch.rand(2, 1, 30, 30, 30)
    label = m.label(np.array([20e3, 80e3]))
    assert torch.allclose(label.ravel(), torch.tensor([20.0, 80.0]))  # raw GeV, as the reference
    with torch.no_grad():
        recon, mu, logvar, z = m.ae(x, label, torch.Generator().manual_seed(1))
        assert recon.shape == x.shape and recon.min() >= 0 and z.shape == (2, 512) and mu.shape == (2, 24)
        eps = torch.randn((2, 512), generator=torch.Generator().manual_seed(1))
        assert torch.equal(z[:, 24:], eps[:, 24:])  # the 488 dimensions past the encoded ones are pure noise
        assert m.critic(torch.cat([x, recon], 1), label).shape == (2,)
        assert m.post(recon, label).shape == x.shape


def test_the_post_processor_commutes_with_voxel_permutations_and_the_latent_critic_with_coordinates():
    """Per-voxel layers with a summed conditioning: with the LayerNorms' initial (identity) affine
    the post-processor is equivariant under any permutation of the voxels; the latent critic
    scores every coordinate on its own."""
    torch.manual_seed(0)
    m = BIBAE(model_config("bib-ae", "small", **TINY))
    x = torch.rand(3, 1, 30, 30, 30) * 5
    label = m.label(np.array([15e3, 50e3, 85e3]))
    perm = torch.randperm(27000)
    with torch.no_grad():
        a = m.post(x.flatten(2)[..., perm].view_as(x), label).flatten(2)
        b = m.post(x, label).flatten(2)[..., perm]
        assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(b, x.flatten(2)[..., perm])
        z = torch.randn(5, 8)
        p = torch.randperm(8)
        assert torch.allclose(m.latent_critic(z[:, p]), m.latent_critic(z)[:, p])


def test_the_difference_branch_is_the_only_path_from_the_first_channel():
    """Real pairs (x, x) and fake (x, x_hat) differ in the first channel only through b - a."""
    torch.manual_seed(0)
    m = BIBAE(model_config("bib-ae", "small", **TINY))
    x, y = torch.rand(2, 1, 30, 30, 30), torch.rand(2, 1, 30, 30, 30)
    label = m.label(np.array([30e3, 60e3]))
    with torch.no_grad():
        before = m.critic(torch.cat([x, y], 1), label)
        assert not torch.allclose(before, m.critic(torch.cat([y, y], 1), label))
        m.critic.fc_diff.weight.zero_()
        assert torch.allclose(m.critic(torch.cat([x, y], 1), label), m.critic(torch.cat([y, y], 1), label))


def test_losses_against_direct_formulas():
    g = torch.Generator().manual_seed(0)
    z, prior = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)

    def k(a, b, alpha):
        return np.mean([[np.exp(-alpha * np.sum((u - v) ** 2)) for v in b] for u in a])

    zn, pn = z.numpy(), prior.numpy()
    want = k(pn, pn, 0.5) + k(zn, zn, 0.5) - 2 * k(pn, zn, 0.5)
    assert float(latent_mmd(z, prior, 0.5)) == pytest.approx(want, rel=1e-10)
    # sorted-kernel MMD: windows of 4 values every 2 up to 6 (starts 0, 2, 4; the last one truncated to 3 values
    # where only 7 voxels exist); zero for equal spectra, the same for any order of the voxels
    fake = torch.rand(2, 7, generator=g, dtype=torch.float64)
    real = torch.rand(2, 7, generator=g, dtype=torch.float64)
    got = sorted_kernel_mmd(fake, real, kernel=4, stride=2, cutoff=6, alpha=3.0)
    fs, rs = -np.sort(-fake.numpy(), 1), -np.sort(-real.numpy(), 1)
    per = [[k(fs[i, j:j + 4, None], fs[i, j:j + 4, None], 3) + k(rs[i, j:j + 4, None], rs[i, j:j + 4, None], 3)
            - 2 * k(fs[i, j:j + 4, None], rs[i, j:j + 4, None], 3) for j in (0, 2, 4)] for i in range(2)]
    assert float(got) == pytest.approx(np.mean(per), rel=1e-10) and float(got) > 0
    assert float(sorted_kernel_mmd(real[:, torch.randperm(7)], real, 4, 2, 6, 3.0)) == pytest.approx(0, abs=1e-12)
    # gradient penalty of a linear critic w.x: |grad| = |w| everywhere
    w = torch.tensor([3.0, 4.0])
    s_real, s_fake, gp = gradient_penalty(lambda p: p @ w, torch.ones(5, 2), torch.zeros(5, 2), torch.rand(5), 10.0)
    assert float(gp) == pytest.approx(10 * (5 - 1) ** 2) and torch.allclose(s_real, torch.full((5,), 7.0))


def test_each_network_lowers_its_loss(voxels, ild_train):
    """The critics, the autoencoder (against frozen critics) and the post-processor, each trained
    alone on one batch: its loss on that batch, with the same noise, falls."""
    torch.manual_seed(0)
    m = BIBAE(model_config("bib-ae", "small", **{**TINY, "lr_ae": 3e-3, "lr_critic": 3e-3, "lr_latent_critic": 3e-3,
                                                  "lr_pp": 1e-2}))
    opts = m.make_optimizers()
    x, label = voxels[:2], m.label(ild_train.incident_energy[:2])

    def losses(mode="identity", ae=True):
        return m.train_batch(x, label, torch.Generator().manual_seed(5), None, ae, mode)

    def train(names, mode="identity", n=4):
        for i in range(n):
            m.train_batch(x, label, torch.Generator().manual_seed(100 + i), {k: opts[k] for k in names},
                          names != ["pp"], mode)

    before = losses()
    train(["critic", "latent_critic"])
    after = losses()
    assert after["critic"] < before["critic"] and after["latent_critic"] < before["latent_critic"]
    train(["ae"])
    assert losses()["ae"] < after["ae"]
    pp0 = losses(ae=False)["pp_mse"]
    train(["pp"])
    assert losses(ae=False)["pp_mse"] < pp0
    mmd0 = losses("mmd", ae=False)["pp"]
    train(["pp"], "mmd")
    assert losses("mmd", ae=False)["pp"] < mmd0


def test_voxels_of_points_and_hits_of_voxels(ild_train, voxels):
    grid = get_geometry("ild-ecal-30")
    assert voxels.shape == (24, 1, 30, 30, 30)
    inside = voxels.sum((1, 2, 3, 4)).numpy()
    total = (ild_train.points[..., 3] * ild_train.mask).sum(1)
    assert np.all(inside <= total * (1 + 1e-5)) and np.all(inside > 0.5 * total)  # the 30x30 window holds most
    hits = cells_to_showers(voxels.numpy(), ild_train.incident_energy, grid)
    kept = voxels.numpy().reshape(24, -1)
    kept = kept[kept >= 0.1]
    assert hits.mask.sum() == kept.size and np.isclose(hits.points[..., 3][hits.mask].sum(), kept.sum(), rtol=1e-5)
    assert np.all(grid.cell_index(hits.points[hits.mask][:, :3].astype(np.float64)) >= 0)


def test_a_config_that_does_not_fit_is_one_config_error():
    with pytest.raises(ConfigError, match="not a layered grid"):
        BIBAE(model_config("bib-ae", "small", grid="calochallenge-2"))
    with pytest.raises(ConfigError, match="do not fit"):
        BIBAE(model_config("bib-ae", "small", dec_up=[[16, 4, 2, 1, 16]]))


def test_cli_train_sample_evaluate_and_checkpoint_round_trip(ild_train, tmp_path):
    data = formats.write(tmp_path / "train.h5", ild_train, layout="ild")
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}".replace(" ", ""))]
    res = CliRunner().invoke(cli, ["train", "bib-ae", "--data-file", str(data), "--out", str(tmp_path / "m"), *sets])
    assert res.exit_code == 0, res.output
    path = tmp_path / "m" / "last.pt"
    model, payload = load_generator(path)
    hist = payload["train_state"]["history"]
    assert [h["phase"] for h in hist] == ["bibae", "pp"] and payload["train_state"]["finished"]
    assert all(np.isfinite(v) for h in hist for k, v in h.items() if k not in ("phase", "epoch"))
    e = np.array([15e3, 45e3, 85e3])
    a, b = model.sample(e, seed=4), load_generator(path)[0].sample(e, seed=4)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.mask, b.mask)  # round trip, seeded
    assert not np.array_equal(a.points, model.sample(e, seed=5).points)
    grid = get_geometry("ild-ecal-30")
    assert a.mask.sum() > 0 and np.all(a.points[..., 3][a.mask] >= 0.1)
    cells = grid.cell_index(a.points[a.mask][:, :3].astype(np.float64))
    assert np.all(cells >= 0) and np.allclose(grid.cell_centres[cells], a.points[a.mask][:, :3], atol=1e-3)
    real = cells_to_showers(layer_images(ild_train.points, ild_train.mask, grid, threshold=0.0),
                            ild_train.incident_energy, grid)
    ref = formats.write(tmp_path / "ref.h5", real, attrs={"geometry": "ild-ecal-30"}, layout="ild")
    res = CliRunner().invoke(cli, ["sample", str(path), "-n", "24", "-o", str(tmp_path / "s.h5"),
                                   "--energies-from", str(ref)])
    assert res.exit_code == 0, res.output
    assert formats.read_attrs(tmp_path / "s.h5")["geometry"] == "ild-ecal-30"
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "s.h5"), "--reference", str(ref), "--profile", "fast",
                                   "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output


def test_training_under_ddp_keeps_the_replicas_equal(ild_train, tmp_path):
    """Two gloo processes, each on its own batches: the averaged gradients (through the gradient
    penalties' double backward too) keep all four trained networks identical."""
    data = formats.write(tmp_path / "train.h5", ild_train.subset(np.arange(8)), layout="ild")
    cfg = model_config("bib-ae", "small", **{**TINY, "pp_train_bibae": True})
    payload, r0, r1 = shower_ddp("bib-ae", cfg, data, tmp_path / "ddp")
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["finished"]
    assert {k.split(".")[0] for k in r0} == {"ae", "critic", "latent_critic", "post"}
    torch.manual_seed(0)  # the weights training started from (TrainOptions' seed)
    fresh = BIBAE(model_config("bib-ae", "small", **TINY)).state_dict()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert not torch.equal(r0["critic.score.weight"], fresh["critic.score.weight"])  # it trained
