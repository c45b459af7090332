"""CaloPointFlow II: the DeepSetFlow (invertibility, log-determinant, permutation symmetry), the
zuko flows as configured, CDF dequantisation, the alpha assignment, training, checkpoints,
seeded sampling, and the CLI train -> sample -> evaluate on data-set-2 voxels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from factories import cli_metric, ds2_voxel_showers, shower_cli_round_trip, shower_ddp, voxel_samples
from pcbench.data import formats
from pcbench.data.containers import ShowerPointSet, VoxelShowerSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.errors import ConfigError
from pcbench.geometry import get_geometry
from pcbench.models import TrainOptions, load_generator, model_config, train
from pcbench.models.showers.calopointflow import CaloPointFlow, PointFlowStats, assign_alpha, encode_bins
from pcbench.models.showers.deepset_flow import DeepSetFlow
from pcbench.models.showers.pipeline import PipelineSteps
from pcbench.models.showers.training import as_point_showers

TINY = {"latent_dim": 4, "encoder_point_layers": [16, 16], "encoder_latent_layers": [16], "cond_transforms": 2,
        "cond_bins": 6, "cond_hidden": [16], "latent_transforms": 2, "latent_bins": 6, "latent_hidden": [16],
        "point_transforms": 3, "point_bins": 6, "point_hidden": [16], "point_net": [16], "reduce_net": [8],
        "epochs": 2, "batch_size": 8, "points_per_shower": 64}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ds2_voxels():
    return ds2_voxel_showers(32)


@pytest.fixture(scope="module")
def ds2_points(ds2_voxels):
    return as_point_showers(ds2_voxels)[0]


def _tiny_flow(seed: int = 0, dtype=torch.float64) -> DeepSetFlow:
    torch.manual_seed(seed)
    flow = DeepSetFlow(3, 2, transforms=3, bins=5, hidden=(16,), point_net=(8, 8), reduce_net=(8,)).to(dtype)
    with torch.no_grad():  # far from the identity: splines with structure, strong set summaries
        for p in flow.parameters():
            p.normal_(0, 0.3)
    return flow


# --- the flows ------------------------------------------------------------------------------------

def test_deepset_flow_inverts_to_1e5_and_its_log_det_is_the_autograd_jacobian():
    flow = _tiny_flow(dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 7, 3, generator=g) * 2
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    ctx = torch.randn(3, 2, generator=g)
    z, _ = flow.to_base(x, mask, ctx)
    assert (z - x).abs().max() > 0.5  # a transform far from the identity
    assert torch.allclose(flow.from_base(z, mask, ctx), x, atol=1e-5, rtol=0)

    flow = _tiny_flow(dtype=torch.float64)  # one set of 3 points: the full 9 x 9 Jacobian
    xs = torch.randn(1, 3, 3, generator=g, dtype=torch.float64)
    m1, c1 = torch.ones(1, 3, dtype=torch.bool), torch.randn(1, 2, generator=g, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: flow.to_base(v.view(1, 3, 3), m1, c1)[0].reshape(-1),
                                             xs.reshape(-1))
    _, ladj = flow.to_base(xs, m1, c1)
    assert torch.allclose(torch.linalg.slogdet(jac)[1], ladj.sum(), atol=1e-8)
    assert jac[0:3, 3:9].abs().max() > 1e-3  # the points of a set are coupled (through the summaries)
    logp = flow(xs, m1, c1)
    assert torch.allclose(logp.sum(), -0.5 * (flow.to_base(xs, m1, c1)[0] ** 2).sum() - 4.5 * np.log(2 * np.pi)
                          + ladj.sum(), atol=1e-10)


def test_configured_zuko_flows_invert_and_match_the_autograd_log_det(ds2_points):
    stats = PointFlowStats.fit(ds2_points, get_geometry("calochallenge-2"))
    torch.manual_seed(0)
    model = CaloPointFlow(model_config("calopointflow", "small", **TINY), stats).double()
    g = torch.Generator().manual_seed(2)
    for flow, dim, ctx_dim in ((model.cond_flow, 2, 1), (model.latent_flow, 4, 3)):
        with torch.no_grad():
            for p in flow.parameters():
                p.normal_(0, 0.5)
        c = torch.randn(ctx_dim, generator=g, dtype=torch.float64)
        x = torch.randn(dim, generator=g, dtype=torch.float64)
        t = flow(c).transform
        y = t(x)
        assert (y - x).abs().max() > 0.1 and torch.allclose(t.inv(y), x, atol=1e-5, rtol=0)
        jac = torch.autograd.functional.jacobian(lambda v: t(v), x)
        assert torch.allclose(t.log_abs_det_jacobian(x, y), torch.linalg.slogdet(jac)[1], atol=1e-8)


def test_point_flow_is_permutation_equivariant_and_the_encoder_invariant(ds2_points):
    flow = _tiny_flow()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    ctx = torch.randn(2, 2, generator=g, dtype=torch.float64)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    z, ladj = flow.to_base(x, mask, ctx)
    zp, ladjp = flow.to_base(x[:, perm], mask[:, perm], ctx)
    assert torch.allclose(zp, z[:, perm], atol=1e-12) and torch.allclose(ladjp, ladj[:, perm], atol=1e-12)
    moved = x.clone()
    moved[1, 4:] = 50.0  # padded points take no part in the real points' transform
    assert torch.allclose(flow.to_base(moved, mask, ctx)[0][1, :4], z[1, :4], atol=1e-12)
    torch.manual_seed(0)
    model = CaloPointFlow(model_config("calopointflow", "small", **TINY), PointFlowStats.fit(
        ds2_points, get_geometry("calochallenge-2"))).double()
    mu, logvar = model.encoder(x, mask)
    mup, logvarp = model.encoder(x[:, perm], mask[:, perm])
    assert torch.allclose(mu, mup, atol=1e-12) and torch.allclose(logvar, logvarp, atol=1e-12)
    assert not torch.allclose(mu[0], model.encoder(x[:, :5], mask[:, :5])[0][0])  # it does see the points


# --- the representation ---------------------------------------------------------------------------

def test_cdf_dequantisation_inverts_and_gives_normal_marginals(ds2_points):
    g = get_geometry("calochallenge-2")
    stats = PointFlowStats.fit(ds2_points, g)
    assert stats.layer_ids == tuple(range(45)) and (stats.n_alpha, stats.n_r) == (16, 9)
    z, r, f, m = encode_bins(ds2_points.points, ds2_points.mask, g, stats.layer_ids)
    assert np.array_equal(m, ds2_points.mask)
    t = g.voxel_table  # every point's own voxel: its layer and radial bin
    cell = g.cell_index(ds2_points.points[m][:, :3].astype(np.float64))
    assert np.array_equal(z[m], t["layer"][cell]) and np.array_equal(r[m], t["r_bin"][cell])
    assert np.allclose(np.bincount(r[m], minlength=9) / m.sum(), stats.pmf_r)
    torch.manual_seed(0)
    model = CaloPointFlow(model_config("calopointflow", "small", **TINY), stats)
    zt, rt, ft = (torch.as_tensor(v[m][None]) for v in (z, r, f))
    x = model.to_model(zt, rt, ft, torch.rand((*zt.shape, 2), generator=torch.Generator().manual_seed(0)))
    zb, rb, fb = model.from_model(x.numpy().astype(np.float64))
    assert np.array_equal(zb[0], z[m]) and np.array_equal(rb[0], r[m])
    assert np.allclose(fb[0], f[m], rtol=1e-4, atol=1e-9) and f[m].min() < 1e-5
    for k in (0, 1):  # dequantised and ndtri: standard normal marginals
        assert abs(float(x[0, :, k].mean())) < 0.03 and abs(float(x[0, :, k].std()) - 1) < 0.03
    assert abs(float(x[0, :, 2].mean())) < 1e-3 and abs(float(x[0, :, 2].std()) - 1) < 1e-3
    n, e = stats.decode_shower(stats.encode_shower(m.sum(1), np.full(len(m), 7.0), ds2_points.incident_energy,
                                                   np.full(len(m), 0.5)), ds2_points.incident_energy)
    assert np.array_equal(n, m.sum(1)) and np.allclose(e, 7.0, rtol=1e-9)


def test_alpha_bins_are_distinct_in_a_ring_up_to_n_alpha_points():
    counts = {(0, 3): 5, (0, 7): 16, (1, 3): 20, (1, 8): 40}
    shower = np.concatenate([np.full(c, s) for (s, _), c in counts.items()])
    ring = np.concatenate([np.full(c, k) for (_, k), c in counts.items()])
    perm = np.random.default_rng(0).permutation(len(ring))
    shower, ring = shower[perm], ring[perm]
    a = assign_alpha(shower, ring, 16, np.random.default_rng(1))
    assert a.min() >= 0 and a.max() < 16
    for (s, k), c in counts.items():
        sel = a[(shower == s) & (ring == k)]
        assert len(np.unique(sel)) == min(c, 16)  # distinct while the ring has at most 16 points
        assert np.bincount(sel, minlength=16).max() == int(np.ceil(c / 16))  # chunks of 16: full rounds
    assert np.array_equal(a, assign_alpha(shower, ring, 16, np.random.default_rng(1)))
    many = assign_alpha(np.zeros(16_000, int), np.arange(16_000) % 1000, 16, np.random.default_rng(2))
    assert np.bincount(many[np.arange(16_000) % 1000 == 0]).tolist() == [1] * 16  # a full ring: each bin once


def test_calopointflow_refuses_a_grid_it_does_not_model():
    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 5, 4)
    ild = ShowerPointSet(d["points"], d["points"][..., 3] > 0, d["incident_energy"])
    with pytest.raises(ConfigError, match="not a CaloChallenge geometry"):
        CaloPointFlow.build(model_config("calopointflow", "small", grid="ild-ecal"), ild, None)
    with pytest.raises(ConfigError, match="every layer binned alike"):
        PointFlowStats.fit(ild, get_geometry("calochallenge-1-pions"))


# --- training, checkpoints, sampling -----------------------------------------------------------

def test_training_lowers_the_losses_and_checkpoints_give_the_same_samples(ds2_voxels, ds2_points, tmp_path):
    cfg = model_config("calopointflow", "small", **{**TINY, "epochs": 12, "lr": 3e-3})
    torch.manual_seed(1)  # the weights training starts from (train seeds with opts.seed = 1 too)
    untrained = CaloPointFlow.build(cfg, ds2_points, None)
    path = train("calopointflow", cfg, ds2_voxels, TrainOptions(out_dir=tmp_path / "m", progress=False, seed=1))
    model, payload = load_generator(path)
    assert payload["train_state"]["finished"] and payload["config"]["grid"] == "calochallenge-2"
    a = model.training_arrays(ds2_points)
    rows = np.arange(len(ds2_points))

    def fixed(m):  # the same showers, points and noise before and after training
        with torch.no_grad():
            batch = m.batch(a, rows, np.random.default_rng(0), "cpu")
            return {k: float(v) for k, v in m.losses(*batch, torch.Generator().manual_seed(0)).items()}

    before, after = fixed(untrained), fixed(model)
    for k in ("cond", "kl", "points"):
        assert after[k] < before[k], (k, before, after)
    hist = [h["loss"] for h in payload["train_state"]["history"]]
    assert len(hist) == 12 and hist[-1] < hist[0]

    e = ds2_voxels.incident_energy[:6].astype(np.float64)
    s1 = model.sample(e, seed=3, batch_size=4)
    s2 = load_generator(path)[0].sample(e, seed=3, batch_size=4)
    assert np.array_equal(s1.points, s2.points) and np.array_equal(s1.mask, s2.mask)  # round trip, seeded
    assert not np.array_equal(model.sample(e, seed=4, batch_size=4).points, s1.points)
    g = get_geometry("calochallenge-2")
    pts = s1.points[s1.mask]
    cell = g.cell_index(pts[:, :3].astype(np.float64))
    assert cell.min() >= 0 and np.all(pts[:, 3] > 0)  # every point inside a voxel, with energy
    rows_, _ = np.nonzero(s1.mask)
    t = g.voxel_table
    ring = t["layer"][cell] * 9 + t["r_bin"][cell]
    for i in range(len(e)):  # at most 16 points of a ring: in distinct voxels (alpha drawn without replacement)
        rs, cs = ring[rows_ == i], cell[rows_ == i]
        for k in np.unique(rs):
            assert len(np.unique(cs[rs == k])) == min((rs == k).sum(), 16)
    vox = model.sample(e, seed=3, batch_size=4, steps=PipelineSteps(project=True))
    assert isinstance(vox, VoxelShowerSet) and vox.voxels.shape == (6, 6480)
    kept = vox.voxels > 0
    assert np.all(vox.voxels[kept] >= 0.5e-3 / 0.033) and np.all(kept.sum(1) <= s1.mask.sum(1))
    dense = np.zeros((6, 6480))
    np.add.at(dense, (rows_, cell), pts[:, 3])  # the points of a voxel summed, then the readout threshold
    assert np.allclose(vox.voxels, np.where(dense >= 0.5e-3 / 0.033, dense, 0), rtol=1e-5, atol=1e-6)


def test_cli_train_sample_evaluate_on_ds2_voxels(ds2_voxels, tmp_path):
    data, out = shower_cli_round_trip("calopointflow", ds2_voxels, tmp_path, {**TINY, "epochs": 1})
    gen = voxel_samples(out, ds2_voxels, "calopointflow")
    assert gen.voxels.shape == (32, 6480)
    assert 0 <= cli_metric(out, data, tmp_path, "sep_e_ratio") <= 1


def test_training_under_ddp_keeps_the_replicas_of_all_four_networks_equal(ds2_voxels, tmp_path):
    data = formats.write(tmp_path / "ds2.h5", ds2_voxels)
    cfg = model_config("calopointflow", "small", **{**TINY, "epochs": 1})
    payload, r0, r1 = shower_ddp("calopointflow", cfg, data, tmp_path / "ddp")
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["epoch"] == 1
    torch.manual_seed(0)
    fresh = CaloPointFlow.build(model_config("calopointflow", "small", **TINY), as_point_showers(ds2_voxels)[0], None)
    trained = [k for k in r0 if r0[k].is_floating_point()]
    assert {k.split(".")[0] for k in trained} == {"cond_flow", "encoder", "latent_flow", "point_flow"}
    for k in trained:
        assert torch.equal(r0[k], r1[k]), k
    assert not torch.equal(r0["encoder.point.0.weight"], fresh.state_dict()["encoder.point.0.weight"])  # it trained
