"""Where each object and each of its keys was written: packed in one small Meta per object, exact when read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from veza_schema.model import Deprecation, Meta, SourcePos, Waiver
from veza_schema.yaml import load_cache
from veza_schema.yaml.loader import load_schema

COLUMN = "      {name}: {{type: text, nullable: true, default: \"'x'\"}}\n"


def write_module(directory: Path, *, filler_lines: int = 0, indent: int = 0) -> Path:
    """One table with a column whose keys' values start at known places."""
    directory.mkdir(parents=True, exist_ok=True)
    text = "#\n" * filler_lines + "module: m\ntables:\n  notes:\n    columns:\n"
    text += "      id: {type: uuid, primary_key: true, default: gen_random_uuid()}\n"
    text += "      body: {type: text," + " " * indent + " default: \"'x'\"}\n"
    (directory / "m.yaml").write_text(text)
    return directory


def body_meta(directory: Path) -> Meta:
    column = load_schema(directory).tables["notes"].column("body")
    assert column is not None
    return column.meta


def test_a_column_says_where_it_and_each_of_its_keys_were_written(tmp_path: Path) -> None:
    meta = body_meta(write_module(tmp_path / "schema"))
    file = str(tmp_path / "schema" / "m.yaml")
    assert meta.pos == SourcePos(file, 6, 7)
    assert meta.at("type") == SourcePos(file, 6, 20)
    assert meta.at("default") == SourcePos(file, 6, 35)
    assert meta.at("comment") == meta.pos  # a key not written: the object's own position
    assert dict(meta.key_pos) == {"type": SourcePos(file, 6, 20), "default": SourcePos(file, 6, 35)}


@pytest.mark.parametrize(("filler_lines", "indent"), [(70_000, 0), (0, 300), (70_000, 300)],
                         ids=["line beyond two bytes", "column beyond one byte", "both"])
def test_lines_and_columns_of_any_size_stay_exact(filler_lines: int, indent: int, tmp_path: Path) -> None:
    meta = body_meta(write_module(tmp_path / "schema", filler_lines=filler_lines, indent=indent))
    file = str(tmp_path / "schema" / "m.yaml")
    assert meta.pos == SourcePos(file, filler_lines + 6, 7)
    assert meta.at("default") == SourcePos(file, filler_lines + 6, 35 + indent)


def test_a_warm_load_gives_the_same_wide_positions(tmp_path: Path) -> None:
    schema = write_module(tmp_path / "schema", filler_lines=70_000, indent=300)
    cold = body_meta(schema)
    cache = load_cache.enable(tmp_path / "cache")
    assert cache is not None
    try:
        body_meta(schema)
        warm = body_meta(schema)
    finally:
        load_cache.disable()
    assert cache.hits == 1
    assert (warm.pos, dict(warm.key_pos)) == (cold.pos, dict(cold.key_pos))


def test_a_located_column_meta_is_one_small_object(tmp_path: Path) -> None:
    meta = body_meta(write_module(tmp_path / "schema"))
    assert sys.getsizeof(meta) <= 80  # a Meta, a SourcePos, a key map and its bytes took ~290 bytes


def test_metas_are_equal_when_their_positions_and_notes_are() -> None:
    here, there = SourcePos("a.yaml", 3, 5), SourcePos("a.yaml", 3, 9)
    assert Meta(here, key_pos={"type": there}) == Meta(here, key_pos={"type": there})
    assert Meta(here, key_pos={"type": there}) != Meta(there, key_pos={"type": there})
    assert Meta(here) != Meta(here, rfc="RFC-1")
    assert Meta(here) != bytes(Meta(here))  # its bytes are not its value
    assert hash(Meta(here, rfc="RFC-1")) == hash(Meta(here, rfc="RFC-1"))
    assert Meta() == Meta(None, (), None, None, None, {})


def test_notes_are_kept_per_object() -> None:
    waiver = Waiver("NAM001", "legacy name", SourcePos("a.yaml", 4, 7))
    deprecation = Deprecation("2026-01-01", rfc="RFC-2")
    meta = Meta(SourcePos("a.yaml", 3, 5), (waiver,), "RFC-1", deprecation, "old_name")
    plain = Meta(SourcePos("a.yaml", 3, 5))
    assert (meta.waivers, meta.rfc, meta.deprecated, meta.renamed_from) == ((waiver,), "RFC-1", deprecation,
                                                                            "old_name")
    assert meta.waivers[0].pos == SourcePos("a.yaml", 4, 7)
    assert (plain.waivers, plain.rfc, plain.deprecated, plain.renamed_from) == ((), None, None, None)


def test_loading_a_file_again_makes_no_new_position_layout(tmp_path: Path) -> None:
    from veza_schema import model

    (tmp_path / "m.yaml").write_text(
        "module: m\ntables:\n  notes:\n    rfc: RFC-7\n    waive: {IMM002: legacy}\n"
        "    columns:\n      id: {type: uuid, primary_key: true, default: gen_random_uuid()}\n")
    first = load_schema(tmp_path)
    layouts = len(model._LAYOUTS)
    again = load_schema(tmp_path)
    assert len(model._LAYOUTS) == layouts
    assert again.tables["notes"].meta.rfc == first.tables["notes"].meta.rfc == "RFC-7"


def test_waivers_equal_but_for_their_position_keep_their_own_positions() -> None:
    one = Meta(SourcePos("a.yaml", 3, 5), (Waiver("NAM001", "legacy", SourcePos("a.yaml", 4, 7)),))
    two = Meta(SourcePos("a.yaml", 3, 5), (Waiver("NAM001", "legacy", SourcePos("a.yaml", 9, 7)),))
    assert (one.waivers[0].pos, two.waivers[0].pos) == (SourcePos("a.yaml", 4, 7), SourcePos("a.yaml", 9, 7))


def test_replace_changes_only_what_it_is_given() -> None:
    here, there = SourcePos("a.yaml", 3, 5), SourcePos("a.yaml", 3, 9)
    meta = Meta(here, rfc="RFC-1", key_pos={"references": there})
    deprecated = meta.replace(deprecated=Deprecation("2026-01-01"))
    moved = meta.replace(pos=there)
    assert (deprecated.pos, deprecated.rfc, dict(deprecated.key_pos)) == (here, "RFC-1", {"references": there})
    assert deprecated.deprecated == Deprecation("2026-01-01")
    assert (moved.pos, moved.rfc, moved.at("references")) == (there, "RFC-1", there)
    with pytest.raises(TypeError, match="no field"):
        meta.replace(position=here)


def test_positions_of_one_object_in_two_files_are_refused() -> None:
    with pytest.raises(ValueError, match="several files"):
        Meta(SourcePos("a.yaml", 1, 1), key_pos={"type": SourcePos("b.yaml", 1, 1)})


def test_a_meta_shows_what_it_holds() -> None:
    meta = Meta(SourcePos("a.yaml", 3, 5), rfc="RFC-1")
    assert repr(meta) == str(meta) == ("Meta(pos=SourcePos(file='a.yaml', line=3, column=5), rfc='RFC-1')")
    assert bool(Meta())


def test_a_meta_pickled_or_copied_keeps_its_positions_and_notes(tmp_path: Path) -> None:
    """Pickle and copy go by value: the packed bytes start with a layout number local to this process."""
    import copy
    import pickle

    file = str(tmp_path / "m.yaml")
    meta = Meta(SourcePos(file, 3, 5), (Waiver("NAM001", "legacy", SourcePos(file, 4, 9)),), "RFC-7",
                Deprecation(since="2026-01"), "old_name", {"default": SourcePos(file, 3, 20)})
    for twin in (pickle.loads(pickle.dumps(meta)), copy.copy(meta), copy.deepcopy(meta)):
        assert twin == meta
        assert (twin.pos, twin.at("default"), twin.waivers, twin.rfc, twin.renamed_from) == \
            (meta.pos, meta.at("default"), meta.waivers, meta.rfc, meta.renamed_from)


def test_equal_lists_names_and_index_keys_of_one_file_are_held_once_positions_stay_per_object(tmp_path: Path) -> None:
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    table = ("  {name}:\n    tags: [user_facing]\n    columns:\n"
             "      id: {{type: uuid, primary_key: true}}\n"
             "      user_id: {{type: uuid, references: users.id, on_delete: cascade}}\n"
             "    indexes:\n      idx_{name}_user: {{columns: [user_id desc]}}\n")
    (schema_dir / "m.yaml").write_text("module: m\ntables:\n  users:\n    columns:\n"
                                       "      id: {type: uuid, primary_key: true}\n"
                                       + table.format(name="a") + table.format(name="b"))
    tables = load_schema(schema_dir).tables
    a, b = tables["a"], tables["b"]
    assert a.primary_key is not None and b.primary_key is not None
    assert a.primary_key.columns is b.primary_key.columns
    (fk_a,), (fk_b,) = a.foreign_keys.values(), b.foreign_keys.values()
    assert fk_a.ref_columns is fk_b.ref_columns and fk_a.on_delete is fk_b.on_delete
    assert fk_a.ref_table is fk_b.ref_table and a.tags is b.tags
    assert a.triggers is b.policies and a.grants == {}  # one empty mapping for every table of the file
    (index_a,), (index_b,) = a.indexes.values(), b.indexes.values()
    assert index_a.elements is index_b.elements and index_a.elements[0].descending
    assert fk_a.meta.pos != fk_b.meta.pos and index_a.meta.pos != index_b.meta.pos  # each keeps its own place
