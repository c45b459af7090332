"""Containers, layouts, the JetNet split, loaders and `pcbench validate` on good and bad files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from factories import calochallenge_arrays, ild_arrays, jetnet_arrays, write_h5
from pcbench.cli import cli
from pcbench.data import JetSet, ShowerPointSet, VoxelShowerSet, read, validate_file, write
from pcbench.data.loaders import split_bounds, split_indices
from pcbench.errors import FormatError


def test_split_bounds_match_jetnet_cuts():
    assert [split_bounds(100, s) for s in ("train", "valid", "test", "all")] == [(0, 70), (70, 85), (85, 100), (0, 100)]
    # floor of the cumulative fractions, as jetnet: 0.7 * 7 = 4.9 -> 4, 0.85 * 7 = 5.95 -> 5
    assert [split_bounds(7, s) for s in ("train", "valid", "test")] == [(0, 4), (4, 5), (5, 7)]


def test_split_indices_are_a_seeded_partition():
    parts = [split_indices(1000, s) for s in ("train", "valid", "test")]
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    np.testing.assert_array_equal(parts[2], np.random.default_rng(42).permutation(1000)[850:])


def test_jetnet_file_reads_as_jetset_and_round_trips(tmp_path):
    pf, jf = jetnet_arrays(40, seed=1)
    src = write_h5(tmp_path / "g.hdf5", particle_features=pf, jet_features=jf)
    jets = read(src)
    assert isinstance(jets, JetSet) and len(jets) == 40 and jets.num_particles == 30
    assert (jets.jet_type == 0).all()  # 'g' from the JetNet file name
    np.testing.assert_array_equal(jets.particle_features, pf)
    out = write(tmp_path / "copy.h5", jets, {"generator": "test"})
    again = read(out)
    np.testing.assert_array_equal(again.particle_features, pf)
    np.testing.assert_array_equal(again.jets, jf)
    assert again.attrs["generator"] == "test" and again.attrs["pcbench_schema"] == 1
    assert again.attrs["jet_type"] == "g"


def test_calochallenge_file_reads_as_voxels(tmp_path):
    inc, showers = calochallenge_arrays(12, 368)
    data = read(write_h5(tmp_path / "dataset_1_photons_1.hdf5", incident_energies=inc, showers=showers))
    assert isinstance(data, VoxelShowerSet) and data.num_voxels == 368
    np.testing.assert_array_equal(data.incident_energy, inc[:, 0])
    back = read(write(tmp_path / "v.h5", data))
    np.testing.assert_array_equal(back.voxels, showers)


def test_ild_layout_converts_units_and_alignment(tmp_path):
    ev, energy = ild_arrays(6, 40)
    ev[0, 0, 0] = 5.0  # a padding slot (E = 0) with a stray x: the reference code zeroes it
    data = read(write_h5(tmp_path / "ild.h5", events=ev, energy=energy))
    assert isinstance(data, ShowerPointSet) and data.attrs["y_unit"] == "mm"
    np.testing.assert_allclose(data.incident_energy, energy[:, 0] * 1000, rtol=1e-6)
    np.testing.assert_allclose(data.points[..., 3].sum(1), ev[:, 3].sum(1) * 1000, rtol=1e-5)
    # real points moved to the front; layer units became the Si slab centre depth [mm]
    k = (ev[0, 3] > 0).sum()
    assert data.mask[0, :k].all() and not data.mask[0, k:].any() and data.points[0, k:].max() == 0
    layer0 = ev[0, 1][ev[0, 3] > 0]
    from pcbench.geometry import get_geometry
    np.testing.assert_array_equal(data.points[0, :k, 1], get_geometry("ild-ecal").layer_depths[layer0.astype(int)].astype(np.float32))
    # a file that stores y in mm (the CaloClouds evaluation files) is read as it is
    ev_mm = ev.copy()
    ev_mm[:, 1] = np.where(ev[:, 3] > 0, 1811.5 + ev[:, 1] * 6, 0)
    mm = read(write_h5(tmp_path / "mm.h5", events=ev_mm, energy=energy))
    np.testing.assert_array_equal(np.sort(mm.points[0, :k, 1]), np.sort(ev_mm[0, 1][ev[0, 3] > 0]))


def test_pcbench_points_round_trip(tmp_path):
    pts = np.zeros((3, 5, 4), np.float32)
    pts[:, :2] = [[1.0, 1820.0, -3.0, 0.5], [2.0, 1830.0, 4.0, 1.5]]
    data = ShowerPointSet(pts, pts[..., 3] > 0, np.array([1e4, 2e4, 3e4], np.float32))
    back = read(write(tmp_path / "p.h5", data))
    np.testing.assert_array_equal(back.points, pts)
    assert back.attrs["pcbench_kind"] == "point-showers"


def test_showers_written_in_parts_equal_one_write(tmp_path):
    """write_showers streams parts (one in memory at a time) into the file ``write`` would make."""
    from pcbench.data.formats import write_showers

    from pcbench.geometry import get_geometry

    d = get_geometry("ild-ecal").layer_depths
    pts = np.zeros((5, 4, 4), np.float32)
    pts[:, :3] = [[1.0, d[0], -3.0, 0.5], [2.0, d[3], 4.0, 1.5], [0.0, d[7], 1.0, 0.25]]
    pts[1, 2] = 0.0
    data = ShowerPointSet(pts, pts[..., 3] > 0, np.arange(1, 6, dtype=np.float32) * 1e4)
    for layout in (None, "ild"):
        whole = read(write(tmp_path / f"whole_{layout}.h5", data, {"model": "m"}, layout=layout))
        parts = read(write_showers(tmp_path / f"parts_{layout}.h5", [data.subset(slice(0, 2)), data.subset(slice(2, 5))],
                                   {"model": "m"}, layout=layout))
        assert np.array_equal(parts.points, whole.points) and np.array_equal(parts.mask, whole.mask)
        assert np.array_equal(parts.incident_energy, whole.incident_energy) and parts.attrs["model"] == "m"
    vox = VoxelShowerSet(np.arange(12, dtype=np.float32).reshape(3, 4), np.ones(3, np.float32) * 5e3, "g")
    back = read(write_showers(tmp_path / "v.h5", (vox.subset(slice(i, i + 1)) for i in range(3))))
    assert np.array_equal(back.voxels, vox.voxels) and back.geometry == "g"
    narrow = data.subset(slice(0, 1))
    narrow = ShowerPointSet(narrow.points[:, :3], narrow.mask[:, :3], narrow.incident_energy)
    with pytest.raises(FormatError, match="bad.h5: part of point-showers with points rows"):
        write_showers(tmp_path / "bad.h5", [data, narrow])
    with pytest.raises(FormatError, match="no showers"):
        write_showers(tmp_path / "empty.h5", [])
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "empty.h5").exists()  # nothing half-written


def test_write_is_atomic_on_failure(tmp_path):
    pf, jf = jetnet_arrays(5)
    good = write(tmp_path / "s.h5", JetSet.from_jetnet(pf, jf, "q"))
    before = good.read_bytes()
    with pytest.raises(TypeError):
        write(good, JetSet.from_jetnet(pf, jf, "q"), {"bad": object()})
    assert good.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]


def _corrupt_jets(kind: str, pf: np.ndarray, jf: np.ndarray) -> dict[str, np.ndarray]:
    pf, jf = pf.copy(), jf.copy()
    if kind == "nan":
        pf[3, 0, 0] = np.nan
    elif kind == "inf":
        jf[4, 2] = np.inf
    elif kind == "mask":
        pf[2, -1, 0] = 0.3  # a padded slot with a feature
    elif kind == "ptrel":
        pf[1, 0, 2] = 1.7
    elif kind == "count":
        jf[0, 3] += 1
    elif kind == "shape":
        pf = pf[..., :3]
    return {"particle_features": pf, "jet_features": jf}


@pytest.mark.parametrize("kind, field, text", [
    ("nan", "particle_features", "NaN or inf in 1 entries, first at row 3"),
    ("inf", "jet_features", "NaN or inf in 1 entries, first at row 4"),
    ("mask", "particle_features[mask]", "mask disagrees with zero-padding"),
    ("ptrel", "particle_features[ptrel]", "pT fraction outside [0, 1]"),
    ("count", "jet_features[num_particles]", "first at row 0"),
    ("shape", "particle_features", "expected (N, P, 4)"),
])
def test_validate_names_each_jet_problem(tmp_path, kind, field, text):
    pf, jf = jetnet_arrays(20, p=30, seed=2)
    pf[2, -1] = 0  # make sure jet 2 has a padded last slot
    jf[2, 3] = min(jf[2, 3], (pf[2, :, 3] > 0).sum())
    path = write_h5(tmp_path / "bad.h5", **_corrupt_jets(kind, pf, jf))
    report = validate_file(path)
    assert not report.ok
    assert any(p.field == field and text in p.message for p in report.problems), report.lines()
    assert all(line.startswith(str(path)) for line in report.lines())
    with pytest.raises(FormatError, match="invalid JetSet"):
        read(path)


def test_validate_good_files_of_every_layout(tmp_path):
    pf, jf = jetnet_arrays(30)
    inc, showers = calochallenge_arrays(10, 50)
    ev, energy = ild_arrays(4)
    files = {
        "jetnet": write_h5(tmp_path / "j.h5", particle_features=pf, jet_features=jf),
        "calochallenge": write_h5(tmp_path / "c.h5", incident_energies=inc, showers=showers),
        "ild": write_h5(tmp_path / "i.h5", events=ev, energy=energy),
    }
    for layout, path in files.items():
        report = validate_file(path, chunk_rows=3)  # several chunks
        assert report.ok and report.layout == layout, report.lines()
    res = CliRunner().invoke(cli, ["validate", *map(str, files.values())])
    assert res.exit_code == 0 and res.output.count("valid /") == 3 and "invalid" not in res.output


@pytest.mark.parametrize("mutate, field, text", [
    (lambda inc, s: (inc, -s), "showers", "negative voxel energies"),
    (lambda inc, s: (inc * 0, s), "incident_energies", "incident energy <= 0 MeV"),
    (lambda inc, s: (inc[:, 0], s), "incident_energies", "expected (N, 1)"),
    (lambda inc, s: (inc, s.astype("S8")), "showers", "expected a numeric"),
])
def test_validate_voxel_problems(tmp_path, mutate, field, text):
    inc, showers = calochallenge_arrays(8, 20)
    showers[0, 0] = 1.0
    inc2, showers2 = mutate(inc, showers)
    report = validate_file(write_h5(tmp_path / "v.h5", incident_energies=inc2, showers=showers2))
    assert any(p.field == field and text in p.message for p in report.problems), report.lines()


def test_validate_voxel_count_against_geometry(tmp_path):
    inc, showers = calochallenge_arrays(4, 367)
    report = validate_file(write_h5(tmp_path / "v.h5", incident_energies=inc, showers=showers), num_voxels=368)
    assert [str(p) for p in report.problems] == ["showers: shape (4, 367), expected (4, 368)"]


def test_validate_structure_problems(tmp_path):
    pf, jf = jetnet_arrays(10)
    cases = {
        "missing": write_h5(tmp_path / "m.h5", particle_features=pf),
        "unknown": write_h5(tmp_path / "u.h5", foo=pf),
        "rows": write_h5(tmp_path / "r.h5", particle_features=pf, jet_features=jf[:7]),
    }
    (tmp_path / "t.h5").write_text("not hdf5")
    cases["text"] = tmp_path / "t.h5"
    expected = {
        "missing": "missing dataset(s) jet_features",
        "unknown": "unknown layout: datasets ['foo']",
        "rows": "7 rows, expected 10",
        "text": "not a readable HDF5 file",
    }
    for name, path in cases.items():
        report = validate_file(path)
        assert len(report.problems) == 1 and expected[name] in report.problems[0].message, (name, report.lines())
    res = CliRunner().invoke(cli, ["validate", str(cases["missing"]), str(tmp_path / "absent.h5")])
    assert res.exit_code == 1 and "missing dataset(s) jet_features" in res.output and "absent.h5" in res.output


def test_point_shower_problems(tmp_path):
    pts = np.zeros((2, 4, 4), np.float32)
    pts[:, 0] = [0, 1820, 0, 1.0]
    pts[1, 1] = [3, 1820, 1, -0.2]
    report = validate_file(write_h5(tmp_path / "p.h5", points=pts, incident_energies=np.ones((2, 1)) * 1e4))
    msgs = [str(p) for p in report.problems]
    assert any("points[E]: negative point energies in 1 entries, first at row 1" == m for m in msgs), msgs
    assert any("mask disagrees with zero-padding" in m for m in msgs), msgs


def test_chunked_validation_reports_global_rows(tmp_path):
    pf, jf = jetnet_arrays(25)
    pf[23, 0, 0] = np.nan
    report = validate_file(write_h5(tmp_path / "j.h5", particle_features=pf, jet_features=jf), chunk_rows=10)
    assert [str(p) for p in report.problems] == ["particle_features: NaN or inf in 1 entries, first at row 23"]


def test_h5_attrs_json_round_trip(tmp_path):
    pf, jf = jetnet_arrays(5)
    path = write(tmp_path / "a.h5", JetSet.from_jetnet(pf, jf, "t"), {"settings": {"seed": 1, "pthat": [0.9, 1.3]}})
    with h5py.File(path) as f:
        assert f.attrs["pcbench_kind"] == "jets"
    assert read(path).attrs["settings"] == {"pthat": [0.9, 1.3], "seed": 1}
