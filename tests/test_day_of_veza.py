"""A small day of Veza on PostgreSQL 15 and 18: the schema's invariants hold for real use, end to end.

Two people sign up, one uploads and publishes a track, the other plays, likes and follows; they chat
with a reply and a reaction; one buys from the other, is refunded, subscribes; an admin stores a secret
setting; then the buyer is erased (GDPR). At the end no money row is lost, the audit trail is present but
holds neither the secret nor anything personal of the erased user, and every counter is right.
The whole day is played as the application's role (``veza_app``), with the rights the schema grants it.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.factories import RowFactory, shipped_schema

MONEY_TABLES = ("orders", "order_items", "transactions", "refunds", "subscriptions")


def _one(conn: psycopg.Connection, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _room_counts(conn: psycopg.Connection, room_id: Any) -> tuple[int, int]:
    row = conn.execute("SELECT member_count, message_count FROM rooms WHERE id = %s", (room_id,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _counts(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, int]:
    return {t: _one(conn, f"SELECT count(*) FROM {t}") for t in tables}  # noqa: S608 - fixed names


def test_a_day_of_veza(conn: psycopg.Connection) -> None:
    conn.execute("SET ROLE veza_app")
    rows = RowFactory(conn, shipped_schema())

    # Sign-up: accounts, profiles, settings.
    alice = rows.insert("users", {"username": "alice_music", "email": "alice@example.com"})
    bob = rows.insert("users", {"username": "bob_listens", "email": "bob.buyer@example.com",
                                "last_login_ip": "203.0.113.7"})
    for user in (alice, bob):
        rows.insert("user_profiles", {"user_id": user["id"]})
        rows.insert("user_settings", {"user_id": user["id"]})

    # Upload and publish.
    audio = rows.insert("files", {"user_id": alice["id"], "mime_type": "audio/flac"})
    track = rows.insert("tracks", {"creator_id": alice["id"], "file_id": audio["id"], "title": "Morning",
                                   "published_at": "2026-11-29T08:00:00Z", "isrc": "FRZ032600001"})

    # Play, like, comment, follow.
    rows.insert("playback_history", {"user_id": bob["id"], "track_id": track["id"], "played_duration": 180,
                                     "completion_percentage": 100})
    rows.insert("track_likes", {"user_id": bob["id"], "track_id": track["id"]})
    rows.insert("track_comments", {"user_id": bob["id"], "track_id": track["id"], "content": "Lovely"})
    rows.insert("follows", {"follower_id": bob["id"], "following_id": alice["id"]})

    # Chat: a room, two members, a message, a reply, a reaction.
    room = rows.insert("rooms", {"creator_id": alice["id"], "room_type": "private"})
    for user in (alice, bob):
        rows.insert("room_members", {"room_id": room["id"], "user_id": user["id"]})
    hello = rows.insert("messages", {"room_id": room["id"], "sender_id": alice["id"], "content": "Hello"})
    rows.insert("messages", {"room_id": room["id"], "sender_id": bob["id"], "content": "Hi!",
                             "reply_to_id": hello["id"], "reply_to_created_at": hello["created_at"]})
    rows.insert("message_reactions", {"message_id": hello["id"], "message_created_at": hello["created_at"],
                                      "user_id": bob["id"], "emoji": "+1"})

    # Buy, pay, refund, subscribe.
    product = rows.insert("products", {"seller_id": alice["id"], "price": 20})
    order = rows.insert("orders", {"user_id": bob["id"], "subtotal": 20, "tax_total": 4, "discount_total": 0,
                                   "total": 24, "billing_email": "bob.buyer@example.com",
                                   "billing_name": "Bob Buyer", "status": "paid"})
    item = rows.insert("order_items", {"order_id": order["id"], "product_id": product["id"],
                                       "seller_id": alice["id"], "price": 20})
    rows.insert("transactions", {"user_id": bob["id"], "order_id": order["id"], "amount": 24,
                                 "transaction_type": "payment", "provider": "stripe", "status": "completed"})
    rows.insert("refunds", {"order_id": order["id"], "order_item_id": item["id"], "requested_by": bob["id"],
                            "amount": 20, "status": "succeeded", "processed_at": "2026-11-29T12:00:00Z"})
    rows.insert("subscriptions", {"user_id": bob["id"], "status": "active"})

    # An admin stores a secret setting.
    rows.insert("system_configs", {"key": "payments.stripe_key", "value": json.dumps("sk_live_secret"),
                                   "is_secret": True})

    assert _one(conn, "SELECT like_count FROM tracks WHERE id = %s", (track["id"],)) == 1
    assert _one(conn, "SELECT comment_count FROM tracks WHERE id = %s", (track["id"],)) == 1
    assert _room_counts(conn, room["id"]) == (2, 2)
    assert _one(conn, "SELECT follower_count FROM user_profiles WHERE user_id = %s", (alice["id"],)) == 1
    assert _one(conn, "SELECT track_count FROM user_profiles WHERE user_id = %s", (alice["id"],)) == 1
    assert _one(conn, "SELECT count(*) FROM audit_logs WHERE user_id = %s", (bob["id"],)) > 0
    audit_text = _one(conn, "SELECT string_agg(coalesce(old_data::text, '') || coalesce(new_data::text, ''), '')"
                            " FROM audit_logs WHERE table_name = 'system_configs'")
    assert "sk_live_secret" not in audit_text

    money_before = _counts(conn, MONEY_TABLES)

    # Bob asks to be forgotten.
    with conn.cursor(row_factory=dict_row) as cur:
        report = cur.execute("SELECT erase_user(%s) AS report", (bob["id"],)).fetchone()
    assert report is not None and report["report"]["user_id"] == str(bob["id"])

    assert _counts(conn, MONEY_TABLES) == money_before  # no money row lost
    assert _one(conn, "SELECT total FROM orders WHERE id = %s", (order["id"],)) == 24
    erased = conn.execute("SELECT email, username, first_name, password_hash, last_login_ip, deleted_at "
                          "FROM users WHERE id = %s", (bob["id"],)).fetchone()
    assert erased is not None
    assert erased[0].endswith("@erased.invalid") and "bob" not in erased[0] + erased[1]
    assert erased[2:5] == (None, None, None) and erased[5] is not None
    assert _one(conn, "SELECT billing_name IS NULL AND billing_email LIKE '%%erased.invalid' FROM orders "
                      "WHERE id = %s", (order["id"],))
    assert _one(conn, "SELECT count(*) FROM user_profiles WHERE user_id = %s", (bob["id"],)) == 0

    # The audit trail is still there, and says nothing personal of Bob any more.
    assert _one(conn, "SELECT count(*) FROM audit_logs WHERE user_id = %s", (bob["id"],)) > 0
    trail = _one(conn, "SELECT string_agg(coalesce(old_data::text, '') || coalesce(new_data::text, '') || "
                       "coalesce(host(client_addr), ''), ' ') FROM audit_logs "
                       "WHERE user_id = %s OR record_id = %s", (bob["id"], bob["id"]))
    for personal in ("bob.buyer@example.com", "bob_listens", "Bob Buyer", "203.0.113.7"):
        assert personal not in trail

    # Counters followed the erasure: Bob's follow, like and comment are gone with his private data.
    assert _one(conn, "SELECT follower_count FROM user_profiles WHERE user_id = %s", (alice["id"],)) == 0
    assert _one(conn, "SELECT like_count FROM tracks WHERE id = %s", (track["id"],)) == 0
    assert _one(conn, "SELECT comment_count FROM tracks WHERE id = %s", (track["id"],)) == 0
    assert _room_counts(conn, room["id"]) == (1, 1)
