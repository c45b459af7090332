"""Jet generators: shapes, equivariance, checkpoints, training, determinism, resume, DDP, CLI."""

from __future__ import annotations

import hashlib
import os
import socket

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import JetSet, read, validate_file, write
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.models import MODELS, JetGenerator, TrainOptions, build_model, load_generator, model_config, train
from pcbench.models.jets.epic import EPiCLayer
from pcbench.models.jets.epic_fm import ode_solve
from pcbench.errors import ConfigError
from pcbench.models.checkpoints import training_summary, unfinished_parts
from pcbench.models.jets.mpgan import MPLayer

TINY = {
    "epic-gan": {"hidden": 16, "gen_layers": 1, "disc_layers": 1, "batch_size": 32},
    "epic-fm": {"hidden": 16, "layers": 1, "batch_size": 32, "steps": 4},
    "epic-jedi": {"hidden": 16, "layers": 1, "batch_size": 32, "steps": 4, "warmup": 10},
    "pc-jedi": {"model_dim": 16, "layers": 1, "heads": 2, "ff_hidden": 16, "embed_hidden": 16, "ctxt_hidden": 16,
                "ctxt_dim": 8, "batch_size": 32, "steps": 4, "warmup": 10},
    "mdma": {"gen_hidden": 8, "gen_heads": 2, "gen_layers": 2, "disc_hidden": 8, "disc_heads": 2, "batch_size": 32,
             "warmup": 5},
    "deeptree-gan": {"hidden": 8, "critic_heads": 2, "batch_size": 32},
    "mp-gan": {"latent_node": 8, "disc_node": 8, "fe": [8], "fn": [8], "fnd": [8], "batch_size": 32,
               "disc_dropout": 0.0},  # the paper's 0.5 drops whole scores of an 8-wide critic: too noisy for 40 steps
    "independent": {},
}


@pytest.fixture(scope="module")
def jets() -> JetSet:
    a = simulate_jet_chunk(JetSimConfig("g"), seed=41, n=160)
    return JetSet.from_jetnet(a["particle_features"], a["jet_features"], "g")


def tiny(name: str) -> dict:
    return model_config(name, "small", **TINY[name])


def params_digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_samples_have_shapes_masks_and_multiplicities(name, jets):
    model = build_model(name, tiny(name), jets)
    mult = np.array([1, 5, 30, 12, 12, 7])
    out = model.sample(len(mult), seed=3, multiplicities=mult)
    assert out.particle_features.shape == (6, 30, 4)
    assert out.mask.sum(1).tolist() == mult.tolist()
    assert np.all(out.particles[~out.mask] == 0)
    assert np.all(np.diff(out.particles[..., 2], axis=1) <= 0)  # sorted by pT
    drawn = model.sample(500, seed=4)
    assert set(np.unique(drawn.mask.sum(1))) <= set(np.flatnonzero(model.stats.multiplicities))


def test_postprocessing_keeps_generated_jets_valid(jets):
    model = build_model("independent", tiny("independent"), jets)
    raw = np.zeros((2, 30, 3))
    raw[0, :3] = [[0.1, 0.2, 1.7], [0.0, -0.1, -0.3], [0.05, 3.1, 0.2]]  # ptrel > 1 and < 0, phi past pi
    raw[1, :1] = [[0.3, -3.0, 0.5]]
    out = model.postprocess(raw, np.array([3, 1]), np.random.default_rng(0))
    pt = out.particles[..., 2]
    assert pt.max() == 1.0 and pt[0, 2] == pytest.approx(model.stats.min_ptrel)
    assert np.all(np.abs(out.particles[..., 1]) <= np.pi)
    assert out.particles[1, 0, :2].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # one particle: on the axis


def test_epic_layer_is_permutation_equivariant():
    torch.manual_seed(0)
    layer = EPiCLayer(hidden=8, global_dim=4, cond_dim=2)
    g, x, c = torch.randn(3, 4), torch.randn(3, 7, 8), torch.randn(3, 2)
    perm = torch.randperm(7)
    g1, x1 = layer(g, x, c)
    g2, x2 = layer(g, x[:, perm], c)
    torch.testing.assert_close(g2, g1)  # the global vector is invariant
    torch.testing.assert_close(x2, x1[:, perm])  # the points are permuted with the input


def test_message_passing_is_permutation_equivariant():
    torch.manual_seed(1)
    layer = MPLayer(5, fe=[6], fn=[6], out_size=4)
    x = torch.randn(2, 9, 5)
    perm = torch.randperm(9)
    torch.testing.assert_close(layer(x[:, perm]), layer(x)[:, perm])
    mask = torch.tensor([[1.0] * 4 + [0.0] * 5] * 2)  # masked nodes send no messages
    torch.testing.assert_close(layer(x, mask)[:, :4], layer(x[:, :4]))


def test_mp_gan_scales_features_into_its_tanh_range(jets):
    model = build_model("mp-gan", tiny("mp-gan"), jets)
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask], dtype=torch.float64))
    assert x.std(0).numpy() == pytest.approx([0.2, 0.2, 0.2], rel=1e-3)


@pytest.mark.parametrize("name", ["epic-gan", "epic-fm", "epic-jedi", "pc-jedi", "mdma", "deeptree-gan", "mp-gan"])
def test_checkpoint_round_trip_gives_identical_samples(name, jets, tmp_path):
    ckpt = train(name, tiny(name), jets, TrainOptions(epochs=1, out_dir=tmp_path, val_every=0, progress=False))
    model, payload = load_generator(ckpt)
    again, _ = load_generator(ckpt)
    a, b = model.sample(40, seed=9), again.sample(40, seed=9)
    assert np.array_equal(a.particle_features, b.particle_features)
    assert payload["epoch"] == 1 and payload["model"] == name and len(payload["checkpoint_md5"]) == 32


def test_flow_matching_loss_falls(jets):
    torch.manual_seed(0)
    model = build_model("epic-fm", tiny("epic-fm"), jets)
    opt = model.make_optimizers()
    x = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask.sum(1) == 30][:32, :30], dtype=torch.float32))
    losses = [model.training_step(x, opt, model.trainable())["loss"] for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


@pytest.mark.parametrize("name", ["epic-gan", "mdma", "deeptree-gan", "mp-gan"])
def test_gan_critic_learns(name, jets):
    torch.manual_seed(0)
    model = build_model(name, tiny(name), jets)
    opt = model.make_optimizers()
    rows = jets.mask.sum(1) >= 20
    x = model.stats.normalise(torch.as_tensor(jets.particles[rows][:32, :20], dtype=torch.float32))
    losses = [model.training_step(x, opt, model.trainable())["loss_d"] for _ in range(40)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_ode_solvers_have_their_order():
    # dx/dt = -x from t=1 to 0: x(0) = x(1) e; error ~ h (Euler), h^2 (midpoint)
    f = lambda x, t: -x  # noqa: E731
    x1 = torch.ones(1, dtype=torch.float64)
    for method, order in (("euler", 1), ("midpoint", 2)):
        e1 = abs(ode_solve(f, x1, 1.0, 0.0, 20, method) - np.e).item()
        e2 = abs(ode_solve(f, x1, 1.0, 0.0, 40, method) - np.e).item()
        assert e1 / e2 == pytest.approx(2**order, rel=0.1), method


def test_training_is_deterministic_and_resume_continues_exactly(jets, tmp_path):
    opts = dict(val_every=0, progress=False, seed=5)
    a = train("epic-fm", tiny("epic-fm"), jets, TrainOptions(epochs=2, out_dir=tmp_path / "a", **opts))
    b = train("epic-fm", tiny("epic-fm"), jets, TrainOptions(epochs=2, out_dir=tmp_path / "b", **opts))
    train("epic-fm", tiny("epic-fm"), jets, TrainOptions(epochs=1, out_dir=tmp_path / "c", **opts))
    c = train("epic-fm", tiny("epic-fm"), jets, TrainOptions(epochs=2, out_dir=tmp_path / "c", resume=True, **opts))
    da, db, dc = (params_digest(load_generator(p)[0]) for p in (a, b, c))
    assert da == db == dc


def test_epochs_by_particle_count_pick_this_data_sets_entry(jets, tmp_path):
    """A small config may plan epochs per particle count (each fitting the same CPU budget): on
    30-particle jets ``{30: 2, 150: 1}`` trains exactly what ``epochs: 2`` does; a count it does not
    name is a one-line error saying which counts it plans."""
    opts = dict(val_every=0, progress=False, seed=5)
    by_count = train("epic-fm", {**tiny("epic-fm"), "epochs": {30: 2, 150: 1}}, jets,
                     TrainOptions(out_dir=tmp_path / "a", **opts))
    plain = train("epic-fm", {**tiny("epic-fm"), "epochs": 2}, jets, TrainOptions(out_dir=tmp_path / "b", **opts))
    ckpt = load_generator(by_count)[1]
    assert ckpt["epoch"] == ckpt["planned_epochs"] == 2
    assert params_digest(load_generator(by_count)[0]) == params_digest(load_generator(plain)[0])
    with pytest.raises(ConfigError, match=r"epic-fm: this config plans epochs for jets of 50, 150 particles, not 30"):
        train("epic-fm", {**tiny("epic-fm"), "epochs": {"150": 1, "50": 3}}, jets, TrainOptions(out_dir=tmp_path / "c", **opts))


def test_best_epoch_is_kept_by_validation_w1m(jets, tmp_path):
    best = train("epic-fm", tiny("epic-fm"), jets.subset(slice(0, 120)),
                 TrainOptions(epochs=3, out_dir=tmp_path, val_every=1, val_jets=40, progress=False),
                 valid=jets.subset(slice(120, 160)))
    payload = load_generator(best)[1]
    vals = [h["val_w1m"] for h in load_generator(tmp_path / "last.pt")[1]["history"]]
    assert best.name == "best.pt" and payload["best"]["w1m"] == min(vals)
    assert payload["epoch"] == 1 + int(np.argmin(vals))
    # its summary names the kept epoch among the 3 trained, not an unfinished run of that many
    e = payload["epoch"]
    summary = training_summary(payload)
    assert summary["epochs"] == e and summary["trained_epochs"] == 3 and unfinished_parts(payload) == []
    assert summary["text"].startswith(f"epoch {e} of 3 (3 planned) kept (best validation W1M, every 1 epochs), ")
    assert "UNFINISHED" not in summary["text"]


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str, name: str = "epic-fm") -> None:
    """One torchrun-like process: the environment torchrun would set, then the ordinary train()."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    train(name, tiny(name), read(data), TrainOptions(epochs=1, out_dir=out, val_every=0, progress=False))
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("name", ["epic-fm", "pc-jedi", "epic-jedi", "mdma", "deeptree-gan"])
def test_ddp_with_two_gloo_processes(name, jets, tmp_path):
    data = write(tmp_path / "jets.h5", jets)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.start_processes(_ddp_worker, args=(2, port, str(data), str(tmp_path / "ddp"), name), nprocs=2,
                                          join=True, start_method="spawn")
    payload = load_generator(tmp_path / "ddp" / "last.pt")[1]
    assert payload["world_size"] == 2 and payload["epoch"] == 1 and payload["model"] == name


def test_cli_train_then_sample(jets, tmp_path):
    data = write(tmp_path / "g.h5", jets)
    res = CliRunner().invoke(cli, ["train", "epic-gan", "--data-file", str(data), "--epochs", "1", "--out",
                                   str(tmp_path / "run"), "--set", "hidden=16", "--set", "gen_layers=1",
                                   "--set", "disc_layers=1", "--val-every", "1"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["sample", str(tmp_path / "run" / "best.pt"), "-n", "64", "-o", str(tmp_path / "s.h5"),
                                   "--batch-size", "32"])
    assert res.exit_code == 0, res.output
    assert validate_file(tmp_path / "s.h5").ok
    out = read(tmp_path / "s.h5")
    assert len(out) == 64 and out.attrs["model"] == "epic-gan" and out.attrs["generation_time_per_object_s"] > 0
    assert (out.jet_type == 0).all() and out.attrs["hardware"]["device"] == "cpu"


class GaussianParticles(JetGenerator):
    """The docs' minimal example (docs/generators-jets.md, "Adding a generator"): every particle's
    normalised features from one learned Gaussian (mean and log-width per feature)."""

    name = "gaussian-particles"
    configs = {"small": {"lr": 0.05, "batch_size": 64, "epochs": 3}, "full": {"lr": 0.01, "batch_size": 256, "epochs": 50}}

    def __init__(self, config, stats):
        super().__init__(config, stats)
        self.net = torch.nn.ParameterDict({"mean": torch.nn.Parameter(torch.zeros(3)),
                                           "log_std": torch.nn.Parameter(torch.zeros(3))})

    def trainable(self):
        return {"net": self.net}

    def make_optimizers(self):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=self.config["lr"])}

    def training_step(self, x, optimizers, modules):
        p = self.net
        nll = (0.5 * ((x - p["mean"]) / p["log_std"].exp()) ** 2 + p["log_std"]).mean()
        optimizers["net"].zero_grad()
        nll.backward()
        optimizers["net"].step()
        return {"nll": nll.item()}

    def generate(self, n_jets, multiplicity, generator):
        noise = torch.randn(n_jets, multiplicity, 3, generator=generator, device=self.device)
        return self.net["mean"] + self.net["log_std"].exp() * noise


def test_a_new_generator_is_one_class_and_one_registry_line(jets, tmp_path):
    from pcbench.models import registry
    from pcbench.models.jets.base import JetGenerator as Base

    assert issubclass(GaussianParticles, Base)
    registry.register(GaussianParticles)  # the one registry line
    try:
        assert registry.kind_of("gaussian-particles") == "jets" and "gaussian-particles" in MODELS
        with pytest.raises(Exception, match="--set lr=fast: expected a number"):
            model_config("gaussian-particles", "small", lr="fast")
        conf = model_config("gaussian-particles", "small", lr=0.1)
        best = train("gaussian-particles", conf, jets, TrainOptions(epochs=10, out_dir=tmp_path, val_every=2,
                                                                     progress=False), jets)
        assert best.name == "best.pt" and load_generator(best)[1]["epoch"] in (2, 4, 6, 8, 10)
        model, payload = load_generator(tmp_path / "last.pt")
        assert payload["model"] == "gaussian-particles" and payload["epoch"] == 10
        real = model.stats.normalise(torch.as_tensor(jets.particles[jets.mask], dtype=torch.float64))
        # the maximum-likelihood Gaussian of the normalised particles: their mean and width (about 0 and
        # norm_sigma = 5 by construction), which 10 epochs of Adam reach from 0 and 1
        mean, log_std = (model.net[k].detach().double() for k in ("mean", "log_std"))
        assert torch.allclose(mean, real.mean(0), atol=0.5) and torch.allclose(log_std, real.std(0).log(), atol=0.3)
        out = model.sample(50, seed=1)
        assert out.particle_features.shape == (50, 30, 4) and np.all(out.particles[~out.mask] == 0)
        res = CliRunner().invoke(cli, ["train", "--help"])
        assert res.exit_code == 0
    finally:
        del registry.GENERATORS["gaussian-particles"], MODELS["gaussian-particles"]
