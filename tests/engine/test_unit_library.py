"""The unit library's files: names that differ only in punctuation never share one, old files still load."""

from __future__ import annotations

import hashlib

import pytest

from engine import unit_library
from engine.errors import ProjectError
from engine.graph import UNIT_TYPE, Graph
from engine.project import Project, save_project
from engine.unit_library import library_units, load_unit, save_unit, unit_file
from engine.units import UnitDef, group, same_network
from tests.engine.helpers import chain, image_input

#: names a file name cannot tell apart: each pair differs only in punctuation or spacing
COLLIDING = [("Block-A", "Block_A"), ("Block_A", "Block A"), ("Block A", "Block-A"), ("Res & Block", "Res Block"),
             ("a.b", "a b"), ("conv/3x3", "conv:3x3")]


def make_unit(name: str, filters: int) -> UnitDef:
    """A unit ``name`` of a convolution with ``filters`` filters and a ReLU: a content of its own."""
    g = Graph()
    ids = chain(g, image_input(g, 3, 8), ("Conv2d", {"filters": filters}), "ReLU", "Flatten")
    grouped, uid = group(g, ids[:2], name)
    return grouped.nodes[uid].unit


def filters_of(unit: UnitDef) -> int:
    (conv,) = [n for n in unit.graph.nodes.values() if n.type == "Conv2d"]
    return conv.params["filters"]


def old_style_file(folder, name: str, unit: UnitDef):
    """A library file as earlier versions wrote it: ``<name with punctuation as _>.json``, no hash."""
    graph = Graph()
    graph.define_unit(unit)
    graph.add_node(UNIT_TYPE, {"unit": unit.name})
    path = folder / f"{name}.json"
    save_project(Project(name=unit.name, graph=graph), path)
    return path


@pytest.mark.parametrize("first,second", COLLIDING)
def test_names_differing_only_in_punctuation_get_files_of_their_own(tmp_path, first, second):
    a, b = make_unit(first, 4), make_unit(second, 8)
    path_a = save_unit(tmp_path, a)
    path_b = save_unit(tmp_path, b)
    assert path_a != path_b
    assert library_units(tmp_path) == sorted([(first, path_a), (second, path_b)], key=lambda t: t[0].lower())
    assert filters_of(load_unit(path_a)) == 4 and filters_of(load_unit(path_b)) == 8
    assert same_network(load_unit(path_a), a) and same_network(load_unit(path_b), b)


@pytest.mark.parametrize("first,second", COLLIDING)
def test_saving_a_unit_again_replaces_its_own_file_only(tmp_path, first, second):
    save_unit(tmp_path, make_unit(first, 4))
    path_b = save_unit(tmp_path, make_unit(second, 8))
    again = save_unit(tmp_path, make_unit(second, 16))
    assert again == path_b and len(list(tmp_path.glob("*.json"))) == 2
    units = {name: filters_of(load_unit(path)) for name, path in library_units(tmp_path)}
    assert units == {first: 4, second: 16}


def test_a_plain_name_keeps_a_plain_file_name(tmp_path):
    assert save_unit(tmp_path, make_unit("BasicBlock", 4)).name == "BasicBlock.json"
    assert save_unit(tmp_path, make_unit("Res & Block", 4)).name == "Res_Block.json"


def test_a_file_of_an_earlier_version_loads_and_is_the_one_saved_again(tmp_path):
    old = old_style_file(tmp_path, "Block_A", make_unit("Block A", 4))  # how "Block A" used to be kept
    assert library_units(tmp_path) == [("Block A", old)]
    assert filters_of(load_unit(old)) == 4
    # its own name goes back to its old file; the name that file's name also fits gets another
    assert save_unit(tmp_path, make_unit("Block A", 8)) == old
    other = save_unit(tmp_path, make_unit("Block_A", 16))
    assert other != old and other.name.startswith("Block_A~")
    units = {name: filters_of(load_unit(path)) for name, path in library_units(tmp_path)}
    assert units == {"Block A": 8, "Block_A": 16}


def test_a_file_that_cannot_be_read_is_never_written_over(tmp_path):
    damaged = tmp_path / "Block_A.json"
    damaged.write_text("{ not json")
    path = save_unit(tmp_path, make_unit("Block_A", 4))
    assert path != damaged and damaged.read_text() == "{ not json"
    assert library_units(tmp_path) == [("Block_A", path)]


def test_the_hashed_name_is_stable_and_never_another_units_plain_one(tmp_path):
    save_unit(tmp_path, make_unit("Block_A", 4))
    digest = hashlib.sha256(b"Block A").hexdigest()[:8]
    assert unit_file(tmp_path, "Block A").name == f"Block_A~{digest}.json"
    hashed = save_unit(tmp_path, make_unit("Block A", 8))
    # a unit named like that file keeps a plain name of its own: "~" is never kept in one
    look_alike = save_unit(tmp_path, make_unit(hashed.stem, 16))
    assert look_alike.name == f"Block_A_{digest}.json"
    units = {name: filters_of(load_unit(path)) for name, path in library_units(tmp_path)}
    assert units == {"Block_A": 4, "Block A": 8, hashed.stem: 16}


def test_two_names_with_one_hash_are_refused_naming_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(unit_library, "_digest", lambda name: "00000000")  # NOTE: a hash clash, made to happen
    save_unit(tmp_path, make_unit("Block_A", 4))
    save_unit(tmp_path, make_unit("Block A", 8))
    with pytest.raises(ProjectError, match=r"unit 'Block&A' was not saved: Block_A\.json and Block_A~00000000\.json"):
        save_unit(tmp_path, make_unit("Block&A", 16))
    units = {name: filters_of(load_unit(path)) for name, path in library_units(tmp_path)}
    assert units == {"Block_A": 4, "Block A": 8}
