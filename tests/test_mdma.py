"""MDMA (mean-field attention GAN): the networks' symmetries and linear cost, the row-normalised
critic layers, the learning-rate schedule, the mean-field matching term, and the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from factories import jet_cli_round_trip
from pcbench.data import JetSet
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.models import build_model, model_config
from pcbench.models.nets.schedules import cosine_warmup
from pcbench.models.nets.mean_field import MeanFieldCritic, MeanFieldGenerator, RowNormLinear

TINY = {"gen_hidden": 8, "gen_heads": 2, "gen_layers": 2, "disc_hidden": 8, "disc_heads": 2, "batch_size": 32,
        "warmup": 5}


@pytest.fixture(scope="module")
def jets() -> JetSet:
    a = simulate_jet_chunk(JetSimConfig("t"), seed=6, n=160)
    return JetSet.from_jetnet(a["particle_features"], a["jet_features"], "t")


def test_generator_is_equivariant_and_critic_invariant():
    torch.manual_seed(0)
    gen, critic = MeanFieldGenerator(3, 8, 12, 4, 2, mean_n=20.0), MeanFieldCritic(3, 8, 12, 4, 2, mean_n=20.0)
    z = torch.randn(3, 17, 3)
    perm = torch.randperm(17)
    torch.testing.assert_close(gen(z[:, perm]), gen(z)[:, perm])
    s, tok = critic(z, with_token=True)
    s2, tok2 = critic(z[:, perm], with_token=True)
    torch.testing.assert_close(s2, s)
    torch.testing.assert_close(tok2, tok)
    assert s.shape == (3,) and tok.shape == (3, 8)
    # the multiplicity conditions both: the same particles plus one copy of the first is another cloud
    assert not torch.allclose(critic(torch.cat([z, z[:, :1]], 1)), s)


def test_one_token_makes_the_cost_linear_in_the_multiplicity():
    from torch.utils.flop_counter import FlopCounterMode

    gen = MeanFieldGenerator(3, 16, 48, 16, 7, mean_n=50.0)
    flops = []
    for n in (30, 60, 120):
        with FlopCounterMode(display=False) as fc:
            gen(torch.randn(2, n, 3))
        flops.append(fc.get_total_flops())
    assert (flops[2] - flops[1]) == 2 * (flops[1] - flops[0])  # affine in n: no n^2 term


def test_row_norm_linear_has_unit_rows_and_no_bias():
    lin = RowNormLinear(5, 3)
    w = torch.autograd.functional.jacobian(lin, torch.zeros(5))
    torch.testing.assert_close(w.norm(dim=1), torch.ones(3))
    assert lin(torch.zeros(2, 5)).abs().max().item() == 0.0
    with torch.no_grad():
        lin.v.mul_(4.0)
    torch.testing.assert_close(torch.autograd.functional.jacobian(lin, torch.zeros(5)), w)


def test_cosine_warmup_schedule():
    assert cosine_warmup(0, 2000, 3_000_000) == 0.0
    assert cosine_warmup(1000, 2000, 3_000_000) == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi / 3000)))
    assert cosine_warmup(1_500_000, 2000, 3_000_000) == pytest.approx(0.5)
    assert cosine_warmup(3_000_000, 2000, 3_000_000) == pytest.approx(0.0, abs=1e-12)


def test_training_steps_follow_the_schedule_and_the_matching_term(jets):
    torch.manual_seed(0)
    model = build_model("mdma", model_config("mdma", "small", **TINY), jets)
    opt = model.make_optimizers()
    assert opt["gen"].param_groups[0]["lr"] == 0.0  # t = 0: the warm-up starts at zero, as the reference
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask.sum(1) >= 20][:32, :20], dtype=torch.float32))
    for _ in range(3):
        model.training_step(x, opt, model.trainable())
    c = model.config
    assert int(model.steps_done) == 3
    assert opt["disc"].param_groups[0]["lr"] == pytest.approx(c["lr_d"] * cosine_warmup(3, 5, c["max_iters"]))
    fake = model.gen(*model.noise(32, 20))
    with_term = model.generator_loss(model.disc, fake, x).item()
    score, tok = model.disc(fake, with_token=True)
    _, tok_real = model.disc(x, with_token=True)
    expected = 0.5 * ((score - 1) ** 2).mean() + ((tok - tok_real) ** 2).mean()
    assert with_term == pytest.approx(expected.item(), rel=1e-6)
    model.steps_done.fill_(c["mf_steps"])  # after mf_steps: the plain least-squares loss
    assert model.generator_loss(model.disc, fake, x).item() == pytest.approx((0.5 * ((score - 1) ** 2).mean()).item(), rel=1e-6)


def test_generated_features_stay_in_the_training_range(jets):
    model = build_model("mdma", model_config("mdma", "small", **TINY), jets)
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask], dtype=torch.float64))
    torch.testing.assert_close(model.bounds, torch.stack([x.min(0).values, x.max(0).values]).float())
    with torch.no_grad():
        model.gen.out.bias.fill_(1e3)  # far outside: clamped to the maximum
    y = model.generate(4, 9, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y, model.bounds[1].expand(4, 9, 3))


def test_mdma_through_the_cli(jets, tmp_path):
    jet_cli_round_trip("mdma", jets, tmp_path, {"gen_hidden": 8, "gen_heads": 2, "gen_layers": 1, "disc_hidden": 8,
                                               "disc_heads": 2})
