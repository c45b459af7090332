"""CaloChallenge cylindrical geometries: voxel counts and order, centres, points <-> voxels."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED
from pcbench.errors import FormatError
from pcbench.geometry import CylindricalGeometry, calochallenge_geometry
from pcbench.geometry.projection import points_to_voxels, voxels_to_points


@pytest.mark.parametrize("name, voxels, layers", [("calochallenge-1-photons", 368, 5), ("calochallenge-1-pions", 533, 7),
                                                  ("calochallenge-2", 6480, 45), ("calochallenge-3", 40500, 45)])
def test_voxel_counts_as_published(name, voxels, layers):
    geo = calochallenge_geometry(name)
    assert geo.n_voxels == voxels and len(geo.relevant_layers) == layers


def test_shipped_xmls_are_the_challenges():
    for name, fname in (("calochallenge-2", "binning_dataset_2.xml"), ("calochallenge-1-pions", "binning_dataset_1_pions.xml")):
        assert CylindricalGeometry.from_xml(SHARED / "data" / "calochallenge" / fname, name) == calochallenge_geometry(name)


def test_voxel_order_is_layer_alpha_r():
    t = calochallenge_geometry("calochallenge-2").voxel_table
    layer, alpha, r = np.indices((45, 16, 9)).reshape(3, -1)
    assert np.array_equal(t["layer"], layer) and np.array_equal(t["alpha_bin"], alpha) and np.array_equal(t["r_bin"], r)
    # reshape(N, layers, alpha, r) restores the grid
    v = np.arange(6480.0)[None]
    assert v.reshape(1, 45, 16, 9)[0, 3, 5, 7] == 3 * 144 + 5 * 9 + 7


def test_voxel_centres():
    t = calochallenge_geometry("calochallenge-2").voxel_table
    assert t["r"][0] == pytest.approx(2.325) and t["alpha"][0] == pytest.approx(-np.pi + np.pi / 16)
    assert t["x"][0] == pytest.approx(2.325 * np.cos(-np.pi + np.pi / 16))
    ph = calochallenge_geometry("calochallenge-1-photons").voxel_table
    first = ph["layer"] == 0  # no alpha binning: centre at alpha = 0, so x = r, y = 0
    assert np.allclose(ph["alpha"][first], 0) and np.allclose(ph["x"][first], ph["r"][first]) and np.allclose(ph["y"][first], 0)
    assert set(np.unique(ph["layer"])) == {0, 1, 2, 3, 12}  # empty layers hold no voxels


@pytest.mark.parametrize("name", ["calochallenge-1-photons", "calochallenge-2"])
def test_voxels_points_voxels_round_trip_is_exact(name):
    geo = calochallenge_geometry(name)
    rng = np.random.default_rng(0)
    v = (rng.exponential(10.0, (7, geo.n_voxels)) * (rng.random((7, geo.n_voxels)) < 0.2)).astype(np.float32)
    v[3] = 0  # an empty shower
    points, mask = voxels_to_points(v, geo)
    assert mask.sum(1).tolist() == (v != 0).sum(1).tolist()
    back, outside = points_to_voxels(points, mask, geo)
    assert np.array_equal(back, v) and np.all(outside == 0)


def test_energy_conservation_outside_points_and_edges():
    geo = calochallenge_geometry("calochallenge-2")
    pts = np.array([[[4.65, 0.0, 0, 1.0],       # on the r edge 4.65: goes to the bin above (r bin 1)
                     [-10.0, 0.0, 0, 2.0],      # alpha = pi wraps to the first alpha bin (r bin 2)
                     [100.0, 0.0, 0, 4.0],      # beyond the last edge (41.85 mm): outside
                     [1.0, 1.0, 45, 8.0]]])     # no layer 45: outside
    mask = np.ones((1, 4), bool)
    vox, outside = points_to_voxels(pts, mask, geo)
    t = geo.voxel_table
    hit = np.flatnonzero(vox[0])
    assert outside[0] == 12.0 and vox.sum() == 3.0  # inside energy conserved, outside counted
    a = {int(t["r_bin"][i]): (int(t["alpha_bin"][i]), float(vox[0, i])) for i in hit}
    assert a[1] == (8, 1.0)  # alpha 0 lies on the edge between bins 7 and 8: the upper one
    assert a[2] == (0, 2.0)


def test_threshold_removes_exactly_the_cells_below_it():
    geo = calochallenge_geometry("calochallenge-1-photons")
    rng = np.random.default_rng(1)
    v = rng.uniform(0, 2, (3, geo.n_voxels)).astype(np.float32)
    points, mask = voxels_to_points(v, geo)
    cut, _ = points_to_voxels(points, mask, geo, threshold=1.0)
    assert np.array_equal(cut, np.where(v >= 1.0, v, 0))


def test_bad_xml_is_named(tmp_path):
    bad = tmp_path / "b.xml"
    bad.write_text("<Bins><Bin><Layer id='0' n_bin_alpha='3'/></Bin></Bins>")
    with pytest.raises(FormatError, match="b.xml: Layer"):
        CylindricalGeometry.from_xml(bad)
    with pytest.raises(FormatError, match="unknown CaloChallenge geometry"):
        calochallenge_geometry("calochallenge-4")
