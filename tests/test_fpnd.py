"""FPND: the plain-torch ParticleNet (kNN, BatchNorm folding) and the jetnet wheel's weights."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.errors import PcbenchError
from pcbench.metrics import fpnd as fpnd_mod
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
