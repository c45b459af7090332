"""Convolutional L2LFlows (``conv-l2lflow``): the conv flow's layers (invertible, exact log-det,
identity start), the voxel images of a geometry, the schedules and post-processing by hand,
training on CaloChallenge data set 2 and on the ILD-like 30 x 30 x 30 grid, checkpoints, seeds,
the CLI and DDP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from factories import cli_metric, ds2_voxel_showers, shower_cli_round_trip, shower_ddp, voxel_samples
from pcbench.cli import cli
from pcbench.data import formats
from pcbench.data.containers import ShowerPointSet, VoxelShowerSet
from pcbench.data.simulate.showers import SHOWER_TARGETS, simulate_shower_chunk
from pcbench.errors import ConfigError
from pcbench.geometry import get_geometry, project
from pcbench.models import TrainOptions, load_generator, model_config, train
from pcbench.models.checkpoints import training_summary
from pcbench.models.showers.conv_flow import ActNorm, ConvFlow, LUConv1x1, RQSCoupling, squeeze, unsqueeze
from pcbench.models.showers.voxels import image_shape, images_to_cells, layer_images
from pcbench.models.showers.l2lflow import ConvL2LFlow, one_cycle, renormalize_layers
from pcbench.models.showers.pipeline import PipelineSteps
from pcbench.models.showers.training import as_point_showers

#: a tiny shared-flow config (seconds per epoch on a loaded CPU)
TINY = {"blocks": 1, "hidden": 4, "embed": 2, "cond_layers": 1, "bins": 4, "layer_epochs": 2, "batch_size": 128,
        "energy_blocks": 1, "energy_hidden": [16], "energy_epochs": 2, "energy_batch_size": 8}
THR_DS2 = 0.5e-3 / 0.033


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ds2_voxels():
    return ds2_voxel_showers(20)


@pytest.fixture(scope="module")
def ild_photons():
    d = simulate_shower_chunk(SHOWER_TARGETS["ild-photons"], 5, 8)
    return ShowerPointSet(d["points"], d["points"][..., 3] > 0, d["incident_energy"])


def _perturbed(flow: torch.nn.Module, seed: int, scale: float = 0.1) -> torch.nn.Module:
    """The flow moved away from its identity start (every parameter)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow.eval()


# --- the conv flow ---------------------------------------------------------------------------------
def test_squeeze_moves_patches_to_channels_and_back():
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    s = squeeze(x, (2, 3))
    assert s.shape == (2, 6, 2, 2)
    assert s[0, :, 0, 0].tolist() == [0, 1, 2, 6, 7, 8]  # the top-left 2 x 3 patch, row by row
    assert torch.equal(unsqueeze(s, (2, 3)), x)


@pytest.mark.parametrize("factor,shape,downs,cyclic", [((2, 2), (4, 4), [(2, 2)], False),
                                                        ((1, 2), (3, 4), [(3, 2)], True)])
def test_conv_flow_is_invertible_and_its_log_det_is_the_jacobians(factor, shape, downs, cyclic):
    torch.manual_seed(0)
    flow = ConvFlow(shape, 3, factor, blocks=2, hidden=4, embed=3, downsamples=downs, cyclic=cyclic, bins=4,
                    bound=3.0)
    x, c = torch.randn(16, 1, *shape) * 2, torch.randn(16, 3, *shape)  # some of x in the linear tails
    flow.initialize(x, c)
    flow = _perturbed(flow, 1)
    z, logdet = flow.transform(x, c)
    assert z.shape == (16, factor[0] * factor[1], shape[0] // factor[0], shape[1] // factor[1])
    assert (flow.inverse(z, c) - x).abs().max() < 1e-5
    assert (flow.transform(flow.inverse(z, c), c)[0] - z).abs().max() < 1e-4
    f64 = flow.double()
    x1, c1 = x[:1].double(), c[:1].double()
    jac = torch.autograd.functional.jacobian(lambda t: f64.transform(t.view(1, 1, *shape), c1)[0].reshape(-1),
                                             x1.reshape(-1))
    assert torch.allclose(f64.transform(x1, c1)[1], torch.linalg.slogdet(jac)[1], rtol=1e-8, atol=1e-8)
    lp = f64(x1, c1)  # log-density = N(0, 1) of z + log |det|
    zz, ld = f64.transform(x1, c1)
    want = torch.distributions.Normal(0.0, 1.0).log_prob(zz).sum() + ld
    assert torch.allclose(lp, want.reshape(1), atol=1e-9)


def test_each_flow_layer_inverts_and_starts_as_the_identity():
    torch.manual_seed(3)
    x, ctx = torch.randn(5, 4, 3, 6), torch.randn(5, 2, 3, 6)
    lu = LUConv1x1(4)
    y, ld = lu(x)
    assert torch.equal(y, x[:, lu.perm]) and torch.all(ld == 0)  # a permutation at the start
    coup = RQSCoupling(4, 2, hidden=4, downsamples=[(3, 2)], cyclic=True, bins=5, bound=4.0)
    y, ld = coup(x, ctx)
    assert torch.allclose(y, x, atol=1e-6) and torch.allclose(ld, torch.zeros(5), atol=1e-5)  # zero last conv
    norm = ActNorm(4).train()
    y, ld = norm(x)  # the first training call sets the data-dependent start
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(4), atol=1e-4)
    assert torch.allclose(ld, torch.full((5,), float(norm.log_scale.detach().sum()) * 18))
    for layer in (_perturbed(lu, 4), _perturbed(coup, 5)):
        out = layer(x) if layer is lu else layer(x, ctx)
        back = layer.inverse(out[0]) if layer is lu else layer.inverse(out[0], ctx)
        assert not torch.allclose(out[0], x, atol=1e-3) and (back - x).abs().max() < 1e-5
    assert (norm.inverse(norm(x)[0]) - x).abs().max() < 1e-5


# --- images, schedules, post-processing ------------------------------------------------------------
def test_layer_images_of_both_geometries(ds2_voxels, ild_photons):
    g = get_geometry("calochallenge-2")
    assert image_shape(g) == (45, 16, 9) and image_shape(get_geometry("ild-ecal-30")) == (30, 30, 30)
    pts, _ = as_point_showers(ds2_voxels)
    imgs = layer_images(pts.points, pts.mask, g)
    kept = np.where(ds2_voxels.voxels >= THR_DS2, ds2_voxels.voxels, 0)
    assert imgs.shape == (20, 45, 16, 9) and np.array_equal(images_to_cells(imgs, g), kept)
    assert np.array_equal(imgs[:, 3, 5, 2], kept[:, 3 * 144 + 5 * 9 + 2])  # (layer, alpha, r)
    g30 = get_geometry("ild-ecal-30")
    imgs = layer_images(ild_photons.points, ild_photons.mask, g30)
    cells = project(ild_photons.points, g30, ild_photons.mask, threshold=0.1).cells
    assert imgs.shape == (8, 30, 30, 30) and np.array_equal(images_to_cells(imgs, g30), cells)
    assert np.all((imgs == 0) | (imgs >= 0.1)) and imgs.sum() > 0.5 * ild_photons.points[..., 3].sum()
    with pytest.raises(ConfigError, match="layers of one shape"):
        image_shape(get_geometry("calochallenge-1-photons"))


def test_one_cycle_is_torchs_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=40)
    for step in range(40):
        lr, beta1 = one_cycle(step, 40, 1e-3)
        assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        assert beta1 == pytest.approx(opt.param_groups[0]["betas"][0], rel=1e-9)
        opt.step()
        sched.step()


def test_renormalize_keeps_the_voxels_that_stay_above_threshold_and_the_layer_energy():
    v = torch.tensor([4.0, 3.0, 2.0, 0.5, 0.0, 0.0]).view(1, 1, 2, 3)
    out = renormalize_layers(v, torch.tensor([[12.0]]), 1.9)
    # top 3: scale 12 / 9, smallest 2.67 >= 1.9; top 4: scale 12 / 9.5, smallest 0.63 < 1.9
    assert torch.allclose(out.view(-1), torch.tensor([4, 3, 2, 0, 0, 0]) * 12 / 9)
    assert torch.all(renormalize_layers(v, torch.tensor([[1.0]]), 1.9) == 0)  # E_l below the threshold: empty
    out = renormalize_layers(v, torch.tensor([[5.0]]), 1.9)
    assert torch.allclose(out.view(-1), torch.tensor([4.0, 3, 0, 0, 0, 0]) * 5 / 7)  # top 3 would leave 1.11


# --- the model -----------------------------------------------------------------------------------
def test_a_training_batch_is_dequantised_and_conditioned_as_the_code():
    model = ConvL2LFlow(model_config("conv-l2lflow", "small", **TINY))  # cond_layers 1, shared flow
    model.layer_max.fill_(1.0)
    imgs = torch.zeros(64, 45, 9, 16)  # GeV, model orientation (r, alpha)
    imgs[:, :, 0, 0], imgs[:, :, 0, 1] = 0.5, 1e-5  # one voxel above the 1.515e-5 GeV threshold, one below
    rows, layers = torch.arange(64), torch.full((64,), 3)
    x, ctx, f = model.batch(imgs, torch.full((64,), 100.0), rows, layers, torch.Generator().manual_seed(0))
    assert f == 0 and x.shape == (64, 1, 9, 16) and ctx.shape == (64, 1 + 3, 9, 16)
    v = model.from_flow(x, 3).view(64, -1).sort(1).values.double()  # alpha rolled: compare sorted
    empty = v[:, :-2]  # log-normal filling 10^N(-6, 0.2) (mean 1.054e-6) + U(0, 1e-6)
    assert empty.mean().item() == pytest.approx(1.054e-6 + 5e-7, rel=0.05) and empty.max() < 1e-5
    assert torch.allclose(v[:, -1], torch.full((64,), 0.5, dtype=torch.float64), rtol=1e-4)
    e_l = 0.5  # the voxel below the threshold does not count; noise of 1e-6 does not show at this precision
    assert torch.allclose(ctx[:, 1], torch.full_like(ctx[:, 1], math.log10(e_l + 1e-6) + 1), atol=1e-5)
    assert torch.allclose(ctx[:, 2], torch.full_like(ctx[:, 2], 2 * math.log10(100.0 + 1e-6) - 3), atol=1e-5)
    assert torch.allclose(ctx[:, 3], torch.full_like(ctx[:, 3], 3 / 45))
    prev = model.from_flow(ctx[:, :1], 2).view(64, -1).sort(1).values  # the previous layer, same treatment
    assert torch.allclose(prev[:, -1], torch.full((64,), 0.5), rtol=1e-4)
    x0, ctx0, _ = model.batch(imgs, torch.full((64,), 100.0), rows, torch.zeros(64, dtype=torch.long),
                              torch.Generator().manual_seed(0))
    assert torch.allclose(ctx0[:, 0], torch.full_like(ctx0[:, 0], math.log(0.01 / 0.99)))  # before layer 0: empty


def test_training_lowers_both_losses_and_checkpoints_reproduce_samples(ds2_voxels, tmp_path):
    cfg = model_config("conv-l2lflow", "small", **{**TINY, "energy_epochs": 25, "layer_epochs": 3, "lr": 3e-3})
    path = train("conv-l2lflow", cfg, ds2_voxels, TrainOptions(out_dir=tmp_path / "m", progress=False, seed=2))
    model, payload = load_generator(path)
    hist = payload["train_state"]["history"]
    energy = [h["nll"] for h in hist if h["phase"] == "energy"]
    layers = [h["nll"] for h in hist if h["phase"] == "layers"]
    assert len(energy) == 25 and len(layers) == 3 and payload["train_state"]["finished"]
    # the records' training line names each phase of the one trainer with done and planned units
    assert training_summary(payload)["text"] == "layer-energy flow: 25 of 25 epochs, layer flows: 3 of 3 epochs"
    assert energy[-1] < energy[0] - 1.0 and layers[-1] < layers[0]
    assert payload["config"]["grid"] == "calochallenge-2" and model.n_layers == 45 and model.cyclic
    e = ds2_voxels.incident_energy[:3].astype(np.float64)
    a = model.sample(e, seed=4, batch_size=2, steps=PipelineSteps(project=True))
    b = load_generator(path)[0].sample(e, seed=4, batch_size=2, steps=PipelineSteps(project=True))
    assert isinstance(a, VoxelShowerSet) and a.voxels.shape == (3, 6480) and a.geometry == "calochallenge-2"
    assert np.array_equal(a.voxels, b.voxels)  # checkpoint round trip, same seed
    assert not np.array_equal(a.voxels, model.sample(e, seed=5, batch_size=2, steps=PipelineSteps(project=True)).voxels)
    kept = a.voxels[a.voxels > 0]
    assert kept.size > 0 and kept.min() >= THR_DS2  # cut at the readout threshold
    pts = model.sample(e, seed=4, batch_size=2)  # without projection: voxel centres as points
    back = project(pts.points, get_geometry("calochallenge-2"), pts.mask).cells
    assert np.allclose(back, a.voxels)


def test_flows_of_the_full_structure_one_per_layer(ds2_voxels, tmp_path):
    cfg = model_config("conv-l2lflow", "small", **{**TINY, "shared_flow": False, "cond_layers": 2,
                                                   "layer_epochs": 1, "energy_epochs": 1})
    model = ConvL2LFlow(cfg)
    assert len(model.flows) == 45
    chans = [f.embed[0].in_channels if hasattr(f.embed, "__getitem__") else None for f in model.flows]
    assert chans[0] is None and chans[1] == 3 and chans[2:] == [4] * 43  # min(k, l) previous layers + 2 maps
    path = train("conv-l2lflow", cfg, ds2_voxels, TrainOptions(out_dir=tmp_path / "m", progress=False))
    trained, payload = load_generator(path)
    hist = [h for h in payload["train_state"]["history"] if h["phase"] == "layers"]
    assert [h["layer"] for h in hist] == list(range(45))  # layer after layer
    fresh = ConvL2LFlow(cfg).state_dict()
    for l in (0, 44):  # every flow trained (its first coupling's last conv left zero)
        k = f"flows.{l}.couplings.0.net.dec.0.5.weight"
        assert torch.all(fresh[k] == 0) and trained.state_dict()[k].abs().sum() > 0
    s = trained.sample(ds2_voxels.incident_energy[:2].astype(np.float64), seed=1, steps=PipelineSteps(project=True))
    assert s.voxels.shape == (2, 6480) and np.isfinite(s.voxels).all()


def test_on_the_ild_30_grid_it_generates_cell_hits(ild_photons, tmp_path):
    cfg = model_config("conv-l2lflow", "small", **{**TINY, "grid": "ild-ecal-30", "renormalize": True})
    path = train("conv-l2lflow", cfg, ild_photons, TrainOptions(out_dir=tmp_path / "m", progress=False))
    model, payload = load_generator(path)
    assert model.hw == (30, 30) and model.factor == (2, 2) and not model.cyclic
    s = model.sample(np.array([20e3, 80e3]), seed=2)
    g = get_geometry("ild-ecal-30")
    assert isinstance(s, ShowerPointSet) and s.mask.sum() > 0
    real = s.points[s.mask]
    cell = g.cell_index(real[:, :3].astype(np.float64))
    assert np.all(cell >= 0) and np.allclose(g.cell_centres[cell], real[:, :3], atol=1e-3)  # at cell centres
    assert real[:, 3].min() >= 0.1  # the grid's threshold
    rows = np.repeat(np.arange(2), s.mask.sum(1))
    assert len(np.unique(rows * g.n_cells + cell)) == len(cell)  # one hit per cell
    with torch.no_grad():  # renormalize: each layer carries the layer-energy flow's energy (above threshold)
        v = model.generate(np.array([50e3]), seed=7)
        torch.manual_seed(7)
        from pcbench.models.showers.l2lflow import _LOGIT_E, _cond_einc, _expit
        f = model.energy_flow(_cond_einc(torch.tensor([50.0]))[:, None]).sample()
        e_l = (_expit(f, _LOGIT_E) * model.e_max).clamp_min(0)[0]
    sums = v[0].sum((-2, -1))
    big = e_l >= 1e-3
    assert big.sum() > 0 and torch.allclose(sums[big], e_l[big], rtol=1e-4)


def test_bad_settings_are_one_line_config_errors(ds2_voxels, tmp_path):
    with pytest.raises(ConfigError, match="grid 'ild-ecal' has no image layout"):
        ConvL2LFlow(model_config("conv-l2lflow", "small", grid="ild-ecal"))
    data = formats.write(tmp_path / "ds2.h5", ds2_voxels)
    res = CliRunner().invoke(cli, ["train", "conv-l2lflow", "--data-file", str(data), "--set", "bins=1",
                                   "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "bins and energy_bins must be >= 2" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_cli_train_sample_evaluate_on_ds2_voxels(ds2_voxels, tmp_path):
    data, out = shower_cli_round_trip("conv-l2lflow", ds2_voxels, tmp_path,
                                      {**TINY, "layer_epochs": 1, "energy_epochs": 1})
    gen = voxel_samples(out, ds2_voxels, "conv-l2lflow")
    assert gen.voxels.shape == (20, 6480)
    assert 0 <= cli_metric(out, data, tmp_path, "sep_e_ratio") <= 1


def test_training_under_ddp_keeps_the_replicas_equal(ds2_voxels, tmp_path):
    data = formats.write(tmp_path / "ds2.h5", ds2_voxels)
    cfg = model_config("conv-l2lflow", "small", **{**TINY, "layer_epochs": 1, "energy_epochs": 1})
    payload, r0, r1 = shower_ddp("conv-l2lflow", cfg, data, tmp_path / "ddp")
    assert payload["train_state"]["world_size"] == 2 and payload["train_state"]["layer_epoch"] == 1
    fresh = ConvL2LFlow(model_config("conv-l2lflow", "small", **TINY)).state_dict()
    trained = [k for k in r0 if r0[k].is_floating_point() and "running_" not in k]  # batch-norm statistics:
    assert {k.split(".")[0] for k in trained} == {"energy_flow", "flows", "layer_max", "e_max"}  # each rank's own
    for k in trained:
        assert torch.equal(r0[k], r1[k]), k
    k = "flows.0.couplings.0.net.dec.0.5.weight"
    assert torch.all(fresh[k] == 0) and r0[k].abs().sum() > 0  # it trained
