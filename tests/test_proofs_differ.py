"""Differ cases the scenario tables did not pin (each found by a surviving mutant)."""

from __future__ import annotations

from tests.factories import BASE, POSTS, USERS, schema, with_
from veza_schema.diff.changes import AddPrimaryKey, CommentTarget, DropPrimaryKey, SetComment
from veza_schema.diff.differ import diff_schemas
from veza_schema.model import PrimaryKey


def test_a_removed_comment_is_a_change() -> None:
    commented = schema(with_(USERS, comment="People"), POSTS)
    assert diff_schemas(commented, BASE) == [SetComment(CommentTarget("table", "users"), "People", None)]


def test_a_primary_key_added_to_a_table_without_one_is_a_change() -> None:
    keyless = schema(USERS, with_(POSTS, primary_key=None))
    assert diff_schemas(keyless, BASE) == [AddPrimaryKey("posts", PrimaryKey("pk_posts", ("id",)))]
    assert diff_schemas(BASE, keyless) == [DropPrimaryKey("posts", PrimaryKey("pk_posts", ("id",)))]
