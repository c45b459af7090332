"""The device argument of the metrics that run networks: the CPU path unchanged, the device reached.

No GPU here: a CPU device spelled differently ("cpu:0") must reach every tensor move and give the
same bits as the default; evaluate() checks the device first (CUDA absent: a one-line error).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pcbench.evaluate as evaluate_mod
from pcbench.errors import UsageError
from pcbench.metrics import jet_observables
from pcbench.metrics.classifier import deepsets_classifier_auc
from pcbench.metrics.dnn_classifier import DNNSettings, dnn_classifier_test
from tests.factories import jetnet_arrays, write_h5


@pytest.fixture
def moves(monkeypatch) -> list[str]:
    """Every device that a Tensor.to or Module.to call asked for."""
    seen: list[str] = []
    tensor_to, module_to = torch.Tensor.to, torch.nn.Module.to

    def record(args, kwargs):
        dev = kwargs.get("device", args[0] if args else None)
        if isinstance(dev, (str, torch.device)):
            seen.append(str(dev))

    def t_to(self, *a, **k):
        record(a, k)
        return tensor_to(self, *a, **k)

    def m_to(self, *a, **k):
        record(a, k)
        return module_to(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "to", t_to)
    monkeypatch.setattr(torch.nn.Module, "to", m_to)
    return seen


def test_dnn_classifier_device_reaches_the_network_and_keeps_the_values(moves):
    rng = np.random.default_rng(0)
    real, gen = rng.normal(0, 1, (300, 5)), rng.normal(0.3, 1, (300, 5))
    small = {"n_hidden": 16, "epochs": 3, "batch_size": 50, "n_boot": 3}
    base = dnn_classifier_test(real, gen, DNNSettings(**small))
    assert "cpu:0" not in moves
    moved = dnn_classifier_test(real, gen, DNNSettings(**small, device="cpu:0"))
    assert "cpu:0" in moves
    assert (moved.auc, moved.jsd, moved.auc_error, moved.best_epoch) == (base.auc, base.jsd, base.auc_error, base.best_epoch)
    assert 0.5 < base.auc < 1.0  # a real, separable pair


def test_deepsets_and_efps_device_keeps_the_bits(moves):
    pf, _ = jetnet_arrays(120, 30, seed=3)
    pg, _ = jetnet_arrays(120, 30, seed=4)
    kw = {"k": 2, "epochs": 1, "hidden": 8}
    assert deepsets_classifier_auc(pf, pg, **kw, device="cpu:0") == deepsets_classifier_auc(pf, pg, **kw)
    mask = pf[..., 3] > 0
    a = jet_observables.efps(pf[..., :3], mask, device="cpu:0")
    assert moves.count("cpu:0") >= 3  # Deep Sets networks, their inputs, the EFP inputs
    assert np.array_equal(a, jet_observables.efps(pf[..., :3], mask))


def test_evaluate_checks_the_device_and_hands_it_to_the_suite(tmp_path, monkeypatch):
    pf, jf = jetnet_arrays(60, 30, seed=1)
    path = write_h5(tmp_path / "gen.h5", particle_features=pf, jet_features=jf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="--device cuda: CUDA is not available"):
        evaluate_mod.evaluate(path, str(path), device="cuda")
    with pytest.raises(UsageError, match="expected cpu, cuda or cuda:N"):
        evaluate_mod.evaluate(path, str(path), device="gpu")
    seen = []

    def suite(gen, ref, cfg, jet_type, progress, *truth):
        seen.append(cfg.device)
        raise UsageError("stop")

    monkeypatch.setattr(evaluate_mod, "jet_suite", suite)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for device in ("cpu", "cuda:0"):
        with pytest.raises(UsageError, match="stop"):
            evaluate_mod.evaluate(path, str(path), device=device)
    assert seen == ["cpu", "cuda:0"]


@pytest.mark.parametrize("name", ["calochallenge-2", "ild-ecal"])
def test_dense_rows_written_in_the_kernel_equal_the_sparse_hits(name):
    from pcbench.geometry import get_geometry, iter_project, project

    geo = get_geometry(name)
    rng = np.random.default_rng(7)
    n, p = 23, 300
    if name == "ild-ecal":
        centres = geo.cell_centres[rng.integers(0, geo.n_cells, (n, p))]
        xyz = centres + rng.uniform(-2.0, 2.0, centres.shape)  # some points fall outside
    else:
        r, a = np.abs(rng.standard_cauchy((n, p))) * 10, rng.uniform(-np.pi, np.pi, (n, p))
        xyz = np.stack([r * np.cos(a), r * np.sin(a), rng.integers(0, geo.n_layers, (n, p)) + 0.5], -1)
    e = rng.exponential(0.5, (n, p, 1)) * (rng.random((n, p, 1)) < 0.9)
    pts = np.concatenate([xyz, e], -1).astype(np.float32)
    sparse = project(pts, geo, threshold=0.3, output="sparse", chunk_points=1000)
    want = np.zeros((n, geo.n_cells), np.float32)
    want[sparse.hits.shower, sparse.hits.cell] = sparse.hits.energy  # float64 sums rounded once to float32
    whole = project(pts, geo, threshold=0.3, output="dense", chunk_points=1000)  # several chunks, one array
    assert np.array_equal(whole.cells, want)
    streamed = np.concatenate([part.cells for _, part in iter_project(pts, geo, threshold=0.3, chunk_points=1000)])
    assert np.array_equal(streamed, want)
    assert np.array_equal(whole.below_threshold_energy, sparse.below_threshold_energy)
    assert whole.outside_points.sum() == sparse.outside_points.sum()
    assert 0 < (want > 0).sum() < (e > 0).sum()  # the threshold removed some cells, kept others


def test_sparse_hits_of_several_chunks_equal_one_chunk_and_the_streamed_chunks():
    """project() writes every chunk's hits into one buffer at the running hit count: with a
    threshold that drops hits (fewer hits than points per chunk), the hits of 5+ chunks must
    equal those of one chunk, those iter_project streams, and a per-shower numpy sum in the
    order of each cell's first point."""
    from pcbench.geometry import get_geometry, iter_project, project

    geo = get_geometry("ild-ecal")
    rng = np.random.default_rng(11)
    n, p = 31, 200
    centres = geo.cell_centres[rng.integers(0, 400, (n, p))]  # few cells: many points per cell
    xyz = centres + rng.uniform(-2.0, 2.0, centres.shape)
    e = rng.exponential(0.5, (n, p, 1)) * (rng.random((n, p, 1)) < 0.8)
    pts = np.concatenate([xyz, e], -1).astype(np.float32)
    pts[3, :, 3] = 0.0  # a shower of padding only, and one padded after its 150th slot
    pts[5, 150:, 3] = 0.0
    chunked = project(pts, geo, threshold=0.4, output="sparse", chunk_points=1000)
    single = project(pts, geo, threshold=0.4, output="sparse", chunk_points=10**9)
    for field in ("offsets", "cell", "energy"):
        assert np.array_equal(getattr(chunked.hits, field), getattr(single.hits, field))
    streamed = [part.hits for _, part in iter_project(pts, geo, threshold=0.4, output="sparse", chunk_points=1000)]
    assert len(streamed) >= 5
    assert np.array_equal(np.concatenate([h.cell for h in streamed]), chunked.hits.cell)
    assert np.array_equal(np.concatenate([h.energy for h in streamed]), chunked.hits.energy)
    cell = geo.cell_index(pts[..., :3].reshape(-1, 3)).reshape(n, p)
    for s in range(n):
        real = (pts[s, :, 3] > 0) & (cell[s] >= 0)
        first = {}
        for c, x in zip(cell[s][real], pts[s, real, 3].astype(np.float64)):
            first[c] = first.get(c, 0.0) + x
        want = [(c, x) for c, x in first.items() if x >= 0.4]
        a, b = chunked.hits.offsets[s], chunked.hits.offsets[s + 1]
        assert [int(c) for c in chunked.hits.cell[a:b]] == [c for c, _ in want]
        assert np.allclose(chunked.hits.energy[a:b], [x for _, x in want], rtol=1e-12)
    assert chunked.hits.counts[3] == 0 and chunked.hits.counts[5] > 0
    assert 0 < len(chunked.hits.cell) < int((e > 0).sum())
