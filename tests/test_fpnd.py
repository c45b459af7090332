"""FPND: the plain-torch ParticleNet (kNN, BatchNorm folding) and the jetnet wheel's weights."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.errors import PcbenchError
from pcbench.metrics import fpnd as fpnd_mod
from pcbench.metrics import particlenet
from pcbench.metrics.frechet import frechet_distance
from pcbench.metrics.particlenet import ParticleNet, _knn


def test_knn_matches_brute_force():
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 12, 2)))
    idx = _knn(x, 4)
    for b in range(3):
        for i in range(12):
            d = [(float(torch.linalg.norm(x[b, i] - x[b, j])), j) for j in range(12) if j != i]
            assert set(idx[b, i].tolist()) == {j for _, j in sorted(d)[:4]}


def test_folded_batchnorm_gives_the_same_activations():
    torch.manual_seed(0)
    net = ParticleNet()
    for m in net.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(8, 30, 3)
    with torch.inference_mode():
        plain = net.eval().activations(x)
        fused = net.fuse().activations(x)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


def _random_batchnorm_net() -> ParticleNet:
    torch.manual_seed(1)
    net = ParticleNet()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_sliced_edge_mlp_is_independent_of_threads_and_slice_size(monkeypatch):
    net = _random_batchnorm_net().fuse()
    x = torch.randn(40, 30, 3)
    threads = torch.get_num_threads()
    with torch.inference_mode():
        torch.set_num_threads(1)
        one = net.activations(x)
        torch.set_num_threads(2)
        two = net.activations(x)
        torch.set_num_threads(threads)
        monkeypatch.setattr(particlenet, "_EDGE_ROWS", 16 * 7)  # slices of 7 points, not dividing 30
        odd = net.activations(x)
    assert torch.equal(one, two)  # fixed slice bounds: the same bits for any number of threads
    torch.testing.assert_close(odd, one, rtol=1e-6, atol=1e-7)
    assert torch.get_num_threads() == threads  # intra-op threads restored


def test_fused_fpnd_equals_the_unfolded_jetnet_arithmetic_to_1e_6():
    jets = simulate_jet_chunk(JetSimConfig("q"), seed=5, n=400)["particle_features"][..., :3]
    x = torch.from_numpy((jets / fpnd_mod.FPND_MAXES + fpnd_mod.FPND_SHIFTS).astype(np.float32))
    state = torch.load(fpnd_mod.fpnd_resources() / "pnet_state_dict.pt", map_location="cpu")
    plain = ParticleNet(30, 3)
    plain.load_jetnet_state_dict(state)
    with torch.inference_mode():
        ref = plain.eval().activations(x).double().numpy()
    act = fpnd_mod.particlenet_activations(jets, batch_size=128)
    res = fpnd_mod.fpnd_resources()
    mu, sigma = np.loadtxt(res / "q_mu.txt"), np.loadtxt(res / "q_sigma.txt")
    want = frechet_distance(mu, sigma, ref.mean(0), np.cov(ref, rowvar=False))
    got = frechet_distance(mu, sigma, act.mean(0), np.cov(act, rowvar=False))
    assert abs(got - want) <= 1e-6 * want
    assert got == fpnd_mod.fpnd(jets, "q")  # batching does not change the bits


def test_fpnd_device_argument_moves_the_network_and_its_work():
    jets = simulate_jet_chunk(JetSimConfig("g"), seed=6, n=50)["particle_features"][..., :3]
    assert np.array_equal(fpnd_mod.particlenet_activations(jets, device="cpu"), fpnd_mod.particlenet_activations(jets))
    # an accelerator takes the one-pass branch, every tensor on the input's device (the "meta"
    # device stands in for CUDA here: shapes and devices without a GPU)
    net = _random_batchnorm_net().to("meta").fuse()
    assert all(w.device.type == "meta" for pair in net.edge_nets[2]._fused for w in pair)
    with torch.inference_mode():
        out = net.activations(torch.empty(4, 30, 3, device="meta"))
    assert out.device.type == "meta" and out.shape == (4, 256)


def test_flops_per_jet_counts_the_products_by_hand():
    # block widths 64, 128, 256 on 3, 67, 195 input features; 30 points, k = 16; fc1 451 -> 256
    by_hand = sum(2 * 30 * 2 * f * w + 2 * 30 * 16 * 2 * w * w for f, w in ((3, 64), (67, 128), (195, 256)))
    assert ParticleNet().flops_per_jet(30) == by_hand + 2 * 451 * 256


def test_fpnd_of_offline_jets_against_real_jetnet_statistics():
    jets = simulate_jet_chunk(JetSimConfig("g"), seed=31, n=300)["particle_features"][..., :3]
    value = fpnd_mod.fpnd(jets, "g")
    # Pythia-alone gluon jets are far from real JetNet (spec: FPND about 65 for plain settings;
    # MP-GAN on real JetNet scores 0.35), and nearer to JetNet gluons than to JetNet tops
    assert 20 < value < 200
    assert fpnd_mod.fpnd(jets, "t") > value
    with pytest.raises(PcbenchError, match="jet types"):
        fpnd_mod.fpnd(jets, "w")


def test_fpnd_without_the_jetnet_wheel_says_how_to_get_it(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(PcbenchError, match="pip install --no-deps jetnet==0.2.5"):
        fpnd_mod.fpnd_resources()
