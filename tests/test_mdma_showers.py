"""MDMA for showers (the CaloChallenge data-set-2 submission, ``pcbench.models.showers.mdma``):
the submitted sizes, the point networks' symmetries, the scaler, training steps, checkpoints,
seeded sampling and the CLI on data-set-2 voxels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from factories import cli_metric, shower_cli_round_trip, shower_ddp, voxel_samples
from pcbench.cli import cli
from pcbench.data import formats
from pcbench.data.containers import VoxelShowerSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.errors import ConfigError
from pcbench.geometry import get_geometry, project
from pcbench.models import TrainOptions, load_generator, model_config, train
from pcbench.models.generator import load_state
from pcbench.models.showers.mdma import MDMAShowers, ShowerMDMACritic, ShowerMDMAGenerator
from pcbench.models.showers.pipeline import PipelineSteps
from pcbench.models.showers.training import as_point_showers

TINY = {"gen_hidden": 8, "gen_heads": 2, "gen_layers": 1, "disc_hidden": 8, "disc_heads": 2, "disc_layers": 1,
        "gen_dim": 8, "disc_dim": 8, "batch_size": 4, "steps": 4, "warmup": 2, "max_iters": 4}
THR = 0.5e-3 / 0.033


@pytest.fixture(scope="module")
def ds2_small():
    """24 parameterised data-set-2 showers, the 24 with the fewest voxels of 64 (fast steps)."""
    d = simulate_shower_chunk(SHOWER_TARGETS["calochallenge-2"], 11, 64)
    keep = np.sort(np.argsort((d["voxels"] >= THR).sum(1), kind="stable")[:24])
    return VoxelShowerSet(d["voxels"][keep], d["incident_energy"][keep], "calochallenge-2")


def test_full_config_has_the_submitted_parameter_counts():
    """kaechb/CaloChallenge@b9ca552 ds2: generator 66,416; critic 42,240, of which an unused
    cls_token (16) and the last block's point update (768, its output unused) are left out here:
    the CaloChallenge's 108,656 in all less 784."""
    m = MDMAShowers(model_config("mdma-showers", "full"))
    n_gen = sum(p.numel() for p in m.gen.parameters())
    n_disc = sum(p.numel() for p in m.disc.parameters())
    assert n_gen == 66_416 and n_disc == 42_240 - 16 - 768 and n_gen + n_disc == 108_656 - 784
    assert m.disc.blocks[-1].fc1 is None and all(b.fc1 is not None for b in m.disc.blocks[:-1])
    assert len(m.gen.blocks) == 5 and len(m.disc.blocks) == 6 and m.disc.blocks[0].dropout == 0.2


def test_generator_is_equivariant_and_critic_invariant_and_padding_is_ignored():
    torch.manual_seed(0)
    gen, disc = ShowerMDMAGenerator(8, 16, 4, 2).eval(), ShowerMDMACritic(8, 16, 4, 2).eval()
    z = torch.randn(3, 12, 4)
    mask = torch.arange(12)[None] < torch.tensor([[12], [9], [5]])
    z = z * mask[..., None]
    cond = torch.tensor([[0.5, 12.0], [-1.0, 9.0], [2.0, 5.0]]) / torch.tensor([1.0, 10.0])
    perm = torch.stack([torch.cat([torch.randperm(int(n)), torch.arange(int(n), 12)]) for n in mask.sum(1)])
    take = lambda t: torch.take_along_dim(t, perm[..., None], 1)  # noqa: E731
    with torch.no_grad():
        out, out_p = gen(z, mask, cond), gen(take(z), torch.take_along_dim(mask, perm, 1), cond)
        assert torch.allclose(take(out), out_p, atol=1e-5) and out[~mask].abs().max() == 0
        s, f = disc(out, mask, cond)
        s_p, f_p = disc(out_p, torch.take_along_dim(mask, perm, 1), cond)
        assert torch.allclose(s, s_p, atol=1e-5) and torch.allclose(f, f_p, atol=1e-5)
        # more padding changes nothing (the reference's token start and count saw the padding)
        wide, wmask = torch.cat([z, torch.zeros(3, 7, 4)], 1), torch.cat([mask, torch.zeros(3, 7, dtype=bool)], 1)
        assert torch.allclose(gen(wide, wmask, cond)[:, :12], out, atol=1e-5)
        assert torch.allclose(disc(torch.cat([out, torch.zeros(3, 7, 4)], 1), wmask, cond)[0], s, atol=1e-5)
        assert not torch.allclose(s[:1], disc(out[:1] * 1.5, mask[:1], cond[:1])[0])


def test_scaler_standardises_and_points_come_back_to_their_voxels(ds2_small):
    pts, _ = as_point_showers(ds2_small, seed=3)
    m = MDMAShowers(model_config("mdma-showers", "small"))
    m.fit_scaler(pts)
    x = m.to_model(pts.points, pts.mask)
    feats = x[pts.mask]
    assert np.allclose(feats.mean(0), 0, atol=1e-4) and np.allclose(feats.std(0), 1, atol=1e-4)
    assert np.all(x[~pts.mask] == 0)
    idx = m.indices(pts.points[pts.mask])  # dequantised bin indices: inside the grid
    assert idx.min() >= 0 and np.all(idx.max(0) < [45, 16, 9])
    back = m.from_model(x, pts.mask).astype(np.float32)
    g = get_geometry("calochallenge-2")
    assert np.array_equal(g.cell_index(back[pts.mask][:, :3]), g.cell_index(pts.points[pts.mask][:, :3]))
    assert np.allclose(back[pts.mask][:, 3], pts.points[pts.mask][:, 3], rtol=1e-4)
    assert np.allclose(project(back, g, pts.mask).cells, project(pts.points, g, pts.mask).cells, rtol=1e-4)


def _batch(model, pts, rows):
    n = pts.mask.sum(1)
    w = int(n[rows].max())
    real = torch.as_tensor(model.to_model(pts.points, pts.mask)[rows, :w])
    return (real, torch.as_tensor(pts.mask[rows, :w]), model.condition(pts.incident_energy[rows], n[rows]),
            torch.as_tensor(pts.incident_energy[rows]))


def test_critic_steps_lower_the_critic_loss_and_generator_steps_the_generator_loss(ds2_small):
    pts, _ = as_point_showers(ds2_small)
    torch.manual_seed(1)
    m = MDMAShowers(model_config("mdma-showers", "small", **{**TINY, "lr": 3e-3}))
    m.fit_scaler(pts)
    args = _batch(m, pts, np.arange(4))
    opts = m.make_optimizers()
    rng = lambda: torch.Generator().manual_seed(5)  # noqa: E731  the same noise every call

    def losses():
        return m.gan_losses(*args, rng())

    before = losses()
    for _ in range(8):
        m.gan_losses(*args, rng(), {"disc": opts["disc"]})
    mid = losses()
    assert mid["d_loss"] < before["d_loss"] - 0.1
    assert mid["g_loss"] != before["g_loss"]  # the critic moved the generator's target
    for _ in range(8):
        m.gan_losses(*args, rng(), {"gen": opts["gen"]})
    after = losses()
    assert after["g_loss"] < mid["g_loss"] - 0.01 and after["d_loss"] != mid["d_loss"]


def test_training_checkpoint_and_seeded_sampling(ds2_small, tmp_path):
    cfg = model_config("mdma-showers", "small", **TINY)
    path = train("mdma-showers", cfg, ds2_small, TrainOptions(out_dir=tmp_path / "m", progress=False, seed=2))
    model, payload = load_generator(path)
    state = payload["train_state"]
    assert state["finished"] and state["step"] == 4 and payload["config"]["grid"] == "calochallenge-2"
    assert [h["step"] for h in state["history"]] == [4] and np.isfinite(state["history"][0]["d_loss"])
    again = MDMAShowers.from_payload(payload)
    load_state(again, payload["state_dict"])
    e = ds2_small.incident_energy[:5].astype(np.float64)
    a, b = model.sample(e, seed=4), again.sample(e, seed=4)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.points, model.sample(e, seed=5).points)
    # the number of points is a training shower's of about that energy
    pts, _ = as_point_showers(ds2_small)
    n = a.mask.sum(1)
    assert set(n.tolist()) <= set(pts.mask.sum(1).tolist()) and n.min() > 0
    assert a.points[~a.mask].sum() == 0 and np.all(a.points[a.mask][:, 3] > 0)
    v = model.sample(e, seed=4, batch_size=2, steps=PipelineSteps(project=True))
    assert isinstance(v, VoxelShowerSet) and v.voxels.shape == (5, 6480)
    kept = v.voxels > 0
    assert np.all(v.voxels[kept] >= THR) and np.all(kept.sum(1) <= n)
    assert np.allclose(v.voxels.sum(1), np.where(a.points[..., 3] >= 0, a.points[..., 3], 0).sum(1), rtol=0.2)
    # a second run from the same seed is the same run
    path2 = train("mdma-showers", cfg, ds2_small, TrainOptions(out_dir=tmp_path / "m2", progress=False, seed=2))
    sd1, sd2 = torch.load(path, weights_only=False)["state_dict"], torch.load(path2, weights_only=False)["state_dict"]
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)


def test_point_showers_on_a_layered_grid_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="CaloChallenge voxel showers"):
        MDMAShowers(model_config("mdma-showers", "small", grid="ild-ecal"))
    with pytest.raises(ConfigError, match="same \\(alpha, r\\) bins"):
        MDMAShowers(model_config("mdma-showers", "small", grid="calochallenge-1-photons"))


def test_cli_train_sample_evaluate_on_ds2_voxels(ds2_small, tmp_path):
    data, out = shower_cli_round_trip("mdma-showers", ds2_small, tmp_path, TINY)
    gen = voxel_samples(out, ds2_small, "mdma-showers")
    assert gen.voxels.shape == (24, 6480) and (gen.voxels > 0).sum() > 0
    assert 0 <= cli_metric(out, data, tmp_path, "sep_e_ratio") <= 1
    res = CliRunner().invoke(cli, ["train", "mdma-showers", "--data-file", str(data), "--out", str(tmp_path / "x"),
                                   "--set", "gen_heads=3"])
    assert res.exit_code != 0 and "not a multiple of heads" in res.output and "Traceback" not in res.output


def test_training_under_ddp_keeps_the_replicas_equal(ds2_small, tmp_path):
    """Two gloo ranks, each on its own batches (the gradient penalty's double backward included):
    the averaged gradients keep generator and critic identical on both."""
    data = formats.write(tmp_path / "ds2.h5", ds2_small)
    cfg = model_config("mdma-showers", "small", **{**TINY, "steps": 3})
    payload, r0, r1 = shower_ddp("mdma-showers", cfg, data, tmp_path / "ddp")
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["step"] == 3
    trained = [k for k in r0 if k.startswith(("gen.", "disc."))]
    assert len(trained) > 20 and any(not torch.equal(r0[k], payload["state_dict"][k] * 0) for k in trained)
    for k in trained:
        assert torch.equal(r0[k], r1[k]), k
    single = MDMAShowers(model_config("mdma-showers", "small", **TINY))
    assert not all(torch.equal(r0[k], single.state_dict()[k]) for k in trained if k in single.state_dict())
