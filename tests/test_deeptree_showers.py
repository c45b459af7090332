"""DeepTree for showers (``deeptree-showers``): the published parameter count, the permutation
properties of the generator and critic, the ragged critic against the jet blocks, the losses and
the scaling by hand, training steps, checkpoints, seeded sampling and the CLI on data-set-2 voxels."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from scipy import stats

from factories import shower_cli_round_trip, shower_ddp
from pcbench.data import formats
from pcbench.data.containers import ShowerPointSet, VoxelShowerSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.errors import ConfigError
from pcbench.models import TrainOptions, load_generator, model_config, train
from pcbench.models.nets.pool_critic import BipartitePool, readout
from pcbench.models.showers.deeptree import (DeepTreeShowers, GatedCondition, GatedTreeGenerator, RaggedBipartitePool,
                                             RaggedPoolCritic, ShowerScaler, _nn_deltas, cdf_distance, knn_distance,
                                             segment_readout)
from pcbench.models.showers.pipeline import PipelineSteps
from pcbench.models.showers.training import as_point_showers

THRESHOLD = 0.5e-3 / 0.033  # data set 2's readout threshold [MeV]
#: a 600-leaf tree and a small critic: showers of at most 600 hits
TINY = {"branches": [6, 10, 10], "widths": [8, 6, 5, 4], "n_global": 2, "hidden": 8, "layers": 2, "gin_hidden": 8,
        "critic_nodes": [4, 1], "critic_per_head": 2, "critic_heads": 2, "critic_latent": 4, "critic_global": 4,
        "critic_updates": 1, "critic_hidden": 8, "batch_size": 4, "steps": 4}


def _critic(c: dict) -> RaggedPoolCritic:
    return RaggedPoolCritic(4, 3, c["critic_nodes"], c["critic_per_head"], c["critic_heads"], c["critic_latent"],
                            c["critic_global"], c["critic_updates"], c["critic_dropout"], c["critic_hidden"], c["layers"])


def _generator(c: dict) -> GatedTreeGenerator:
    return GatedTreeGenerator(c["branches"], c["widths"], 3, c["n_global"], c["hidden"], c["layers"], c["gin_hidden"])


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def small_ds2():
    """24 parameterised data-set-2 showers with at most 600 hits above threshold."""
    d = simulate_shower_chunk(SHOWER_TARGETS["calochallenge-2"], 6, 80)
    keep = np.flatnonzero((d["voxels"] >= THRESHOLD).sum(1) <= 600)[:24]
    assert len(keep) == 24
    return VoxelShowerSet(d["voxels"][keep], d["incident_energy"][keep], "calochallenge-2")


@pytest.fixture(scope="module")
def tiny_model(small_ds2, tmp_path_factory):
    """A tiny model trained 4 steps, and its checkpoint."""
    out = tmp_path_factory.mktemp("dts")
    path = train("deeptree-showers", model_config("deeptree-showers", "small", **TINY), small_ds2,
                 TrainOptions(out_dir=out, progress=False))
    return load_generator(path)[0], path


def test_full_config_has_the_published_parameter_counts():
    # CaloChallenge final_results/reference_creation.ipynb, DeepTree ds2: generator 527,676, trained 2,240,496
    c = model_config("deeptree-showers", "full")
    gen, disc = _generator(c), _critic(c)
    assert _count(gen) == 527_676
    assert _count(disc) == 1_712_820
    assert _count(gen) + _count(disc) == 2_240_496
    assert math.prod(c["branches"]) == 6000 and c["widths"][-1] == 4


def test_gated_condition_by_hand():
    torch.manual_seed(0)
    gcu = GatedCondition(3, 2, 4).eval()
    x, r = torch.randn(5, 3), torch.randn(5, 2)
    h = gcu.joined(gcu.x_tf(x) + gcu.r_tf(r))
    assert torch.allclose(gcu(x, r), h[:, :4] * torch.nn.functional.leaky_relu(h[:, 4:], 0.1))
    assert gcu.x_tf.weight.shape == (8, 3) and gcu.x_tf.bias.shape == (8,)


def test_generator_is_equivariant_under_permutations_of_the_batch():
    torch.manual_seed(1)
    gen = _generator(model_config("deeptree-showers", "small", **TINY)).eval()
    z, cond = torch.randn(6, 8), torch.randn(6, 3)
    perm = torch.randperm(6)
    out = gen(z, cond)
    assert out.shape == (6, 600, 4)
    assert torch.allclose(gen(z[perm], cond[perm]), out[perm], atol=1e-5)
    assert not torch.allclose(out[0], out[1], atol=1e-3)  # the showers differ


def test_critic_is_invariant_under_permutations_of_the_points():
    torch.manual_seed(2)
    critic = _critic(model_config("deeptree-showers", "small", **TINY)).eval()
    sizes = [5, 9, 3]
    x = torch.randn(sum(sizes), 4)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    cond = torch.randn(3, 3)
    scores, _ = critic(x, batch, 3, cond)
    perm = torch.randperm(len(x))  # points of all showers shuffled together
    again, _ = critic(x[perm], batch[perm], 3, cond)
    assert scores.shape == (3, 3) and torch.allclose(again, scores, atol=1e-5)
    moved = x.clone()
    moved[0] += 1.0
    assert not torch.allclose(critic(moved, batch, 3, cond)[0][:, 0], scores[:, 0])  # it does see the points


def test_ragged_readout_and_pooling_equal_the_jet_blocks_on_equal_clouds():
    torch.manual_seed(3)
    x = torch.randn(2, 7, 6)
    batch = torch.arange(2).repeat_interleave(7)
    assert torch.allclose(segment_readout(x.reshape(14, 6), batch, 2), readout(x), atol=1e-6)
    pool = RaggedBipartitePool(6, 3, 2).eval()
    dense = BipartitePool.forward(pool, x)  # the jet pooling's own forward, same weights
    assert torch.allclose(pool(x.reshape(14, 6), batch, 2).reshape(2, 3, 6), dense, atol=1e-5)


def test_cdf_distance_and_nearest_neighbours_by_hand():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=50), rng.normal(0.5, 2, size=70)
    got = cdf_distance(torch.as_tensor(u), torch.as_tensor(v)).item()
    assert got * math.sqrt(2) == pytest.approx(stats.energy_distance(u, v), rel=1e-9)  # scipy: sqrt(2) x
    x = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [10, 0, 0], [10, 2, 0]])
    d = _nn_deltas(x, torch.tensor([0, 0, 0, 1, 1]), 2)
    assert torch.allclose(d, torch.tensor([1, 1, 2, 2, 2]) / 3.0)  # mean |dx| over the 3 coordinates
    r = torch.randn(40, 4)
    b = torch.arange(2).repeat_interleave(20)
    assert knn_distance(r, b, r.clone(), b, 2).item() == pytest.approx(0.0, abs=1e-12)
    assert knn_distance(r, b, r * 3, b, 2).item() > 0.1


def test_scaling_round_trips_energies_and_voxel_indices():
    rng = np.random.default_rng(1)
    e = rng.lognormal(0, 2, 2000)
    idx = np.column_stack([rng.integers(0, n, 2000) for n in (45, 16, 9)]).astype(float)
    deq = idx + rng.uniform(1e-6, 1 - 1e-6, idx.shape)
    raw = np.column_stack([rng.uniform(1e3, 1e6, 100), rng.integers(100, 3000, 100) + 0.5, rng.uniform(1, 1e3, 100)])
    s = ShowerScaler.fit(e, deq, raw, np.array([45.0, 16, 9]), rng)
    x = s.points_to_model(e, deq)
    assert abs(x.mean(0)).max() < 1e-3 and np.allclose(x.std(0), 1, atol=1e-3)
    e_back, idx_back = s.points_from_model(x)
    assert np.allclose(e_back, e, rtol=1e-4) and np.array_equal(idx_back, idx)
    c = s.conditions(raw)
    assert abs(np.median(c, 0)).max() < 0.05 and c.min() > -5.3  # normal scores, clipped at 1e-7


def test_one_step_lowers_the_critic_loss_and_the_generator_loss(small_ds2):
    torch.manual_seed(4)
    pts, _ = as_point_showers(small_ds2)
    cfg = model_config("deeptree-showers", "small", **TINY)
    m = DeepTreeShowers.build({**cfg, "grid": "calochallenge-2"}, pts, TrainOptions(out_dir="unused"))
    x, cond = m.to_model(pts, 0)
    real, mask, cond = torch.as_tensor(x[:6]), torch.as_tensor(pts.mask[:6]), torch.as_tensor(cond[:6])
    n_hits = mask.sum(1)
    xr, br = m._flat(real, mask)
    opt_d = torch.optim.Adam(m.disc.parameters(), lr=1e-3)
    opt_g = torch.optim.Adam(m.gen.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        xf, bf = m._fake(cond, n_hits, gen)
    m.eval()  # the spectral norms' power iteration fixed: the same network before and after

    def loss_d():
        s_r, s_f = m.disc(xr, br, 6, cond)[0], m.disc(xf, bf, 6, cond)[0]
        return (torch.relu(1 - s_r).mean(1) + torch.relu(1 + s_f).mean(1)).sum()

    def loss_g():
        fake, b = m._fake(cond, n_hits, torch.Generator().manual_seed(1))
        return -m.disc(fake, b, 6, cond)[0].mean(1).sum() + 10 * knn_distance(xr, br, fake, b, 6)

    for loss, opt in ((loss_d, opt_d), (loss_g, opt_g)):
        before = loss()
        opt.zero_grad()
        before.backward()
        opt.step()
        with torch.no_grad():
            assert loss().item() < before.item()


def test_training_records_losses_and_checkpoints_round_trip(tiny_model):
    model, path = tiny_model
    payload = torch.load(path, weights_only=False)
    st = payload["train_state"]
    assert st["step"] == 4 and st["finished"] and payload["config"]["grid"] == "calochallenge-2"
    h = st["history"][-1]
    assert h["step"] == 4 and np.isfinite([h["loss_d"], h["loss_g"], h["knn"]]).all()
    buf = io.BytesIO()
    torch.save({**model.payload(), "state_dict": model.state_dict()}, buf)
    buf.seek(0)
    again = DeepTreeShowers.restore(torch.load(buf, weights_only=False))
    e = np.array([2e3, 5e4, 3e5])
    a = model.sample(e, seed=3, steps=PipelineSteps(project=True))
    b = again.sample(e, seed=3, steps=PipelineSteps(project=True))
    assert np.array_equal(a.voxels, b.voxels) and a.voxels.sum() > 0


def test_seeded_sampling_is_reproducible_and_fills_small_batches(tiny_model, small_ds2):
    model, _ = tiny_model
    e = small_ds2.incident_energy[:3].astype(np.float64)
    a = model.sample(e, seed=5)
    b = model.sample(e, seed=5)
    c = model.sample(e, seed=6)
    assert np.array_equal(a.points, b.points) and not np.array_equal(a.points, c.points)
    n_train = set(small_ds2.voxels.__ge__(THRESHOLD).sum(1).tolist())
    assert set(a.mask.sum(1).tolist()) <= n_train  # n_hits drawn from training showers
    g = model.grid
    cells = g.cell_index(a.points[a.mask][:, :3].astype(np.float64))
    assert (cells >= 0).all() and np.allclose(a.points[a.mask][:, :3], g.cell_centres[cells], atol=1e-3)
    one = model.sample(e[:1], seed=5, batch_size=1)  # one shower: made in a batch filled up to batch_size
    assert len(one) == 1 and one.mask.sum() > 0


def test_bad_input_is_a_config_error(small_ds2):
    opts = TrainOptions(out_dir="unused", progress=False)
    with pytest.raises(ConfigError, match="more than the tree's 4 leaves"):
        DeepTreeShowers.build(model_config("deeptree-showers", "small", **{**TINY, "branches": [2, 2],
                                                                             "widths": [8, 6, 4]}),
                              as_point_showers(small_ds2)[0], opts)
    with pytest.raises(ConfigError, match="expected a CaloChallenge geometry"):
        ild = ShowerPointSet(np.ones((2, 3, 4), np.float32), np.ones((2, 3), bool), np.ones(2, np.float32), {})
        DeepTreeShowers.build(model_config("deeptree-showers", "small", grid="ild-ecal"), ild, opts)


def test_cli_train_sample_evaluate_on_calochallenge_voxels(small_ds2, tmp_path):
    from pcbench.evaluate import evaluate

    data, out = shower_cli_round_trip("deeptree-showers", small_ds2, tmp_path, TINY)
    gen = formats.read(out)
    assert type(gen).__name__ == "VoxelShowerSet" and gen.voxels.shape == (24, 6480)
    assert np.array_equal(gen.incident_energy, small_ds2.incident_energy)
    kept = gen.voxels[gen.voxels > 0]
    assert kept.size > 0 and kept.min() >= THRESHOLD
    r = evaluate(out, str(data), profile="fast", metrics=("sep_e_ratio",))
    assert 0 <= r.metrics["sep_e_ratio"].value <= 1 and r.provenance["geometry"] == "calochallenge-2"


def test_training_under_ddp_keeps_generator_and_critic_equal(small_ds2, tmp_path):
    """Two gloo ranks, each on its own batches: the averaged gradients keep both networks identical."""
    data = formats.write(tmp_path / "ds2.h5", small_ds2)
    payload, r0, r1 = shower_ddp("deeptree-showers", model_config("deeptree-showers", "small", **TINY), data,
                                 tmp_path / "ddp")
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["step"] == TINY["steps"]
    trained = [k for k in r0 if k.startswith(("gen.", "disc.")) and r0[k].is_floating_point() and "running_" not in k]
    assert {k.split(".")[0] for k in trained} == {"gen", "disc"}
    for k in trained:
        assert torch.equal(r0[k], r1[k]), k
    torch.manual_seed(0)
    fresh = DeepTreeShowers.build(model_config("deeptree-showers", "small", **TINY), as_point_showers(small_ds2)[0],
                                  TrainOptions(out_dir=tmp_path / "fresh", progress=False)).state_dict()
    assert any(not torch.equal(r0[k], fresh[k]) for k in trained)  # it trained
