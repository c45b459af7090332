"""Shower generators: EDM pieces, PointWise Net, ShowerFlow, CaloClouds II and its consistency
model, the pipeline's calibrations, checkpoints, training steps and sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from factories import ds2_voxel_showers, free_port, shower_ddp
from pcbench.cli import cli
from pcbench.data import formats
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.data.containers import ShowerPointSet
from pcbench.geometry import get_geometry
from pcbench.models.showers.caloclouds2 import CaloClouds2
from pcbench.models.showers.caloclouds2_cm import CaloClouds2CM
from pcbench.models.showers.edm import Denoiser, karras_sigmas, sample_euler, sample_heun
from pcbench.models.showers.pointwise import PointWiseNet
from pcbench.models.showers.flow import ShowerStats, by_rows, shower_quantities
from pcbench.models.showers.pipeline import (OccupancyCalibration, PipelineSteps, assign_layers, calibrate_cog,
                                          calibrate_layer_energy)
from pcbench.models import model_config
from pcbench.models import TrainOptions, load_generator, train

TINY = {"widths": [16, 16], "flow_transforms": 1, "flow_hidden": [16], "flow_epochs": 2, "flow_batch_size": 16,
        "diffusion_steps": 6, "batch_size": 4, "points_per_shower": 32, "num_steps": 3}


class _Exact(torch.nn.Module):
    """D(x, sigma) for data concentrated at a point mu: the exact denoiser of N(mu, s0^2) data."""

    def __init__(self, mu: float, s0: float):
        super().__init__()
        self.mu, self.s0 = mu, s0

    def forward(self, x, sigma, context):
        s = torch.as_tensor(sigma, dtype=x.dtype)
        return self.mu + (x - self.mu) * self.s0 ** 2 / (self.s0 ** 2 + s ** 2)


def test_heun_integrates_the_probability_flow_to_second_order():
    """For Gaussian data the ODE has the solution x(s) = mu + (x0 - mu) sqrt((s0^2 + s^2) / (s0^2 + S^2)):
    Heun's error falls ~4x per halving of the step, Euler's ~2x."""
    mu, s0, smax, smin = 0.7, 0.5, 10.0, 0.05
    x0 = torch.tensor([[[3.0]]], dtype=torch.float64)
    exact = mu + (x0 - mu) * math.sqrt((s0 ** 2 + smin ** 2) / (s0 ** 2 + smax ** 2))
    den = _Exact(mu, s0)

    def err(sampler, n):
        sig = karras_sigmas(n, smin, smax).double()[:-1]  # stop at sigma_min
        return abs(float(sampler(den, x0.clone(), sig, None) - exact))

    heun = [err(sample_heun, n) for n in (8, 16, 32)]
    euler = [err(sample_euler, n) for n in (8, 16, 32)]
    assert heun[0] / heun[1] > 3.0 and heun[1] / heun[2] > 3.5
    assert 1.6 < euler[1] / euler[2] < 2.6 and heun[2] < euler[2] / 10


def test_karras_sigmas_and_evaluation_count():
    s = karras_sigmas(13)
    assert len(s) == 14 and s[0] == pytest.approx(80.0) and s[12] == pytest.approx(0.002) and s[-1] == 0
    calls = []

    class Count(torch.nn.Module):
        def forward(self, x, sigma, context):
            calls.append(1)
            return x * 0

    sample_heun(Count(), torch.ones(1, 2, 4), s, None)
    assert len(calls) == 25  # 13 steps = 25 network evaluations, as CaloClouds II


def test_pointwise_net_is_pointwise_and_consistency_boundary_holds():
    net = PointWiseNet(4, 2, (8, 8))
    x, ctx = torch.randn(2, 5, 4), torch.randn(2, 2)
    sig = torch.tensor([1.0, 2.0])
    y = net(x, sig, ctx)
    assert y.shape == (2, 5, 4)
    y_perm = net(x[:, [4, 2, 0, 1, 3]], sig, ctx)
    assert torch.allclose(y_perm, y[:, [4, 2, 0, 1, 3]], atol=1e-6)  # no interaction between points
    cm = Denoiser(net, consistency=True, sigma_min=0.002)
    assert torch.allclose(cm(x, 0.002, ctx), x)  # D(x, sigma_min) = x


def test_folded_inference_layers_equal_the_plain_form():
    """Without autograd the gate and bias are folded into per-shower weights: the same function."""
    from pcbench.models.showers.pointwise import ConcatSquashLinear

    torch.manual_seed(0)
    net = PointWiseNet(4, 2, (32, 64, 32))
    x, ctx, sig = torch.randn(3, 50, 4), torch.randn(3, 2), torch.tensor([0.1, 1.0, 30.0])
    plain = net(x, sig, ctx)  # autograd on: the plain form
    assert plain.requires_grad
    with torch.no_grad():
        folded = net(x, sig, ctx)
        ConcatSquashLinear.fold = False
        try:
            unfolded = net(x, sig, ctx)
        finally:
            ConcatSquashLinear.fold = True
    assert torch.allclose(folded, plain.detach(), rtol=1e-5, atol=1e-6) and torch.equal(unfolded, plain.detach())
    assert not torch.equal(folded, unfolded)  # a different order of float32 operations, i.e. the folded path ran


def test_calibrations_by_hand():
    g = get_geometry("ild-ecal")
    mask = np.array([[True, True, True, False]])
    depth = assign_layers(np.array([[0.3, -1.0, 0.9, 5.0]]), mask, np.array([[2] + [0] * 28 + [1]]), g.layer_depths)
    assert depth[0].tolist() == [g.layer_depths[0], g.layer_depths[0], g.layer_depths[29], 0.0]
    layer = np.array([[0, 0, 29, -1]])
    e = calibrate_layer_energy(np.array([[1.0, 3.0, -2.0, 0]]), layer, mask, np.array([[8.0] + [0] * 28 + [5.0]]))
    assert e[0].tolist() == [2.0, 6.0, 0.0, 0.0]  # scaled per layer; negative energy -> 0 (layer 29 cannot reach 5)
    x = calibrate_cog(np.array([[1.0, 3.0, 5.0, 0.0]]), np.array([[1.0, 1.0, 2.0, 0.0]]), mask, np.array([10.0]))
    assert (x[0, :3] * [1, 1, 2]).sum() / 4 == pytest.approx(10.0) and x[0, 3] == 0
    occ = OccupancyCalibration(OccupancyCalibration.fit_cubic([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]),
                               OccupancyCalibration.fit_cubic([2, 4, 6, 8, 10], [3, 6, 9, 12, 15]))
    assert occ(np.array([4.0]))[0] == pytest.approx(12.0)  # 4 real points -> 8 hits -> 12 generated points


@pytest.fixture(scope="module")
def ild_train():
    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 5, 48)
    return ShowerPointSet(d["points"], d["points"][..., 3] > 0, d["incident_energy"])


def test_shower_quantities_and_flow_round_trip(ild_train):
    g = get_geometry("ild-ecal")
    q = shower_quantities(ild_train.points, ild_train.mask, g)
    assert np.array_equal(q["points_per_layer"].sum(1), ild_train.mask.sum(1))
    chunked = by_rows(lambda p, m: shower_quantities(p, m, g), ild_train.points, ild_train.mask, chunk=7)
    assert all(np.array_equal(chunked[k], q[k], equal_nan=True) for k in q)  # row-wise: chunks change nothing
    assert np.allclose(q["energy_per_layer"].sum(1), ild_train.points[..., 3].sum(1), rtol=1e-5)
    model = CaloClouds2(model_config("caloclouds2", "small", **TINY), ShowerStats.fit(ild_train.points, ild_train.mask, g))
    f = model.flow.encode(q, ild_train.incident_energy)
    back = model.flow.decode(f.astype(np.float64), ild_train.incident_energy)
    assert np.allclose(back["n_points"], q["n_points"]) and np.allclose(back["e_sum"], q["e_sum"], rtol=1e-5)
    assert np.allclose(back["energy_fractions"], q["energy_per_layer"] / q["e_sum"][:, None], atol=1e-6)


def test_training_reduces_the_losses_and_checkpoints_round_trip(ild_train, tmp_path):
    cfg = model_config("caloclouds2", "small", **{**TINY, "flow_epochs": 25, "diffusion_steps": 400,
                                                          "batch_size": 8, "points_per_shower": 64, "lr": 3e-3,
                                                          "flow_lr": 5e-3})
    opts = TrainOptions(out_dir=tmp_path / "cc2", progress=False, occupancy_showers=8, seed=1)
    g = get_geometry("ild-ecal")
    torch.manual_seed(1)  # the weights training starts from
    untrained = CaloClouds2(cfg, ShowerStats.fit(ild_train.points, ild_train.mask, g))
    path = train("caloclouds2", cfg, ild_train, opts)
    model, payload = load_generator(path)
    hist = payload["train_state"]["history"]
    flow = [h["nll"] for h in hist if h["phase"] == "flow"]
    assert flow[-1] < flow[0]
    x = torch.as_tensor(model.to_model(ild_train.points, ild_train.mask))[:, :300]
    m = torch.as_tensor(ild_train.mask)[:, :300]
    ctx = model.point_context(ild_train.incident_energy, ild_train.mask.sum(1))

    def fixed_loss(mdl):  # the same showers, noise levels and noise before and after training
        with torch.no_grad():
            return float(mdl.diffusion_loss(x, m, ctx, torch.Generator().manual_seed(0)))

    assert fixed_loss(model) < fixed_loss(untrained)
    diff = [h["loss"] for h in hist if h["phase"] == "diffusion"]  # means over 50-step windows
    assert diff[-1] < diff[0]
    assert payload["train_state"]["finished"] and model.occupancy is not None
    e = np.array([20e3, 60e3, 85e3])
    a = model.sample(e, seed=3)
    b = load_generator(path)[0].sample(e, seed=3)
    assert np.array_equal(a.points, b.points)  # checkpoint round trip and a reproducible seed
    assert a.points.shape[0] == 3 and np.all(a.incident_energy == e.astype(np.float32))
    g = get_geometry("ild-ecal")
    assert np.all(g.layer_of_depth(a.points[a.mask][:, 1]) >= 0) and np.all(a.points[..., 3][a.mask] > 0)
    q = model.flow.sample(e, 3 * 100_003)  # (the first batch's seed) the calibrations give each layer that has energetic points the flow's energy
    got = shower_quantities(a.points, a.mask, g)["energy_per_layer"]
    want = q["energy_fractions"] * q["e_sum"][:, None]
    assert (got > 0).sum() > 10 and np.allclose(got[got > 0], want[got > 0], rtol=1e-4)

    # consistency distillation: the student matches the teacher's multi-step output better after training
    cm_cfg = model_config("caloclouds2-cm", "small", **{**TINY, "cm_steps": 150, "batch_size": 8,
                                                                "points_per_shower": 64, "lr": 2e-3})
    cm_opts = TrainOptions(out_dir=tmp_path / "cm", progress=False, teacher=path, seed=1)
    before = CaloClouds2CM.from_teacher(model, cm_cfg)
    cm_path = train("caloclouds2-cm", cm_cfg, ild_train, cm_opts)
    after, cm_payload = load_generator(cm_path)
    ctx = model.point_context(np.full(16, 50e3), np.full(16, 100))

    def gap(student):
        g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
        ref = model.generate_points(ctx, 100, g1, num_steps=13)
        return float((student.generate_points(ctx, 100, g2) - ref).pow(2).mean())

    assert gap(after) < gap(before)
    assert cm_payload["provenance"]["teacher"] == str(path)
    cm_losses = [h["loss"] for h in cm_payload["train_state"]["history"]]
    assert len(cm_losses) >= 1


def test_resume_continues_where_it_stopped(ild_train, tmp_path):
    cfg = model_config("caloclouds2", "small", **{**TINY, "diffusion_steps": 20})
    full = train("caloclouds2", cfg, ild_train,
                              TrainOptions(out_dir=tmp_path / "a", progress=False, occupancy_showers=4, checkpoint_every=10))
    half = train("caloclouds2", {**cfg, "diffusion_steps": 10}, ild_train,
                              TrainOptions(out_dir=tmp_path / "b", progress=False, occupancy_showers=4))
    assert torch.load(half, weights_only=False)["train_state"]["step"] == 10
    resumed = train("caloclouds2", cfg, ild_train,
                                 TrainOptions(out_dir=tmp_path / "b", progress=False, occupancy_showers=4, resume=True))
    sa, sb = torch.load(full, weights_only=False), torch.load(resumed, weights_only=False)
    assert sb["train_state"]["step"] == 20
    for k in sa["state_dict"]:
        if k.startswith("denoiser"):
            assert torch.allclose(sa["state_dict"][k], sb["state_dict"][k], atol=1e-6), k


def test_cli_train_sample_evaluate_baseline(ild_train, tmp_path):
    data = formats.write(tmp_path / "train.h5", ild_train, layout="ild")
    res = CliRunner().invoke(cli, ["train", "shower-baseline", "--data-file", str(data), "--out", str(tmp_path / "base")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["sample", str(tmp_path / "base" / "last.pt"), "-n", "20", "-o", str(tmp_path / "s.h5"),
                                   "--energies-from", str(data)])
    assert res.exit_code == 0, res.output
    s = formats.read(tmp_path / "s.h5")
    attrs = formats.read_attrs(tmp_path / "s.h5")
    assert len(s) == 20 and np.array_equal(s.incident_energy, ild_train.incident_energy[:20])
    assert attrs["model"] == "shower-baseline" and attrs["generation_time_per_object_s"] > 0


def test_caloclouds_one_trains_and_samples(ild_train, tmp_path):
    from pcbench.models.showers.caloclouds import CaloClouds, ddpm_betas

    b = ddpm_betas(100)
    assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02) and b[50] == pytest.approx(((1e-2 + 0.02 ** 0.5 * 50 / 99 - 1e-2 * 50 / 99)) ** 2)
    cfg = model_config("caloclouds", "small", **{**TINY, "latent": 4, "encoder_hidden": 16, "latent_transforms": 1,
                                                         "ddpm_steps": 20, "diffusion_steps": 300, "batch_size": 8,
                                                         "points_per_shower": 64, "lr": 3e-3})
    g = get_geometry("ild-ecal")
    torch.manual_seed(2)
    untrained = CaloClouds(cfg, ShowerStats.fit(ild_train.points, ild_train.mask, g))
    path = train("caloclouds", cfg, ild_train, TrainOptions(out_dir=tmp_path, progress=False,
                                                                                 occupancy_showers=4, seed=2))
    model, _ = load_generator(path)
    x = torch.as_tensor(model.to_model(ild_train.points, ild_train.mask))[:, :300]
    m = torch.as_tensor(ild_train.mask)[:, :300]
    ctx = model.point_context(ild_train.incident_energy, ild_train.mask.sum(1))
    with torch.no_grad():
        before = float(untrained.diffusion_loss(x, m, ctx, torch.Generator().manual_seed(0)))
        after = float(model.diffusion_loss(x, m, ctx, torch.Generator().manual_seed(0)))
    assert after < before
    s = model.sample(np.array([30e3, 70e3]), seed=1)
    assert len(s) == 2 and s.mask.sum() > 0 and np.array_equal(s.points, model.sample(np.array([30e3, 70e3]), seed=1).points)


# --- CaloChallenge voxels, trained on as points -------------------------------------------------

def test_layer_stack_of_a_cylindrical_geometry_counts_only_layers_with_voxels():
    from pcbench.geometry import layer_stack

    s = layer_stack(get_geometry("calochallenge-1-photons"))  # voxels in layers 0, 1, 2, 3, 12 only
    assert s.n_layers == 5 and s.depths.tolist() == [0.5, 1.5, 2.5, 3.5, 12.5]
    assert s.layer_of(np.array([0.0, 0.999, 3.5, 12.0, 12.99, 5.5, 13.0, -0.01, np.nan])).tolist() == \
        [0, 0, 3, 4, 4, -1, -1, -1, -1]
    assert s.plane_axes == (0, 1) and s.depth_axis == 2 and s.threshold == 1.0
    ild = layer_stack(get_geometry("ild-ecal"))
    assert ild.plane_axes == (0, 2) and ild.depth_axis == 1 and ild.threshold == pytest.approx(0.1)
    assert np.array_equal(ild.layer_of(ild.depths), np.arange(30))


@pytest.fixture(scope="module")
def ds2_voxels():
    return ds2_voxel_showers(32)


def test_voxels_become_one_point_per_voxel_above_threshold(ds2_voxels):
    from pcbench.geometry import project
    from pcbench.models.showers.training import as_point_showers

    pts, name = as_point_showers(ds2_voxels, seed=4)
    g = get_geometry(name)
    thr = 0.5e-3 / 0.033
    kept = np.where(ds2_voxels.voxels >= thr, ds2_voxels.voxels, 0)
    assert name == "calochallenge-2" and np.array_equal(pts.mask.sum(1), (kept > 0).sum(1))
    assert (ds2_voxels.voxels > 0).sum() > (kept > 0).sum()  # the threshold removed some voxels
    back = project(pts.points, g, pts.mask).cells
    assert np.array_equal(back, kept)  # each point inside its own voxel, with its energy
    z = pts.points[pts.mask][:, 2]
    assert np.all(z != np.floor(z))  # placed inside the layer, not on its edge (uniform placement)
    assert np.array_equal(as_point_showers(ds2_voxels, seed=4)[0].points, pts.points)


def test_caloclouds2_on_calochallenge_voxels_trains_samples_and_evaluates(ds2_voxels, tmp_path):
    from pcbench.evaluate import evaluate
    from pcbench.models.showers.training import as_point_showers

    cfg = model_config("caloclouds2", "small", **{**TINY, "diffusion_steps": 30})
    path = train("caloclouds2", cfg, ds2_voxels, TrainOptions(out_dir=tmp_path / "m", progress=False,
                                                                                   occupancy_showers=8))
    model, payload = load_generator(path)
    assert payload["config"]["grid"] == "calochallenge-2" and model.layers.n_layers == 45
    e = ds2_voxels.incident_energy.astype(np.float64)
    assert model.stats.e_inc_log and model.stats.e_inc_lo == pytest.approx(e.min())  # 1 GeV - 1 TeV: log conditioning
    assert np.allclose(model.flow.context(np.array([e.min(), e.max()])).ravel(), [0.0, 1.0], atol=1e-6)
    st = model.stats  # voxel energies span decades: the point model sees log E over the training range
    assert st.point_e_log and st.point_e_lo >= 0.5e-3 / 0.033
    grid_e = np.geomspace(st.point_e_lo, st.point_e_hi, 7)
    assert np.allclose(st.point_energy_to_model(grid_e), np.linspace(-1, 1, 7))
    assert np.allclose(st.point_energy_from_model(st.point_energy_to_model(grid_e)), grid_e, rtol=1e-9)
    pts, _ = as_point_showers(ds2_voxels)
    q = shower_quantities(pts.points, pts.mask, model.layers)  # wide range: e_sum / E_inc and log n as features
    back = model.flow.decode(model.flow.encode(q, e).astype(np.float64), e)
    assert np.allclose(back["e_sum"], q["e_sum"], rtol=1e-5) and np.array_equal(back["n_points"], q["n_points"])
    ref = formats.write(tmp_path / "ref.h5", ds2_voxels)
    out = tmp_path / "gen.h5"
    res = CliRunner().invoke(cli, ["sample", str(path), "-n", "32", "-o", str(out), "--energies-from", str(ref)])
    assert res.exit_code == 0, res.output
    gen = formats.read(out)
    assert type(gen).__name__ == "VoxelShowerSet" and gen.voxels.shape == (32, 6480)
    assert np.array_equal(gen.incident_energy, ds2_voxels.incident_energy)
    kept = gen.voxels[gen.voxels > 0]
    assert kept.size > 0 and kept.min() >= 0.5e-3 / 0.033  # projected at the readout threshold
    again = model.sample(e[:4], seed=0, steps=PipelineSteps(project=True))
    assert np.array_equal(again.voxels, model.sample(e[:4], seed=0, steps=PipelineSteps(project=True)).voxels)
    r = evaluate(out, str(ref), profile="fast", metrics=("sep_e_ratio",))
    assert 0 <= r.metrics["sep_e_ratio"].value <= 1 and r.provenance["geometry"] == "calochallenge-2"


def test_shower_training_under_ddp_keeps_the_replicas_equal(ild_train, tmp_path):
    """Two gloo processes, as torchrun starts them: each trains on its own batches, and the
    averaged gradients keep every trained part (flow, network, encoder, latent flow) identical."""
    data = formats.write(tmp_path / "train.h5", ild_train, layout="ild")
    cfg = model_config("caloclouds", "small", **{**TINY, "latent": 4, "encoder_hidden": 8, "latent_transforms": 1,
                                                 "ddpm_steps": 10, "diffusion_steps": 8})
    payload, r0, r1 = shower_ddp("caloclouds", cfg, data, tmp_path / "ddp", occupancy_showers=4)
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["step"] == 8
    trained = [k for k in r0 if k.startswith(("flow.", "denoiser.")) and r0[k].is_floating_point()]
    assert {k.split(".")[1] for k in trained} >= {"flow", "net", "encoder", "latent_flow"}
    for k in trained:
        assert torch.equal(r0[k], r1[k]), k
    losses = [h["loss"] for h in payload["train_state"]["history"] if h["phase"] == "diffusion"]
    assert len(losses) == 1 and np.isfinite(losses[0])


def _budget_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    """A torchrun-like rank whose clock (rank 1 only) jumps past the budget after a few checks."""
    import os
    import time
    from pathlib import Path

    import pcbench.models.trainer as trainer

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    if rank == 1:
        calls = [0]

        def late_clock() -> float:
            calls[0] += 1
            return time.perf_counter() + (1e6 if calls[0] > 4 else 0.0)

        trainer.CLOCKS["wall"] = late_clock  # the one loop's budget clock
    cfg = model_config("caloclouds2", "small", **{**TINY, "flow_epochs": 2, "diffusion_steps": 400})
    Path(out).mkdir(parents=True, exist_ok=True)
    train("caloclouds2", cfg, formats.read(data),
                       TrainOptions(out_dir=Path(out), progress=False, occupancy_showers=4, max_minutes=30.0))
    torch.distributed.destroy_process_group()


def test_a_budget_that_expires_on_one_rank_first_ends_every_rank_cleanly(ild_train, tmp_path):
    """Before, each rank decided alone: rank 1 left the loop, rank 0 waited in the all-reduce for ever."""
    import time

    data = formats.write(tmp_path / "train.h5", ild_train, layout="ild")
    ctx = torch.multiprocessing.start_processes(_budget_worker, args=(2, free_port(), str(data), str(tmp_path / "ddp")),
                                                nprocs=2, join=False, start_method="spawn")
    deadline = time.time() + 240
    while not ctx.join(timeout=2):
        if time.time() > deadline:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("a rank hung: the ranks disagreed on when the budget ran out")
    state = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)["train_state"]
    assert state["world_size"] == 2 and state["finished"] is False
    assert 0 < state["step"] < 400 and any(u.startswith("point model") for u in state["untrained"])


def _toy_shower_class():
    from pcbench.geometry import layer_stack
    from pcbench.models.showers.base import ShowerGenerator
    from pcbench.models.trainer import Phase

    class Toy(ShowerGenerator):
        """Every shower: 10 points at the training showers' energy-weighted centre (on its nearest
        layer), carrying
        exp(log_frac) E_inc in all; one phase of gradient steps fits log_frac to the training
        showers' mean log visible fraction."""

        name = "toy-shower"
        configs = {"small": {"steps": 40, "lr": 0.2, "grid": "ild-ecal"},
                   "full": {"steps": 400, "lr": 0.02, "grid": "ild-ecal"}}

        def __init__(self, config):
            super().__init__()
            self.config = dict(config)
            self.log_frac = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
            self.register_buffer("target", torch.zeros((), dtype=torch.float64))
            self.register_buffer("centre", torch.zeros(3, dtype=torch.float64))

        @classmethod
        def build(cls, config, data, opts, teacher=None, log_point_energy=False):
            model = cls(config)
            e = data.points[..., 3] * data.mask
            model.target.fill_(float(np.log(e.sum(1) / data.incident_energy).mean()))
            model.centre.copy_(torch.as_tensor((data.points[..., :3] * e[..., None]).sum((0, 1)) / e.sum()))
            return model

        @classmethod
        def from_payload(cls, payload):
            return cls(payload["config"])

        def initial_state(self):
            return {"step": 0, "history": []}

        def make_optimizers(self):
            return {"fit": torch.optim.SGD([self.log_frac], lr=self.config["lr"])}

        def phases(self, run):
            opt = run.optimizers["fit"]

            def step():
                loss = (self.log_frac - self.target) ** 2
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.state["step"] += 1
                return f"loss {loss.item():.3g}"

            return [Phase("fit", self.config["steps"], "steps", lambda: run.state["step"], step)]

        def untrained(self, state):
            return [] if state["step"] >= self.config["steps"] else [f"fit ({state['step']} steps)"]

        def sample(self, e_inc_mev, seed=0, batch_size=64, steps=PipelineSteps(), progress=None):
            e = np.asarray(e_inc_mev, np.float64)
            pts = np.zeros((len(e), 10, 4), np.float32)
            pts[..., :3] = self.centre.numpy()
            depths = layer_stack(self.grid).depths  # on the layer nearest the centre (ILD files store layers)
            pts[..., 1] = depths[np.argmin(np.abs(depths - self.centre[1].item()))]
            pts[..., 3] = (np.exp(self.log_frac.item()) * e / 10)[:, None]
            return ShowerPointSet(pts, np.ones((len(e), 10), bool), e.astype(np.float32), {"y_unit": "mm"})

    return Toy


def test_a_new_shower_generator_is_one_class_and_one_registry_line(ild_train, tmp_path):
    from pcbench.models import registry, sample

    toy = _toy_shower_class()
    registry.register(toy)  # the one registry line
    try:
        assert registry.kind_of("toy-shower") == "showers"
        conf = model_config("toy-shower", "small")
        path = train("toy-shower", conf, ild_train, TrainOptions(out_dir=tmp_path / "m", progress=False))
        model, payload = load_generator(path)
        target = float(model.target)
        # SGD on (p - t)^2 from 0 with lr 0.2: p_k = t (1 - 0.6^k); 40 steps leave 0.6^40 t
        assert model.log_frac.item() == pytest.approx(target * (1 - 0.6 ** 40), rel=1e-12)
        assert payload["train_state"]["finished"] and payload["fitted"] is False
        e = ild_train.incident_energy[:5].astype(np.float64)
        done = sample(path, tmp_path / "s.h5", 5, energies_mev=e)
        got = formats.read(done.path)
        assert done.kind == "showers" and np.allclose(got.points[..., 3].sum(1), np.exp(model.log_frac.item()) * e,
                                                      rtol=1e-6)
    finally:
        del registry.GENERATORS["toy-shower"], registry.SHOWER_MODELS["toy-shower"]
