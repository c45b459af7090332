"""The CaloChallenge CNN classifier test (``pcbench.metrics.cnn_classifier``): the voxel images,
the network's shapes, the protocol on synthetic data-set-2 showers, determinism and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pcbench.errors import IncompatibleError, PcbenchError, UsageError
from pcbench.geometry import get_geometry
from pcbench.metrics.cnn_classifier import CNNSettings, cnn_classifier_test, cnn_network, image_shape, voxel_images

DS2 = get_geometry("calochallenge-2")
DS3 = get_geometry("calochallenge-3")
#: a profile small enough for the tests: the fast network with half its channels and a 3 x 3 x 3
#: stem; batches of 24 give 15 steps per epoch, 120 in all, enough for the BatchNorm running
#: statistics to forget their initial variance of 1 (the inputs voxels / E_inc are of order 1e-3)
TINY = CNNSettings.named("fast", channels=(4, 8, 8, 16), stem_kernel=3, epochs=8, batch_size=24)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One torch thread: small 3-D convolutions run several times faster than with two threads
    on a shared, loaded machine (the values do not depend on it for these tests)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _showers(n: int, seed: int, depth_shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 6480) synthetic data-set-2 showers [MeV] and (n,) E_inc [MeV]: a gamma-shaped longitudinal
    profile (its shape parameter shifted by ``depth_shift``: energy moved to deeper layers), an
    exponential radial profile, uniform in alpha, with gamma-distributed voxel fluctuations."""
    rng = np.random.default_rng(seed)
    n_layer, n_alpha, n_r = 45, 16, 9
    e_inc = 10 ** rng.uniform(3, 6, n)
    t = np.arange(n_layer) + 0.5
    lon = t ** (rng.normal(4.0 + depth_shift, 0.3, n)[:, None] - 1) * np.exp(-t / 2.5)
    lon /= lon.sum(1, keepdims=True)
    edges = np.asarray(DS2.layers[0].r_edges)
    rc = 0.5 * (edges[1:] + edges[:-1])
    rad = rc * np.exp(-rc / 8.0)
    rad /= rad.sum()
    v = lon[:, :, None, None] * rad / n_alpha * rng.gamma(4.0, 0.25, (n, n_layer, n_alpha, n_r))
    v *= (e_inc * rng.uniform(0.9, 1.0, n))[:, None, None, None]
    return v.reshape(n, -1).astype(np.float32), e_inc


def test_images_put_known_voxels_at_known_positions():
    assert image_shape(DS2) == (45, 16, 9) and image_shape(DS3) == (45, 50, 18)
    v = np.zeros((2, DS2.n_voxels), np.float32)
    v[0, 3 * 144 + 5 * 9 + 7] = 2.0  # layer 3, alpha bin 5, radial bin 7 (file order: layer, alpha, r)
    v[1, DS2.n_voxels - 1] = 1.0  # the last voxel: last layer, alpha and radial bin
    img = voxel_images(v, DS2)
    assert img.shape == (2, 45, 16, 9) and img[0, 3, 5, 7] == 2.0 and img[1, 44, 15, 8] == 1.0
    assert img.sum() == 3.0
    t = DS3.voxel_table  # the geometry's own description of every voxel agrees
    rng = np.random.default_rng(0)
    k = rng.choice(DS3.n_voxels, 50, replace=False)
    w = np.zeros((1, DS3.n_voxels), np.float32)
    w[0, k] = np.arange(1, 51)
    img3 = voxel_images(w, DS3)
    assert (img3[0, t["layer"][k], t["alpha_bin"][k], t["r_bin"][k]] == np.arange(1, 51)).all()
    assert img3[0, 10, 7, 4] == w[0, 10 * 900 + 7 * 18 + 4]
    # the network sees the same images (its rows: log10 E_inc, then the voxels)
    import torch

    net = cnn_network((45, 16, 9), TINY)
    rows = torch.from_numpy(np.column_stack([np.ones(2, np.float32), v]))
    assert torch.equal(net.images(rows)[:, 0], torch.from_numpy(img))


@pytest.mark.parametrize("geometry", [DS2, DS3], ids=["ds2", "ds3"])
def test_network_gives_one_logit_per_shower_independent_of_the_batch(geometry):
    import torch

    shape = image_shape(geometry)
    torch.manual_seed(0)
    net = cnn_network(shape, CNNSettings()).eval()  # the challenge's ResNet-18
    # 2,516,644 trainable parameters, as code/resnet.py's generate_model(18) (the count needs no image size)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 2_516_644
    x = torch.rand(3, 1 + geometry.n_voxels) * 1e-2
    x[:, 0] = torch.tensor([3.0, 4.5, 6.0])
    with torch.no_grad():
        out, perm, one = net(x), net(x[[2, 0, 1]]), net(x[1:2])
    assert out.shape == (3,) and torch.isfinite(out).all() and one.shape == (1,)
    assert torch.allclose(perm, out[[2, 0, 1]], atol=1e-5) and torch.allclose(one, out[1:2], atol=1e-5)
    assert net.train()(x).shape == (3,)  # training mode (batch statistics) too


def test_identical_distributions_give_an_auc_near_one_half():
    ra, ea = _showers(300, 1)
    rb, eb = _showers(300, 2)  # a disjoint draw of the same showers
    calls = []
    r = cnn_classifier_test(ra, ea, rb, eb, DS2, TINY, on_epoch=lambda: calls.append(1))
    assert abs(r.auc - 0.5) < max(4 * r.auc_error, 0.05), (r.auc, r.auc_error)
    assert r.jsd < 0.1 and r.n_per_class == 300 and r.image_shape == (45, 16, 9) and len(calls) == TINY.epochs
    assert r.steps_per_epoch == 15  # 2 x 180 training showers in batches of 24


def test_energy_moved_between_layers_is_found_and_seeded_runs_are_bit_identical():
    ra, ea = _showers(300, 1)
    rb, eb = _showers(300, 3, depth_shift=1.5)
    r = cnn_classifier_test(ra, ea, rb, eb, DS2, TINY)
    assert r.auc > 0.9 and r.jsd > 0.3, r
    again = cnn_classifier_test(ra, ea, rb, eb, DS2, TINY)
    assert again == r  # every field, to the last bit
    assert r.settings["depth"] == 10 and r.n_parameters > 0


def test_profiles():
    full, fast = CNNSettings.named("full"), CNNSettings.named("fast")
    assert (full.depth, full.channels, full.stem_kernel, full.lr, full.batch_size, full.epochs, full.split) == \
        (18, (32, 64, 64, 128), 7, 2e-4, 1000, 50, (0.6, 0.2, 0.2))  # the challenge's cls-resnet
    assert fast.depth == 10 and fast.epochs < full.epochs and max(fast.channels) < max(full.channels)


def test_bad_input_is_one_line_naming_what_was_expected():
    v, e = _showers(20, 1)

    def message(exc_type, *args, settings=TINY) -> str:
        with pytest.raises(exc_type) as info:
            cnn_classifier_test(*args, settings)
        assert isinstance(info.value, PcbenchError) and "\n" not in str(info.value)
        return str(info.value)

    assert "(n, 6480)" in message(IncompatibleError, v[:, :-1], e, v, e, DS2)
    assert "(n, 40500)" in message(IncompatibleError, v, e, v, e, DS3)
    assert "data set 1" in message(IncompatibleError, v, e, v, e, get_geometry("calochallenge-1-photons"))
    assert "incident energies" in message(IncompatibleError, v, e[:-1], v, e, DS2)
    assert "E_inc > 0" in message(IncompatibleError, v, e, v, -e, DS2)
    assert "at least 2 showers" in message(IncompatibleError, v[:4], e[:4], v[:4], e[:4], DS2)
    assert "10, 18, 34" in message(UsageError, v, e, v, e, DS2, settings=dataclasses.replace(TINY, depth=50))
