"""Invariants a senior DBA asked of the Veza schema: money records kept, totals consistent, states complete.

Tables holding money carry the ``financial`` tag; the rules about them are read from the model, the
behaviour is checked on real rows (PostgreSQL 18 and 15, through the shared template copies).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.factories import RowFactory, shipped_schema
from veza_schema.model import Schema

SCHEMA: Schema = shipped_schema()
FINANCIAL = sorted(t.name for t in SCHEMA.tables.values() if "financial" in t.tags)
# Parents whose deletion must never take money records with it.
OWNERS = {"users", "orders"} | set(FINANCIAL)


def test_the_money_tables_are_tagged_financial() -> None:
    assert {"orders", "order_items", "refunds", "transactions", "subscriptions", "seller_payouts",
            "discount_code_usage", "royalty_splits"} <= set(FINANCIAL)


@pytest.mark.parametrize("table_name", FINANCIAL)
def test_no_foreign_key_of_a_financial_table_cascades_from_an_owner(table_name: str) -> None:
    table = SCHEMA.tables[table_name]
    loose = [f"{fk.name} ({fk.on_delete})" for fk in table.foreign_keys.values()
             if fk.ref_table in OWNERS and fk.on_delete in ("cascade", "set null", "set default")]
    assert loose == []


# PostgreSQL 15 reports a RESTRICT refusal as foreign_key_violation (23503), 18 as restrict_violation (23001).
REFUSED_DELETE = (errors.ForeignKeyViolation, errors.RestrictViolation)


def _savepoint_fails(conn: psycopg.Connection, error: type[Exception] | tuple[type[Exception], ...], statement: str,
                     params: tuple[Any, ...] = ()) -> None:
    with pytest.raises(error), conn.transaction():
        conn.execute(statement, params)


def test_deleting_a_buyer_keeps_the_order_and_fails(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    order = factory.insert("orders")
    factory.insert("order_items", {"order_id": order["id"]})
    _savepoint_fails(shared_conn, REFUSED_DELETE, "DELETE FROM users WHERE id = %s", (order["user_id"],))
    assert shared_conn.execute("SELECT count(*) FROM order_items WHERE order_id = %s", (order["id"],)).fetchone() \
        == (1,)


def test_deleting_an_order_with_items_fails(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    item = factory.insert("order_items")
    _savepoint_fails(shared_conn, REFUSED_DELETE, "DELETE FROM orders WHERE id = %s",
                     (item["order_id"],))


def test_an_order_total_must_be_subtotal_plus_tax_minus_discount(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("orders", {"subtotal": 10, "tax_total": 2, "discount_total": 1, "total": 12})
    assert factory.insert("orders", {"subtotal": 10, "tax_total": 2, "discount_total": 1, "total": 11})


def test_a_completed_enrollment_has_a_completion_time(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("course_enrollments", {"status": "completed"})
    assert factory.insert("course_enrollments", {"status": "completed", "completed_at": "2026-11-01"})


def test_a_succeeded_refund_has_a_processing_time(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("refunds", {"status": "succeeded"})
    assert factory.insert("refunds", {"status": "succeeded", "processed_at": "2026-11-01"})


@pytest.mark.parametrize(("table", "column"), [
    ("sync_operations", "attempt_count"), ("webhooks", "failure_count"), ("webhook_deliveries", "attempt_count"),
    ("push_subscriptions", "failure_count"), ("notification_deliveries", "attempt_count"),
])
def test_attempt_and_failure_counters_are_never_negative(shared_conn: psycopg.Connection, table: str,
                                                        column: str) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert(table, {column: -1})


def test_a_card_expiry_year_is_a_plausible_year(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("payment_methods", {"exp_year": 27})
    assert factory.insert("payment_methods", {"exp_year": 2027})


def test_an_isrc_has_the_standard_shape_and_names_one_live_track(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("tracks", {"isrc": "FR-Z03-24-00123"})
    code = "FRZ03" + str(uuid.uuid4().int)[:7]
    track = factory.insert("tracks", {"isrc": code})
    with pytest.raises(errors.UniqueViolation), shared_conn.transaction():
        factory.insert("tracks", {"isrc": code})
    shared_conn.execute("UPDATE tracks SET deleted_at = now() WHERE id = %s", (track["id"],))
    assert factory.insert("tracks", {"isrc": code})


def test_royalty_splits_of_a_track_never_exceed_all_of_it(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    first = factory.insert("royalty_splits", {"share_percent": 60, "role": "artist"})
    factory.insert("royalty_splits", {"track_id": first["track_id"], "share_percent": 40, "role": "producer"})
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("royalty_splits", {"track_id": first["track_id"], "share_percent": 1, "role": "label"})


def test_a_royalty_split_is_for_a_track_or_a_product_not_both(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    product = factory.insert("products")
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("royalty_splits", {"product_id": product["id"], "share_percent": 10, "role": "artist"})


def test_a_course_slug_is_free_again_once_the_course_is_deleted(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    slug = "course-" + uuid.uuid4().hex[:8]
    course = factory.insert("courses", {"slug": slug})
    with pytest.raises(errors.UniqueViolation), shared_conn.transaction():
        factory.insert("courses", {"slug": slug})
    shared_conn.execute("UPDATE courses SET deleted_at = now() WHERE id = %s", (course["id"],))
    assert factory.insert("courses", {"slug": slug})


def test_an_api_key_prefix_has_eight_random_characters(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    with pytest.raises(errors.CheckViolation), shared_conn.transaction():
        factory.insert("api_keys", {"key_prefix": "vz_live_ab12"})


def test_search_documents_use_the_dictionary_of_their_language(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    french = factory.insert("search_index", {"language": "fr", "title": "les chansons"})
    english = factory.insert("search_index", {"language": "en", "title": "the songs"})
    assert "'chanson'" in str(french["search_document"])
    assert "'song'" in str(english["search_document"])
