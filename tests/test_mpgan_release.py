"""The MP-GAN paper's released generators: strict loading, the authors' forward pass and sampling,
the multiplicity conditioning, and FPND against real JetNet (tests/data/mpgan-release: mp_q's
G_best_epoch.pt and args.txt from rkansal47/MPGAN, MIT licence, see LICENSE there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pcbench.cli import cli
from pcbench.data import Cache, read
from pcbench.data.simulate.jets import JetSimConfig, simulate_jet_chunk
from pcbench.errors import PcbenchError
from pcbench.metrics.fpnd import fpnd
from pcbench.models.jets.mpgan_release import (FEATURE_MAXES, generate_jets, jetnet30_multiplicities, load_release,
                                          resolve_release)

DATA = Path(__file__).parent / "data" / "mpgan-release"
MP_Q_MD5 = "465c4e47063ffffd3255163bcad38a8e"  # spec: published-generators.md


@pytest.fixture(scope="module")
def mp_q():
    return load_release(DATA / "mp_q")


@pytest.fixture(scope="module")
def mp_q_jets(mp_q):
    return generate_jets(mp_q, 1000, seed=5)


def test_mp_q_fetched_through_a_local_mirror_loads_strictly_and_samples_deterministically(tmp_path, file_server):
    for name in ("G_best_epoch.pt", "args.txt"):
        file_server.files[f"/mirror/mp_q/{name}"] = (DATA / "mp_q" / name).read_bytes()
    folder, source = resolve_release("mpgan-release:mp_q", Cache(tmp_path / "cache"), file_server.url + "/mirror")
    assert source == file_server.url + "/mirror/mp_q/G_best_epoch.pt"
    gen = load_release(folder, source)
    assert gen.md5 == MP_Q_MD5 and gen.family == "mp" and gen.conditioned and gen.jet_type == "q"
    state = torch.load(DATA / "mp_q" / "G_best_epoch.pt", map_location="cpu", weights_only=True)
    own = gen.network.state_dict()
    assert set(own) == set(state) and all(torch.equal(own[k], state[k]) for k in state)
    a, ma = generate_jets(gen, 40, seed=11)
    b, mb = generate_jets(gen, 40, seed=11)
    c, _ = generate_jets(gen, 40, seed=12)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and not np.array_equal(a, c)
    # gen.py's ranges: |etarel| <= max0, |phirel| <= max1, 0 <= ptrel <= 2 max2 (tanh outputs), masked slots zero
    mx = FEATURE_MAXES["q"]
    assert np.abs(a[..., 0]).max() <= mx[0] + 1e-6 and np.abs(a[..., 1]).max() <= mx[1] + 1e-6
    assert a[..., 2].min() >= 0 and a[..., 2].max() <= 2 * mx[2] + 1e-6
    assert np.all(a[~ma] == 0)


def _reference_mp_forward(state: dict[str, torch.Tensor], x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's generator written out edge by edge from the raw state dict (independent check)."""

    def mlp(prefix: str, v: torch.Tensor, last_linear: bool) -> torch.Tensor:
        k = 0
        while f"{prefix}.{k}.weight" in state:
            v = v @ state[f"{prefix}.{k}.weight"].T + state[f"{prefix}.{k}.bias"]
            if not (last_linear and f"{prefix}.{k + 1}.weight" not in state):
                v = torch.where(v > 0, v, 0.2 * v)
            k += 1
        return v

    for layer in range(2):
        new = []
        for i in range(x.shape[0]):
            msgs = [mask[j] * mlp(f"mp_layers.{layer}.fe.net", torch.cat([x[i], x[j]]), False) for j in range(x.shape[0])]
            new.append(mlp(f"mp_layers.{layer}.fn.net", torch.cat([sum(msgs), x[i]]), True))
        x = torch.stack(new)
    return torch.tanh(x)


def test_mp_forward_matches_an_edge_by_edge_reference_and_the_kept_node_form(mp_q):
    state = torch.load(DATA / "mp_q" / "G_best_epoch.pt", map_location="cpu", weights_only=True)
    net = mp_q.network
    z = net.noise(2, torch.Generator().manual_seed(0))
    counts = torch.tensor([7, 30])
    with torch.inference_mode():
        out, mask = net.forward_padded(z, counts)
        assert mask.sum(1).tolist() == [7, 30]
        # the kept slots are those with the smallest first noise feature
        assert set(torch.argsort(z[0, :, 0])[:7].tolist()) == set(torch.nonzero(mask[0]).flatten().tolist())
        for b in range(2):
            ref = _reference_mp_forward(state, z[b], mask[b].float())
            torch.testing.assert_close(out[b][mask[b]], ref[mask[b]], rtol=1e-4, atol=1e-5)
        kept = net(z[:1], 7)
        torch.testing.assert_close(kept[0], out[0][mask[0]], rtol=1e-4, atol=1e-5)


def test_a_state_dict_with_a_wrong_key_is_refused_naming_the_key(tmp_path):
    args = {"name": "tiny", "model": "rgan", "jets": "q", "latent_dim": 4, "rgang_fc": [5], "num_hits": 2,
            "node_feat_size": 3}
    (tmp_path / "args.txt").write_text(repr(args))
    state = {"model.0.weight": torch.zeros(5, 4), "model.0.bias": torch.zeros(5),
             "model.2.weigth": torch.zeros(6, 5), "model.2.bias": torch.zeros(6)}
    torch.save(state, tmp_path / "G_best_epoch.pt")
    with pytest.raises(PcbenchError, match=r"unexpected key 'model\.2\.weigth'.*missing key 'model\.2\.weight'") as err:
        load_release(tmp_path)
    assert "\n" not in str(err.value)
    res = CliRunner().invoke(cli, ["sample", str(tmp_path), "-n", "3", "-o", str(tmp_path / "x.h5")])
    assert res.exit_code != 0 and "model.2.weigth" in res.output and "Traceback" not in res.output
    state["model.2.weight"] = state.pop("model.2.weigth")[:, :4]  # right name, wrong shape
    torch.save(state, tmp_path / "G_best_epoch.pt")
    with pytest.raises(PcbenchError, match=r"'model\.2\.weight' has shape \(6, 4\).*expects \(6, 5\)"):
        load_release(tmp_path)


def test_multiplicity_conditioning_reproduces_the_real_multiplicity_histogram(mp_q, mp_q_jets):
    _, mask = mp_q_jets
    real = jetnet30_multiplicities("q")
    assert len(real) == 119_475 and real.min() >= 1 and real.max() <= 30  # spec: 70 % of JetNet30 q
    gen_counts = np.bincount(mask.sum(1), minlength=31) / len(mask)
    real_frac = np.bincount(real, minlength=31) / len(real)
    sigma = np.sqrt(real_frac * (1 - real_frac) / len(mask))
    assert np.all(np.abs(gen_counts - real_frac) <= 5 * sigma + 1e-12)
    given = np.array([1, 5, 17, 30])
    _, m = generate_jets(mp_q, 4, seed=0, multiplicities=given)
    assert m.sum(1).tolist() == given.tolist()


def test_fpnd_of_mp_q_is_far_below_that_of_offline_q_jets(mp_q_jets):
    particles, _ = mp_q_jets
    sim = simulate_jet_chunk(JetSimConfig("q"), seed=7, n=300)["particle_features"][..., :3]
    # same number of jets on both sides (FPND's finite-sample bias grows as N falls)
    mp, offline = fpnd(particles[:300], "q"), fpnd(sim, "q")
    assert mp < 2 and offline > 20 * mp


def test_cli_samples_a_weights_folder_into_a_valid_file_with_its_md5(tmp_path):
    out = tmp_path / "mp_q.h5"
    res = CliRunner().invoke(cli, ["sample", str(DATA / "mp_q"), "-n", "20", "--seed", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    jets = read(out)
    assert jets.attrs["weights_md5"] == MP_Q_MD5 and jets.attrs["seed"] == 2
    assert len(jets) == 20 and np.all(jets.particles[~jets.mask] == 0)
    assert np.all(np.diff(jets.particles[..., 2], axis=1) <= 0)  # sorted by ptrel


def test_registry_pins_the_released_files_with_the_specs_md5s():
    from pcbench.data.registry import default_registry

    entry, files = default_registry().resolve("mpgan-release:mplfc_t")
    assert entry.kind == "generator-weights" and [f.name for f in files] == ["mplfc_t/G_best_epoch.pt", "mplfc_t/args.txt"]
    assert files[0].md5 == "c2d0e20bf0b6b01f1955a5fd1d56bdb6"  # spec: published-generators.md
    assert files[0].url.startswith("https://github.com/rkansal47/MPGAN/raw/a1da9a1a53a492f81b48bebc0dc0a3da3f6b2ee0/")
    spec = {"fcpnet_g": "8d4291cecb8f1265cf5ae0d08be06e36", "graphcnnpnet_q": "3d358792115da7b64de2d84b380a4829",
            "mp_t": "5b8114765100010d6818165e66efd4a2", "mplfc_g": "5d1d025ac7499e0f579710d1fdd2d4b8"}
    assert {k: entry.file(k).md5 for k in spec} == spec


def test_the_papers_table_ships_as_labelled_published_rows():
    from pcbench.leaderboard import read_published

    rows = read_published()
    mpgan = {b: {r.model: r.values for r in rows[b] if "2106.11535" in r.source} for b in ("jetnet30:g", "jetnet30:q", "jetnet30:t")}
    assert [len(v) for v in mpgan.values()] == [13, 13, 13]
    assert mpgan["jetnet30:g"]["FC gen + FC disc"]["w1m"] == (18.3, 0.2)
    assert mpgan["jetnet30:q"]["MP-LFC gen + MP disc"]["fpnd"] == (0.08, None)
    assert mpgan["jetnet30:t"]["GraphCNN gen + PointNet disc"]["fpnd"] == (30000.0, None)  # printed "30k"
    assert mpgan["jetnet30:q"]["GraphCNN gen + PointNet disc"]["w1efp"] == (50000.0, 100000.0)
    res = CliRunner().invoke(cli, ["published", "jetnet30:q"], terminal_width=250)
    assert res.exit_code == 0 and "MP gen + MP disc (MPGAN)" in res.output and "0.35" in res.output
