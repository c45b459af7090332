"""CaloChallenge cylindrical geometries: voxel counts and order, centres, points <-> voxels."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from pcbench.errors import FormatError
from pcbench.geometry import CylindricalGeometry, LayeredGrid, calochallenge_geometry, get_geometry, project, to_points


@pytest.mark.parametrize("name, voxels, layers", [("calochallenge-1-photons", 368, 5), ("calochallenge-1-pions", 533, 7),
                                                  ("calochallenge-2", 6480, 45), ("calochallenge-3", 40500, 45)])
def test_voxel_counts_as_published(name, voxels, layers):
    geo = calochallenge_geometry(name)
    assert geo.n_voxels == voxels and len(geo.relevant_layers) == layers


#: md5 of the CaloChallenge's own binning XMLs (CaloChallenge/homepage, code/binning_dataset_*.xml), pinned here so
#: that the test needs nothing beside the clone
CHALLENGE_XML_MD5 = {"binning_dataset_1_photons.xml": "28ca73b2b1359b0d3f04228c272c4fba",
                     "binning_dataset_1_pions.xml": "6a337240128ad9ff79337a901837b2c4",
                     "binning_dataset_2.xml": "8507505f3a262ca17db6c78e425669b4",
                     "binning_dataset_3.xml": "82fa9882f7acf0c75d318c4ce9eaf7e8"}


def test_shipped_xmls_are_the_challenges():
    shipped = resources.files("pcbench.geometry") / "data"
    for fname, md5 in CHALLENGE_XML_MD5.items():
        assert hashlib.md5((shipped / fname).read_bytes()).hexdigest() == md5, fname
    for name, fname in (("calochallenge-2", "binning_dataset_2.xml"), ("calochallenge-1-pions", "binning_dataset_1_pions.xml")):
        with resources.as_file(shipped / fname) as path:
            assert CylindricalGeometry.from_xml(path, name) == calochallenge_geometry(name)


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


def test_bad_xml_is_named(tmp_path):
    bad = tmp_path / "b.xml"
    bad.write_text("<Bins><Bin><Layer id='0' n_bin_alpha='3'/></Bin></Bins>")
    with pytest.raises(FormatError, match="b.xml: Layer"):
        CylindricalGeometry.from_xml(bad)
    with pytest.raises(FormatError, match="unknown CaloChallenge geometry"):
        calochallenge_geometry("calochallenge-4")


# --- cell index: agreement with an independent implementation, edges, outside ------------------
def _reference_voxel(geo, x, y, z):
    """Per point, by a plain loop over layers: searchsorted in r, arctan2 in alpha (float64).

    x + 0.0 turns -0.0 into 0.0: pcbench's angle ignores the sign of zero (r = 0 is alpha = 0).
    """
    x, y = x + 0.0, y + 0.0
    out = np.full(len(x), -1)
    for k, lay in enumerate(geo.layers):
        sel = np.floor(z) == lay.id
        if not lay.n_voxels or not sel.any():
            continue
        r = np.sqrt(x[sel] ** 2 + y[sel] ** 2)
        rb = np.searchsorted(np.asarray(lay.r_edges), r, side="right") - 1
        ab = np.floor((np.arctan2(y[sel], x[sel]) + np.pi) / (2 * np.pi) * lay.n_alpha).astype(int) % lay.n_alpha
        out[sel] = np.where((rb >= 0) & (rb < lay.n_r), geo.layer_offsets[k] + ab * lay.n_r + rb, -1)
    return out


@pytest.mark.parametrize("name", ["calochallenge-1-photons", "calochallenge-1-pions", "calochallenge-2", "calochallenge-3"])
def test_cell_index_agrees_with_a_plain_implementation(name):
    geo = get_geometry(name)
    rng = np.random.default_rng(3)
    n = 200_000
    rmax = max(lay.r_edges[-1] for lay in geo.layers if lay.n_voxels)
    r = np.concatenate([rng.uniform(0, 1.1 * rmax, n // 2),  # plus points exactly on r edges
                        rng.choice(np.concatenate([lay.r_edges for lay in geo.layers if lay.n_voxels]), n // 2)])
    a = rng.uniform(-np.pi, np.pi, n)
    x, y = r * np.cos(a), r * np.sin(a)
    z = rng.integers(-1, len(geo.layers) + 1, n) + rng.random(n)
    assert np.array_equal(geo.cell_index(np.column_stack([x, y, z])), _reference_voxel(geo, x, y, z))


@pytest.mark.parametrize("name", ["calochallenge-2", "calochallenge-3"])
def test_cell_index_at_the_lookup_steps_and_one_ulp_around_the_r_edges(name):
    """The r lookup multiplies by the reciprocal step: radii on every multiple of the step and one
    ulp either side of it and of every r edge, where a product and a quotient can round to
    different lookup bins, still land in the bins of the plain implementation."""
    geo = get_geometry(name)
    step = float(geo._tables["step"])
    rmax = max(lay.r_edges[-1] for lay in geo.layers if lay.n_voxels)
    grid = np.arange(int(rmax / step) + 2) * step
    edges = np.unique(np.concatenate([lay.r_edges for lay in geo.layers if lay.n_voxels]))
    base = np.concatenate([grid, edges])
    r = np.concatenate([base, np.nextafter(base, 0.0), np.nextafter(base, np.inf)])
    rng = np.random.default_rng(5)
    a = rng.uniform(-np.pi, np.pi, len(r))
    x, y = r * np.cos(a), r * np.sin(a)
    x, y = np.concatenate([x, r]), np.concatenate([y, np.zeros(len(r))])  # and on the +x axis: r exactly x
    z = rng.integers(0, len(geo.layers), len(x)) + 0.5
    assert np.array_equal(geo.cell_index(np.column_stack([x, y, z])), _reference_voxel(geo, x, y, z))


def test_cylindrical_edges_and_outside():
    geo = get_geometry("calochallenge-2")
    pts = np.array([[[4.65, 0.0, 0, 1.0],       # on the r edge 4.65: goes to the bin above (r bin 1)
                     [-10.0, 0.0, 0, 2.0],      # alpha = pi wraps to the first alpha bin (r bin 2)
                     [100.0, 0.0, 0, 4.0],      # beyond the last edge (41.85 mm): outside
                     [1.0, 1.0, 45, 8.0]]])     # no layer 45: outside
    proj = project(pts, geo)
    t = geo.voxel_table
    assert proj.outside_energy[0] == 12.0 and proj.outside_points[0] == 2 and proj.cells.sum() == 3.0
    hit = np.flatnonzero(proj.cells[0])
    a = {int(t["r_bin"][i]): (int(t["alpha_bin"][i]), float(proj.cells[0, i])) for i in hit}
    assert a[1] == (8, 1.0)  # alpha 0 lies on the edge between bins 7 and 8: the upper one
    assert a[2] == (0, 2.0)


def test_ild_grid_layer_window_and_cell_edges():
    g = get_geometry("ild-ecal")
    assert g.shape == (30, 79, 79) and g.n_cells == 30 * 79 * 79 and g.cell_size == 5.0883331298828125
    f = np.asarray(g.layer_fronts)
    depth = np.array([f[0] - 0.5, f[0] + 1.0, f[0] + 1.0 + 1e-6, f[0] - 0.5 - 1e-6, f[5] + 0.3, 1.0, f[29] + 0.9])
    assert g.layer_of_depth(depth).tolist() == [0, 0, -1, -1, 5, -1, 29]
    cs = g.cell_size
    x = np.array([-200.0, -200.0 + 3 * cs, -200.0 + 3 * cs - 1e-9, -200.0 - 1e-9, -200.0 + 79 * cs])
    xyz = np.column_stack([x, np.full(5, g.layer_depths[2]), np.full(5, -160.0 + 0.5 * cs)])
    expect_i = [0, 3, 2, -1, -1]
    got = g.cell_index(xyz)
    assert [(-1 if c < 0 else (c // 79) % 79) for c in got] == expect_i  # a point on an edge goes to the cell above
    assert all(c < 0 or c // 6241 == 2 for c in got)
    # centres round-trip to their own cell
    assert np.array_equal(g.cell_index(g.cell_centres), np.arange(g.n_cells))


def test_ild_30_grid_is_30_cubed_of_ild_ecal_cells_around_the_photon_axis():
    g, full = get_geometry("ild-ecal-30"), get_geometry("ild-ecal")
    assert g.shape == (30, 30, 30) and g.layer_fronts == full.layer_fronts and g.threshold == full.threshold
    d = g.layer_depths[3]
    assert g.cell_index(np.array([[0.0, d, 40.0]])).tolist() == [3 * 900 + 15 * 30 + 15]  # the photon axis
    # every cell is ild-ecal's cell (l, i + 24, j + 24): same centre, same cell
    l, i, j = np.unravel_index(np.arange(g.n_cells), g.shape)
    assert np.array_equal(full.cell_index(g.cell_centres), np.ravel_multi_index((l, i + 24, j + 24), full.shape))
    assert np.allclose(g.cell_centres, full.cell_centres[np.ravel_multi_index((l, i + 24, j + 24), full.shape)])
    cs, lo = g.cell_size, -200.0 + 24 * g.cell_size
    edge = np.array([[lo - 1e-9, d, 40.0], [lo, d, 40.0], [lo + 30 * cs, d, 40.0]])
    assert g.cell_index(edge).tolist() == [-1, 3 * 900 + 15, -1]  # a point on an edge goes to the cell above


def test_a_grid_is_one_yaml_away(tmp_path):
    y = tmp_path / "toy.yaml"
    y.write_text("name: toy\nlayer_fronts_mm: [0, 10, 20]\ncell_size_mm: 2\nu_range_mm: [-3, 3]\n"
                 "v_range_mm: [0, 4]\nactive_thickness_mm: 0.5\ndepth_axis: z\n")
    g = get_geometry(str(y))
    assert g.shape == (3, 3, 2) and g.plane_axes == (0, 1)
    pts = np.array([[[-3.0, 0.0, 10.2, 1.0], [2.9, 3.9, 20.0, 2.0], [0.0, 0.0, 5.0, 4.0]]])
    proj = project(pts, g)
    assert proj.cells[0, 1 * 6 + 0] == 1.0 and proj.cells[0, 2 * 6 + 2 * 2 + 1] == 2.0 and proj.outside_energy[0] == 4.0
    with pytest.raises(FormatError, match="missing key 'cell_size_mm'"):
        LayeredGrid.from_dict({"name": "x", "layer_fronts_mm": [0]}, "x.yaml")


# --- projection ----------------------------------------------------------------------------------
def _ild_points(n=40, p=800, seed=0):
    g = get_geometry("ild-ecal")
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 20, (n, p))
    z = rng.normal(40, 20, (n, p))
    x[:, :5] = 250.0  # outside the region
    y = g.layer_depths[rng.integers(0, 30, (n, p))] + rng.uniform(-0.7, 0.7, (n, p))
    e = rng.exponential(0.3, (n, p))
    pts = np.stack([x, y, z, e], -1).astype(np.float32)
    pts[::7, p // 2:] = 0  # padded showers
    return g, pts


def test_projection_conserves_energy_and_dense_equals_sparse():
    g, pts = _ild_points()
    dense = project(pts, g)
    sparse = project(pts, g, output="sparse")
    inside = g.cell_index(pts[..., :3].reshape(-1, 3)).reshape(pts.shape[:2]) >= 0
    e = pts[..., 3].astype(np.float64)
    assert np.allclose(dense.cells.sum(1, dtype=np.float64), (e * inside).sum(1), rtol=1e-6)
    assert np.allclose(dense.outside_energy, (e * ~inside * (e > 0)).sum(1), rtol=1e-12)
    assert np.array_equal(dense.outside_points, (~inside & (e > 0)).sum(1))
    back = np.zeros(dense.cells.shape)
    back[sparse.hits.shower, sparse.hits.cell] = sparse.hits.energy
    assert np.array_equal(back.astype(np.float32), dense.cells)
    hits, mask = sparse.hits.padded(g)
    assert np.array_equal(mask.sum(1), (dense.cells > 0).sum(1))
    assert np.array_equal(g.cell_index(hits[mask][:, :3]), sparse.hits.cell)  # hits sit at their cells' centres


def test_threshold_removes_exactly_the_cells_below_it_and_chunks_do_not_matter():
    g, pts = _ild_points(seed=2)
    full = project(pts, g, output="sparse")
    cut = project(pts, g, output="sparse", threshold=0.5, chunk_points=997)
    keep = full.hits.energy >= 0.5
    assert np.array_equal(cut.hits.cell, full.hits.cell[keep]) and np.array_equal(cut.hits.energy, full.hits.energy[keep])
    removed = np.bincount(full.hits.shower[~keep], weights=full.hits.energy[~keep], minlength=len(pts))
    assert np.allclose(cut.below_threshold_energy, removed, rtol=1e-12)
    geo = get_geometry("calochallenge-1-photons")
    v = np.random.default_rng(1).uniform(0, 2, (3, geo.n_cells)).astype(np.float32)
    cells = project(*[to_points(v, geo)[0]], geo, threshold=1.0).cells
    assert np.array_equal(cells, np.where(v >= 1.0, v, 0))


@pytest.mark.parametrize("name", ["calochallenge-1-photons", "calochallenge-1-pions", "calochallenge-2", "calochallenge-3", "ild-ecal"])
def test_cells_points_cells_round_trip_is_exact(name):
    geo = get_geometry(name)
    rng = np.random.default_rng(0)
    v = (rng.exponential(10.0, (5, geo.n_cells)) * (rng.random((5, geo.n_cells)) < 0.05)).astype(np.float32)
    v[3] = 0  # an empty shower
    points, mask = to_points(v, geo)
    assert mask.sum(1).tolist() == (v != 0).sum(1).tolist()
    proj = project(points, geo, mask)
    assert np.array_equal(proj.cells, v) and np.all(proj.outside_energy == 0)
    spread, smask = to_points(v, geo, points_per_cell=4, placement="uniform", seed=5)
    assert smask.sum() == 4 * mask.sum()
    assert np.array_equal(geo.cell_index(spread[smask][:, :3]), np.repeat(geo.cell_index(points[mask][:, :3]), 4))
    assert np.allclose(project(spread, geo, smask).cells, v, rtol=1e-6)
    again, _ = to_points(v, geo, points_per_cell=4, placement="uniform", seed=5)
    assert np.array_equal(spread, again)  # seeded


def test_geometry_show_cli(tmp_path):
    from click.testing import CliRunner

    from pcbench.cli import cli

    res = CliRunner().invoke(cli, ["geometry", "show", "calochallenge-3", "--layer", "2", "--png", str(tmp_path / "l.png")])
    assert res.exit_code == 0, res.output
    assert "40500" in res.output and (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
    res = CliRunner().invoke(cli, ["geometry", "show", "ild-ecal"])
    assert "79 x 79 = 6241" in res.output and "[front - 0.5, front + 1.0] mm" in res.output
    res = CliRunner().invoke(cli, ["geometry", "show", "atlas"])
    assert res.exit_code == 1 and "unknown geometry 'atlas'" in res.output


def test_slots_number_entries_within_their_groups():
    from pcbench._arrays import slots

    assert slots(np.array([2, 0, 3, 1])).tolist() == [0, 1, 0, 1, 2, 0]
    assert slots(np.array([], np.int64)).tolist() == []


def test_common_binning_exists_only_where_every_layer_with_voxels_is_binned_alike():
    """Data sets 2 and 3: one (r edges, alpha) binning, images (45, 16, 9) and (45, 50, 18); data
    set 1 none; layers with the same number of r bins but other edges are not alike; an empty
    layer (no voxels) does not count."""
    from pcbench.geometry.cylindrical import CylindricalLayer

    for name, (n_alpha, n_r) in (("calochallenge-2", (16, 9)), ("calochallenge-3", (50, 18))):
        g = calochallenge_geometry(name)
        b = g.common_binning
        assert (b.n_alpha, b.n_r, len(g.relevant_layers)) == (n_alpha, n_r, 45)
        assert b.r_edges == g.layers[0].r_edges
    assert calochallenge_geometry("calochallenge-1-photons").common_binning is None
    same = CylindricalGeometry("t", (CylindricalLayer(0, (0.0, 1.0, 2.0), 4), CylindricalLayer(1, (0.0,), 1),
                                     CylindricalLayer(2, (0.0, 1.0, 2.0), 4)))
    assert same.common_binning == CylindricalLayer(-1, (0.0, 1.0, 2.0), 4) and same.relevant_layers == (0, 2)
    other = CylindricalGeometry("t", (CylindricalLayer(0, (0.0, 1.0, 2.0), 4), CylindricalLayer(1, (0.0, 1.5, 2.0), 4)))
    assert other.common_binning is None


def test_ild_ecal_30_is_a_window_of_ild_ecal_and_nothing_else_is():
    """Every ild-ecal-30 cell is an ild-ecal cell (same layers, cells 24-53 in x and z): its points
    project onto the same ild-ecal cells as cell centres; a grid shifted by half a cell, or ild-ecal
    itself inside the window, is not a window."""
    from dataclasses import replace

    small, big = get_geometry("ild-ecal-30"), get_geometry("ild-ecal")
    assert small.is_window_of(big) and big.is_window_of(big) and not big.is_window_of(small)
    half = small.cell_size / 2
    shifted = replace(small, u_range=(small.u_range[0] + half, small.u_range[1] + half))
    assert not shifted.is_window_of(big)
    assert not small.is_window_of(calochallenge_geometry("calochallenge-2"))
    ds2 = calochallenge_geometry("calochallenge-2")  # a CaloChallenge geometry is a window of itself only
    assert ds2.is_window_of(ds2) and not ds2.is_window_of(calochallenge_geometry("calochallenge-3"))
    assert not ds2.is_window_of(big)
    assert not replace(small, threshold=0.2).is_window_of(big)


def test_points_made_on_a_window_are_evaluated_on_the_references_grid(tmp_path):
    """Point showers written on ild-ecal-30 against an ild-ecal reference: the evaluation's geometry
    is ild-ecal (the window's cells are its cells); on a grid that is not a window, a one-line error."""
    from types import SimpleNamespace

    import h5py

    from pcbench.errors import IncompatibleError
    from pcbench.evaluate import shared_geometry

    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["showers"] = np.zeros((1, 2, 4), np.float32)
    ref = SimpleNamespace(attrs={"geometry": "ild-ecal"})
    assert shared_geometry(path, {"geometry": "ild-ecal-30"}, "showers", "ref.h5", ref, None) == "ild-ecal"
    with pytest.raises(IncompatibleError, match="ild-ecal-30, the reference ref.h5 on calochallenge-2"):
        shared_geometry(path, {"geometry": "ild-ecal-30"}, "showers", "ref.h5",
                        SimpleNamespace(attrs={"geometry": "calochallenge-2"}), None)
