"""DeepTreeGAN: the tree's ancestor message passing against a brute-force sum, the cut to n
leaves, batch-statistics normalisation, the pooling critic's invariance, the hinge and
feature-matching losses, the trees of the published sizes, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from factories import jet_cli_round_trip
from pcbench.data import JetSet
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.errors import ConfigError
from pcbench.models import build_model, model_config
from pcbench.models.jets.base import JetStats
from pcbench.models.jets.deeptree import feature_matching, normalise_pt_sum
from pcbench.models.nets.ffn import FFN, BatchStatNorm
from pcbench.models.nets.pool_critic import BipartitePool, PoolCritic, readout
from pcbench.models.nets.tree_branching import TreeGenerator

TINY = {"hidden": 8, "critic_heads": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def jets() -> JetSet:
    a = simulate_jet_chunk(JetSimConfig("t"), seed=8, n=160)
    return JetSet.from_jetnet(a["particle_features"], a["jet_features"], "t")


def test_batch_statistics_norm_and_ffn():
    x = torch.tensor([[1.0, 10.0], [3.0, 10.0]])
    torch.testing.assert_close(BatchStatNorm()(x), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), atol=1e-4, rtol=0)
    assert BatchStatNorm()(torch.randn(1, 4)).abs().max().item() == 0.0  # one row: zeros, no error
    ffn = FFN(3, 2, norm="spectral", hidden=5)
    assert len(ffn.net) == 5 and all(not getattr(m, "bias", None) for m in ffn.net if hasattr(m, "weight"))
    with pytest.raises(ValueError, match="expected batch, spectral or none"):
        FFN(3, 2, norm="layer")


def test_ancestor_messages_equal_a_brute_force_sum():
    gen = TreeGenerator([2, 3], [4, 4, 3], hidden=6)
    tree = [torch.randn(2, 1, 3), torch.randn(2, 2, 3), torch.randn(2, 6, 3)]
    ctx = torch.randn(2, 2)
    seen = {}
    gin = lambda h: (seen.setdefault("h", h), torch.zeros(*h.shape[:2], 3))[1]  # record GIN's input
    gen._gin(tree, ctx, gin)
    h = [torch.cat([t, ctx[:, None].expand(-1, t.shape[1], -1)], 2) for t in tree]
    expected = [h[0][:, 0]]
    expected += [h[1][:, j] + h[0][:, 0] for j in range(2)]
    expected += [h[2][:, k] + h[1][:, k // 3] + h[0][:, 0] for k in range(6)]  # parent k // 3, root
    torch.testing.assert_close(seen["h"], torch.stack(expected, 1))


def test_generator_makes_the_published_trees_and_cuts_them_to_n_leaves():
    torch.manual_seed(0)
    gen = TreeGenerator([2, 3, 5], [64, 33, 20, 3], hidden=16)
    z = torch.randn(4, 64)
    full = gen(z, 30)
    assert full.shape == (4, 30, 3)
    assert gen(z, 7).shape == (4, 7, 3)
    with pytest.raises(ValueError, match="expected 4 levels"):
        TreeGenerator([2, 3, 5], [64, 3])


def test_sampling_batches_mixed_multiplicities_so_a_rare_one_keeps_its_noise(jets):
    model = build_model("deeptree-gan", model_config("deeptree-gan", "small", **TINY), jets)
    mult = np.array([30] * 20 + [4, 4, 7])  # multiplicity 7 alone would be a batch of one
    out = model.sample(len(mult), seed=2, multiplicities=mult)
    assert out.mask.sum(1).tolist() == mult.tolist()
    again = model.sample(len(mult), seed=3, multiplicities=mult)
    assert not np.allclose(out.particles[-1], again.particles[-1])  # other noise, another jet
    seen = []
    model.generate_mixed = lambda m, g: (seen.append(m.tolist()), type(model).generate_mixed(model, m, g))[1]
    model.sample(len(mult), seed=2, multiplicities=mult, batch_size=64)
    assert seen == [mult.tolist()]  # one batch of every multiplicity
    z = torch.randn(3, 64)
    cut = model.gen(z, torch.tensor([30, 4, 7]))
    assert cut.shape == (3, 30, 3)


def test_pool_critic_is_permutation_invariant():
    torch.manual_seed(0)
    critic = PoolCritic(3, 2, [6, 1], heads=2, updates=1, dropout=0.0, hidden=8).eval()
    x, c = torch.randn(3, 13, 3), torch.randn(3, 2)
    perm = torch.randperm(13)
    s, lat = critic(x, c)
    s2, lat2 = critic(x[:, perm], c)
    assert s.shape == (3, 3)  # a score per head: particles, 6 seeds, 1 seed
    torch.testing.assert_close(s2, s)
    for a, b in zip(lat[2:], lat2[2:]):  # the pooled latents do not depend on the order either
        if a.shape[1] != 13:
            torch.testing.assert_close(a, b)
    pool = BipartitePool(8, 4, 2)
    assert pool(torch.randn(2, 9, 8)).shape == (2, 4, 8)
    r = readout(torch.tensor([[[1.0], [3.0]]]))
    torch.testing.assert_close(r, torch.tensor([[2.0, 4.0, 1.0, 3.0]]))  # count, sum, mad, max


def test_pooling_equals_gatv2_written_seed_by_seed():
    """The batched pooling against GATv2's formula, one seed, node and head at a time (float64)."""
    torch.manual_seed(1)
    pool = BipartitePool(6, 3, 2).double()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    xl, sr = pool.lin_l(x), pool.lin_r(pool.seeds)
    want = torch.zeros(2, 3, 6, dtype=torch.float64)
    for b in range(2):
        for k in range(3):
            for h in range(2):
                cols = slice(3 * h, 3 * h + 3)
                e = torch.stack([pool.att[h] @ torch.nn.functional.leaky_relu(xl[b, j, cols] - sr[k, cols], 0.2)
                                 for j in range(5)])
                want[b, k, cols] = (e.softmax(0)[:, None] * xl[b, :, cols]).sum(0)
    torch.testing.assert_close(pool(x), want + pool.bias, rtol=1e-12, atol=1e-12)


def test_feature_matching_and_training_lowers_the_critic_loss(jets):
    a = [torch.tensor([[0.0, 1.0], [2.0, 3.0]])]
    assert feature_matching(a, a).item() == 0.0
    shifted = [a[0] + torch.tensor([1.0, 0.0])]  # one feature moved by 1/sd(=1.414): mean |diff| = 0.707/2
    assert feature_matching(a, shifted).item() == pytest.approx(0.5 / 2 ** 0.5, rel=1e-5)
    one = [torch.ones(1, 2)]  # a batch of one jet has no sd: the latent is left out, not NaN
    assert feature_matching(one + a, [torch.zeros(1, 2)] + shifted).item() == pytest.approx(0.5 / 2 ** 0.5, rel=1e-5)
    assert feature_matching(one, one).item() == 0.0
    torch.manual_seed(0)
    model = build_model("deeptree-gan", model_config("deeptree-gan", "small", **TINY), jets)
    opt = model.make_optimizers()
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask.sum(1) >= 20][:32, :20], dtype=torch.float32))
    losses = [model.training_step(x, opt, model.trainable())["loss_d"] for _ in range(30)]
    assert sum(losses[-5:]) < sum(losses[:5])
    single = model.training_step(x[:1], opt, model.trainable())  # a batch of one jet (a rare multiplicity)
    assert all(np.isfinite(v) for v in single.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_pt_fractions_are_divided_by_their_jet_sum_as_the_reference_at_150():
    stats = JetStats(np.zeros(3), np.array([1.0, 1.0, 0.5]), 1.0, np.ones(4) / 4, 0.05, np.ones(1), 3)
    pt = torch.tensor([[0.2, 0.6, 0.9], [0.1, 0.1, 0.4]], dtype=torch.float64)
    x = torch.stack([torch.ones_like(pt), -torch.ones_like(pt), pt / 0.5], -1).requires_grad_()
    out = normalise_pt_sum(x, stats, torch.tensor([2, 3]))
    expected = torch.tensor([[0.25, 0.75, 0.9], [1 / 6, 1 / 6, 4 / 6]], dtype=torch.float64)  # slot 3 of jet 1 kept
    torch.testing.assert_close(out[..., 2] * 0.5, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(out[..., :2], x[..., :2])
    out[..., 2].sum().backward()
    assert x.grad is not None and x.grad[..., 2].abs().sum() > 0
    floored = normalise_pt_sum(torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, 0.1]]]), stats)  # -0.5 floored at 0.05
    torch.testing.assert_close(floored[0, :, 2] * 0.5, torch.tensor([0.5, 0.5]))


def test_sampled_pt_fractions_sum_to_one_where_normalised(jets):
    model = build_model("deeptree-gan", model_config("deeptree-gan", "small", norm_pt_sum=True, **TINY), jets)
    out = model.sample(40, seed=1)
    sums, n = (out.particles[..., 2] * out.mask).sum(1), out.mask.sum(1)
    # 1 up to float32 rounding, and the post-processing's floor at min_ptrel only raises a fraction
    assert (sums > 1 - 1e-5).all() and (sums < 1 + n * model.stats.min_ptrel + 1e-5).all()
    unnormed = build_model("deeptree-gan", model_config("deeptree-gan", "small", norm_pt_sum=False, **TINY), jets)
    assert np.abs((unnormed.sample(40, seed=1).particles[..., 2]).sum(1) - 1).max() > 0.1  # untrained: far from 1
    assert not build_model("deeptree-gan", model_config("deeptree-gan", "small", **TINY), jets).norm_pt  # 30: off


def test_the_tree_must_make_the_data_particle_number(jets):
    with pytest.raises(ConfigError, match="expected 30 leaves"):
        build_model("deeptree-gan", model_config("deeptree-gan", "small", branches=[2, 3], widths=[8, 8, 3]), jets)
    full = build_model("deeptree-gan", model_config("deeptree-gan", "full"), jets)
    assert full.gen.branches == [2, 3, 5] and full.gen.widths == [64, 33, 20, 3]
    assert [p.seeds.shape[0] for p in full.disc.pools] == [6, 1] and full.disc.pools[0].seeds.shape[1] == 160


def test_deeptree_gan_through_the_cli(jets, tmp_path):
    jet_cli_round_trip("deeptree-gan", jets, tmp_path, {"hidden": 8, "critic_heads": 2})
