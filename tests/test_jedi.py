"""The JeDi diffusion (PC-JeDi, EPiC-JeDi): schedule identities, the samplers' orders on an exact
Gaussian case, the Local EPiC network's symmetries, and EPiC-JeDi training, sampling and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import JetSet, read, validate_file, write
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.models import build_model, model_config
from pcbench.models.jets.local_epic import LocalEPiC, ScalarWeightNormLinear
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


def test_ode_samplers_have_their_order_and_ddim_em_converge():
    """With the exact noise predictor the probability-flow ODE maps x_1 affinely onto the t = 0
    marginal: x_0 = alpha_0 MU + S_0 / S_1 (x_1 - alpha_1 MU), S_t^2 = alpha_t^2 S^2 + sigma_t^2."""
    torch.set_default_dtype(torch.float64)
    try:
        sch = VPSchedule()
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
    data = write(tmp_path / "t.h5", jets)
    res = CliRunner().invoke(cli, ["train", "epic-jedi", "--data-file", str(data), "--epochs", "1", "--out",
                                   str(tmp_path / "run"), "--set", "hidden=16", "--set", "layers=1", "--set", "steps=3"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["sample", str(tmp_path / "run" / "last.pt"), "-n", "60", "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 0, res.output
    assert validate_file(tmp_path / "s.h5").ok and read(tmp_path / "s.h5").attrs["model"] == "epic-jedi"
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "s.h5"), "--reference", str(data), "--profile", "fast",
                                   "--metrics", "w1m,w1p", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "W1 of jet m/pT" in res.output


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
