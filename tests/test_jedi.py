"""The JeDi diffusion (PC-JeDi, EPiC-JeDi): schedule identities, the samplers' orders on an exact
Gaussian case, the Local EPiC network's symmetries, and EPiC-JeDi training, sampling and the CLI."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from factories import jet_cli_round_trip
from pcbench.data import JetSet
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.models import build_model, model_config
from pcbench.models.jets.local_epic import LocalEPiC, ScalarWeightNormLinear
from pcbench.models.jets.normformer import PCJeDiTransformer
from pcbench.models.jets.vp_diffusion import CALLS_PER_STEP, VPSchedule, jedi_sample, time_encoding

MU, S = 0.7, 0.4  # the data: N(MU, S^2) per coordinate


def _exact_predictor(schedule: VPSchedule):
    """E[eps | x_t] for Gaussian data: sigma (x - alpha MU) / (alpha^2 S^2 + sigma^2)."""
    calls = [0]

    def predict(x, t):
        calls[0] += 1
        a, s = (v[:, None, None] for v in schedule.alpha_sigma(t))
        return s * (x - a * MU) / (a * a * S * S + s * s)
    return predict, calls


def test_schedule_identities():
    sch = VPSchedule(0.999, 0.02)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    a, s = sch.alpha_sigma(t)
    torch.testing.assert_close(a * a + s * s, torch.ones_like(t))
    assert a[0].item() == pytest.approx(0.999) and a[-1].item() == pytest.approx(0.02)
    h = 1e-6  # beta = -d ln alpha^2 / dt
    tm = torch.tensor([0.3, 0.7], dtype=torch.float64)
    fd = -(torch.log(sch.alpha_sigma(tm + h)[0] ** 2) - torch.log(sch.alpha_sigma(tm - h)[0] ** 2)) / (2 * h)
    torch.testing.assert_close(sch.beta(tm), fd, rtol=1e-6, atol=0)
    enc = time_encoding(torch.tensor([0.0, 0.5]), 32)
    assert enc.shape == (2, 32) and torch.all(enc[0] == 1) and enc.abs().max() <= 1


@pytest.mark.parametrize("max_sr", [0.999, 1.0])  # EPiC-JeDi's and PC-JeDi's schedules
def test_ode_samplers_have_their_order_and_ddim_em_converge(max_sr):
    """With the exact noise predictor the probability-flow ODE maps x_1 affinely onto the t = 0
    marginal: x_0 = alpha_0 MU + S_0 / S_1 (x_1 - alpha_1 MU), S_t^2 = alpha_t^2 S^2 + sigma_t^2."""
    torch.set_default_dtype(torch.float64)
    try:
        sch = VPSchedule(max_sr, 0.02)
        x1 = torch.randn(50, 4, 3, generator=torch.Generator().manual_seed(0))
        (a1, s1), (a0, s0) = (sch.alpha_sigma(torch.tensor(v)) for v in (1.0, 0.0))
        exact = a0 * MU + math.sqrt(a0 ** 2 * S * S + s0 ** 2) / math.sqrt(a1 ** 2 * S * S + s1 ** 2) * (x1 - a1 * MU)
        for method, order, steps in (("euler", 1, 200), ("midpoint", 2, 100), ("rk4", 4, 50)):
            predict, calls = _exact_predictor(sch)
            e1 = (jedi_sample(predict, x1, sch, steps, method) - exact).abs().max().item()
            assert calls[0] == CALLS_PER_STEP[method] * steps
            e2 = (jedi_sample(predict, x1, sch, 2 * steps, method) - exact).abs().max().item()
            assert e1 / e2 == pytest.approx(2 ** order, rel=0.1), method
        predict, _ = _exact_predictor(sch)
        errs = [(jedi_sample(predict, x1, sch, n, "ddim") - (MU + S / math.sqrt(a1 ** 2 * S * S + s1 ** 2) * (x1 - a1 * MU))
                 ).abs().max().item() for n in (25, 100, 400)]
        assert errs[0] > errs[1] > errs[2] and errs[2] < 0.03  # DDIM approaches the data-level map
        g = torch.Generator().manual_seed(1)
        x = jedi_sample(predict, torch.randn(20_000, 1, 1, generator=g), sch, 200, "em", generator=g)
        assert x.mean().item() == pytest.approx(a0.item() * MU, abs=0.012)  # the t = 0 marginal, 4 sigma
        assert x.std().item() == pytest.approx(math.sqrt(a0 ** 2 * S * S + s0 ** 2), rel=0.02)
    finally:
        torch.set_default_dtype(torch.float32)


def test_local_epic_is_permutation_equivariant_and_weight_norm_is_scale_free():
    torch.manual_seed(0)
    net = LocalEPiC(3, 5, hidden=8, global_dim=4, layers=2)
    x, c = torch.randn(2, 9, 3), torch.randn(2, 5)
    perm = torch.randperm(9)
    torch.testing.assert_close(net(x[:, perm], c), net(x, c)[:, perm])
    lin = ScalarWeightNormLinear(4, 3)
    y = lin(torch.ones(1, 4))
    with torch.no_grad():
        lin.v.mul_(7.0)  # W = g V / ||V||: the direction's scale drops out
    torch.testing.assert_close(lin(torch.ones(1, 4)), y)
    assert lin.g.item() == pytest.approx(lin.v.norm().item() / 7.0)


@pytest.fixture(scope="module")
def jets() -> JetSet:
    a = simulate_jet_chunk(JetSimConfig("t"), seed=5, n=160)
    return JetSet.from_jetnet(a["particle_features"], a["jet_features"], "t")


def test_epic_jedi_loss_falls_and_sampling_is_seeded(jets):
    torch.manual_seed(0)
    model = build_model("epic-jedi", model_config("epic-jedi", "small", hidden=16, layers=1, warmup=5), jets)
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask.sum(1) >= 20][:32, :20], dtype=torch.float32))
    assert x.std().item() == pytest.approx(1.0, rel=0.3)  # unit-variance features (norm_sigma 1)
    opt = model.make_optimizers()
    losses = [model.training_step(x, opt, model.trainable())["loss"] for _ in range(80)]
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert int(model.steps_done) == 80
    assert opt["net"].param_groups[0]["lr"] == pytest.approx(model.config["lr"])  # warm-up (5 steps) over
    a, b = model.sample(30, seed=3), model.sample(30, seed=3)
    assert np.array_equal(a.particle_features, b.particle_features)


def test_epic_jedi_through_the_cli(jets, tmp_path):
    jet_cli_round_trip("epic-jedi", jets, tmp_path, {"hidden": 16, "layers": 1, "steps": 3})



def test_conditional_epic_jedi_draws_conditions_of_the_generated_multiplicity(jets, tmp_path):
    from pcbench.models import TrainOptions, load_generator, train

    cfg = model_config("epic-jedi", "small", hidden=16, layers=1, steps=3, conditional=True, batch_size=32)
    model = build_model("epic-jedi", cfg, jets)
    counts = jets.mask.sum(1)
    assert model.train_conditions.shape == (len(jets), 2) and model.train_counts.tolist() == counts.tolist()
    seen = []
    model._context = lambda t, c: (seen.append(c), type(model)._context(model, t, c))[1]  # record the conditions
    m = int(np.bincount(counts).argmax())
    model.generate(7, m, torch.Generator().manual_seed(0))
    allowed = {tuple(r) for r in model.train_conditions[torch.as_tensor(counts == m)].tolist()}
    assert {tuple(r) for r in seen[0].tolist()} <= allowed  # only jets of multiplicity m
    ckpt = train("epic-jedi", cfg, jets, TrainOptions(epochs=1, out_dir=tmp_path, val_every=0, progress=False))
    a, b = (load_generator(ckpt)[0].sample(20, seed=2) for _ in range(2))
    assert np.array_equal(a.particle_features, b.particle_features)


def test_beta_over_sigma_is_finite_where_sigma_vanishes():
    sch = VPSchedule(1.0, 0.02)  # PC-JeDi's schedule: sigma(0) = 0
    t = torch.tensor([0.0, 0.4, 0.9], dtype=torch.float64)
    assert sch.alpha_sigma(t)[1][0].item() == 0.0
    ratio = sch.beta_over_sigma(t)
    assert torch.isfinite(ratio).all() and ratio[0].item() == pytest.approx(2 * math.acos(0.02))
    torch.testing.assert_close(ratio[1:], sch.beta(t[1:]) / sch.alpha_sigma(t[1:])[1])
    predict, _ = _exact_predictor(sch)  # RK4's last stage evaluates at t = 0
    x = jedi_sample(predict, torch.randn(30, 2, 3, dtype=torch.float64), sch, 20, "rk4")
    assert torch.isfinite(x).all()


def test_pc_jedi_transformer_is_permutation_equivariant_and_sees_the_condition():
    torch.manual_seed(0)
    net = PCJeDiTransformer(3, 6, model_dim=16, layers=2, heads=4, ff_hidden=24, embed_hidden=20, ctxt_hidden=12,
                            ctxt_blocks=2, ctxt_dim=8)
    x, c = torch.randn(2, 11, 3), torch.randn(2, 6)
    perm = torch.randperm(11)
    torch.testing.assert_close(net(x[:, perm], c), net(x, c)[:, perm])
    assert not torch.allclose(net(x, c), net(x, c + 1.0))  # the context enters
    with pytest.raises(ValueError, match="multiple of heads"):
        PCJeDiTransformer(3, 6, 10, 1, 4, 8, 8, 8, 1, 4)


def _tiny_pc_jedi(**over):
    return model_config("pc-jedi", "small", model_dim=16, layers=1, heads=2, ff_hidden=16, embed_hidden=16,
                        ctxt_hidden=16, ctxt_dim=8, warmup=5, **over)


def test_pc_jedi_log_pt_features_invert_and_are_standardised(jets):
    model = build_model("pc-jedi", _tiny_pc_jedi(), jets)
    lp = np.log(jets.particles[jets.mask][:, 2].astype(np.float64))
    assert model.log_pt.tolist() == pytest.approx([lp.mean(), lp.std()], rel=1e-9)
    x = model.stats.normalise(torch.as_tensor(jets.particles, dtype=torch.float64))
    z = model._to_net(x)[torch.as_tensor(jets.mask)]  # every real particle: mean 0, sd 1 by construction
    assert z[:, 2].mean().item() == pytest.approx(0.0, abs=1e-9) and z[:, 2].std(correction=0).item() == pytest.approx(1.0)
    torch.testing.assert_close(z[:, :2], x[torch.as_tensor(jets.mask)][:, :2])
    torch.testing.assert_close(model._from_net(z), x[torch.as_tensor(jets.mask)], rtol=1e-9, atol=1e-9)


def test_pc_jedi_log_pt_of_a_particle_below_float32_resolution_is_finite(jets):
    """Before: a ptrel of 7e-17 (simulated JetNet150 top jets hold such) normalised in float32 came
    back <= 0, its log was NaN, and PC-JeDi trained on NaN losses from the first epoch."""
    parts = jets.particles.copy()
    row, col = np.argwhere(jets.mask)[0]
    parts[row, col, 2] = 7e-17
    model = build_model("pc-jedi", _tiny_pc_jedi(), dataclasses.replace(jets, particles=parts))
    x = model.stats.normalise(torch.as_tensor(parts, dtype=torch.float32))
    pt_back = model.stats.denormalise(x.double())[row, col, 2].item()
    assert pt_back <= 1e-9  # the float32 round trip cannot hold it (the fault's cause)
    z = model._to_net(x)
    assert torch.isfinite(z).all()
    floor = torch.finfo(torch.float32).eps * float(abs(model.stats.mean[2]) + model.stats.std[2])
    assert z[row, col, 2].item() == pytest.approx((math.log(floor) - float(model.log_pt[0])) / float(model.log_pt[1]), rel=1e-6)


def test_pc_jedi_loss_falls_and_checkpoints_restore_its_buffers(jets, tmp_path):
    from pcbench.models import TrainOptions, load_generator, train

    torch.manual_seed(0)
    model = build_model("pc-jedi", _tiny_pc_jedi(), jets)
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask.sum(1) >= 20][:32, :20], dtype=torch.float32))
    opt = model.make_optimizers()
    losses = [model.training_step(x, opt, model.trainable())["loss"] for _ in range(80)]
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    ckpt = train("pc-jedi", _tiny_pc_jedi(batch_size=32, steps=3), jets,
                 TrainOptions(epochs=1, out_dir=tmp_path, val_every=0, progress=False))
    restored = load_generator(ckpt)[0]
    fresh = build_model("pc-jedi", _tiny_pc_jedi(), jets)
    torch.testing.assert_close(restored.log_pt, fresh.log_pt, rtol=0, atol=0)  # from the checkpoint, not defaults
    torch.testing.assert_close(restored.train_conditions, fresh.train_conditions, rtol=0, atol=0)
    a, b = restored.sample(25, seed=1), load_generator(ckpt)[0].sample(25, seed=1)
    assert np.array_equal(a.particle_features, b.particle_features)


def test_pc_jedi_through_the_cli(jets, tmp_path):
    jet_cli_round_trip("pc-jedi", jets, tmp_path, {"model_dim": 16, "layers": 1, "heads": 2, "ff_hidden": 16,
                                                  "embed_hidden": 16, "ctxt_hidden": 8, "ctxt_dim": 8, "steps": 3})


def test_jedi_generated_features_stay_in_the_training_range(jets):
    model = build_model("pc-jedi", _tiny_pc_jedi(steps=2), jets)
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask], dtype=torch.float64))
    torch.testing.assert_close(model.bounds, torch.stack([x.min(0).values, x.max(0).values]).float())
    class Wild(torch.nn.Module):  # a wild noise prediction: the sample lands far outside
        def forward(self, z, c):
            return torch.full_like(z, -1e3)

    model.ema_net = Wild()
    y = model.generate(5, 8, torch.Generator().manual_seed(0))
    lo, hi = model.bounds
    assert torch.all(y >= lo) and torch.all(y <= hi) and torch.any((y == lo) | (y == hi))
