"""The shipped registry: every data set of the brief, with the published facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcbench.data.registry import Registry, default_registry
from pcbench.errors import RegistryError

ROOT = Path(__file__).resolve().parents[1]


def test_package_copy_is_the_root_registry():
    from importlib import resources

    shipped = (resources.files("pcbench.data") / "datasets.yaml").read_text()
    assert shipped == (ROOT / "datasets.yaml").read_text()


def test_jetnet_entries_have_all_jet_types():
    reg = default_registry()
    for name, record, suffix in (("jetnet30", 6975118, ""), ("jetnet150", 6975117, "150")):
        entry = reg.get(name)
        assert [f.key for f in entry.files] == ["g", "q", "t", "w", "z"]
        assert entry.file("t").name == f"t{suffix}.hdf5"
        assert entry.file("t").url == f"https://zenodo.org/records/{record}/files/t{suffix}.hdf5"
        assert entry.split == {"convention": "jetnet", "fractions": [0.7, 0.15, 0.15], "seed": 42}
        assert entry.licence == "CC-BY-4.0"


def test_jetnet30_sizes_as_published_on_zenodo():
    """No md5 is published for JetNet; the sizes are (record 6975118), and a fetch checks them."""
    entry = default_registry().get("jetnet30")
    sizes = {f.key: f.size for f in entry.files}
    assert sizes == {"g": 87_919_040, "q": 84_658_832, "t": 88_262_768, "w": 87_879_360, "z": 87_770_240}
    assert all(f.md5 is None for f in entry.files) and entry.total_size == 436_490_240


def test_calochallenge_checksums_and_splits_as_published():
    reg = default_registry()
    ds2 = reg.get("calochallenge-2")
    assert [(f.name, f.md5, f.size, f.split) for f in ds2.files] == [
        ("dataset_2_1.hdf5", "e590333e9a2da51b258288d74bd8357a", 1356475617, "train"),
        ("dataset_2_2.hdf5", "7a56fd68aa53ded37c2ac445694d9736", 1366708391, "test"),
    ]
    assert ds2.total_size == 1356475617 + 1366708391
    ds3 = reg.get("calochallenge-3")
    assert [f.split for f in ds3.files] == ["train", "train", "test", "test"]
    assert ds3.file("4").md5 == "5e8d82e6a6c28c6914a3b602a1cfa299"
    assert reg.get("calochallenge-1-pions").file("2").md5 == "fee7457b40127bc23c8ab909e2638ca0"
    assert reg.get("calochallenge-1-photons").file("1").md5 == "005d2adeda7db034b388112661265656"


def test_ild_is_marked_manual():
    entry = default_registry().get("ild-photons")
    assert not entry.downloadable and "syncandshare.desy.de" in entry.source["landing_page"]


def test_resolve_names_and_members():
    reg = default_registry()
    entry, files = reg.resolve("jetnet30:g")
    assert entry.name == "jetnet30" and [f.key for f in files] == ["g"]
    assert len(reg.resolve("calochallenge-3")[1]) == 4
    with pytest.raises(RegistryError, match="unknown data set 'jetnet31'"):
        reg.resolve("jetnet31")
    with pytest.raises(RegistryError, match=r"no member 'x' \(members: g, q, t, w, z\)"):
        reg.resolve("jetnet30:x")


@pytest.mark.parametrize(
    "entry, message",
    [
        ("{title: t}", "missing field"),
        ("{title: t, kind: pixels, format: f, source: {}, split: {}, citation: c, licence: l, files: {}}",
         r"datasets\.bad\.kind: expected one of"),
        ("{title: t, kind: jets, format: f, source: {}, split: {}, citation: c, licence: l, "
         "files: {a: {name: a, url: u, md5: 'xyz'}}}", r"datasets\.bad\.files\.a\.md5"),
        ("{title: t, kind: jets, format: f, source: {}, split: {}, citation: c, licence: l, "
         "files: {a: {name: a, url: u, size: -3}}}", r"datasets\.bad\.files\.a\.size"),
        ("{title: t, kind: jets, format: f, source: {}, split: {}, citation: c, licence: l, "
         "files: {a: {name: a, url: u, colour: red}}}", r"unknown field\(s\) colour"),
    ],
)
def test_malformed_registry_names_file_and_field(tmp_path, entry, message):
    path = tmp_path / "reg.yaml"
    path.write_text(f"schema: 1\ndatasets:\n  bad: {entry}\n")
    with pytest.raises(RegistryError, match=message) as err:
        Registry.from_yaml(path)
    assert str(path) in str(err.value)
