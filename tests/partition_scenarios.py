"""A small chat schema for the partition lifecycle tests, on either backend.

``messages`` (monthly, retention 24 months, archived) is referenced by ``message_reactions``
(ON DELETE CASCADE, through the partition key) and holds replies as a plain reference, as in
the Veza schema; ``events`` (monthly, retention 3 months, dropped) references nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.helpers import CliResult, TestDatabase, invoke
from veza_schema.managed import period_start, shift

SCHEMA_YAML = """\
module: chat
tables:
  rooms:
    columns:
      id:   {type: uuid, primary_key: true, default: gen_random_uuid()}
      name: {type: text}
  messages:
    columns:
      id:                  {type: uuid, default: gen_random_uuid()}
      room_id:             {type: uuid, references: rooms.id, on_delete: cascade}
      body:                {type: text}
      reply_to_id:         {type: uuid, nullable: true}
      reply_to_created_at: {type: timestamptz, nullable: true}
      created_at:          {type: timestamptz, default: now()}
    primary_key: [id, created_at]
    partition_by: {range: [created_at], interval: month, premake: 3, retention: 24 months, backend: BACKEND}
    checks:
      chk_messages_reply_to_id_reply_to_created_at_together: (reply_to_id IS NULL) = (reply_to_created_at IS NULL)
    indexes:
      idx_messages_room_id_created_at_btree: {columns: [room_id, created_at desc]}
  message_reactions:
    columns:
      id:                 {type: uuid, primary_key: true, default: gen_random_uuid()}
      message_id:         {type: uuid}
      message_created_at: {type: timestamptz}
      emoji:              {type: text}
    foreign_keys:
      fk_message_reactions_messages:
        columns: [message_id, message_created_at]
        references: messages(id, created_at)
        on_delete: cascade
    indexes:
      idx_message_reactions_message_id_message_created_at_btree: {columns: [message_id, message_created_at]}
      idx_message_reactions_message_created_at_btree: {columns: [message_created_at]}
  events:
    columns:
      id:         {type: uuid, default: gen_random_uuid()}
      payload:    {type: text, nullable: true}
      created_at: {type: timestamptz, default: now()}
    primary_key: [id, created_at]
    partition_by:
      range: [created_at]
      interval: month
      premake: 3
      retention: 3 months
      retention_keep_table: false
      backend: BACKEND
"""

PARTITIONED = ("events", "messages")


def month(offset: int, day: int = 15) -> datetime:
    """The ``day`` of the month ``offset`` months from now (UTC)."""
    start = shift(period_start(datetime.now(UTC), "month"), offset, "month")
    return start.replace(day=day, hour=12)


def suffix(offset: int) -> str:
    return f"_p{month(offset):%Y%m}"


@dataclass
class Lifecycle:
    """An applied scenario: the database, its schema directory, and the CLI pointed at both."""

    db: TestDatabase
    schema_dir: Path
    backend: str

    def partitions(self, *args: str) -> CliResult:
        return invoke("partitions", "--dsn", self.db.dsn, "--schema-dir", str(self.schema_dir), *args)

    def room(self) -> str:
        ((room,),) = self.db.query("INSERT INTO rooms (name) VALUES ('general') RETURNING id::text")
        return str(room)

    def message(self, room: str, at: datetime, reply_to: tuple[str, datetime] | None = None) -> tuple[str, datetime]:
        message_id = str(uuid.uuid4())
        self.db.execute("INSERT INTO messages (id, room_id, body, reply_to_id, reply_to_created_at, created_at) "
                        "VALUES (%s, %s, 'hi', %s, %s, %s)",
                        (message_id, room, reply_to[0] if reply_to else None, reply_to[1] if reply_to else None, at))
        return message_id, at

    def reaction(self, message: tuple[str, datetime]) -> None:
        self.db.execute("INSERT INTO message_reactions (message_id, message_created_at, emoji) VALUES (%s, %s, '+1')",
                        message)

    def event(self, at: datetime, count: int = 1) -> None:
        self.db.execute("INSERT INTO events (created_at) SELECT %s FROM generate_series(1, %s)", (at, count))

    def partition_names(self, table: str) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1", (table,))]

    def ids(self, relation: str) -> list[str]:
        return sorted(r[0] for r in self.db.query(f"SELECT id::text FROM {relation}"))

    def count(self, relation: str) -> int:
        ((count,),) = self.db.query(f"SELECT count(*) FROM {relation}")
        return int(count)


def write_scenario(directory: Path, backend: str, extra: dict[str, str] | None = None) -> Path:
    """The scenario's YAML in ``directory/schema`` (plus ``extra`` module files)."""
    schema_dir = directory / "schema"
    schema_dir.mkdir(parents=True)
    (schema_dir / "chat.yaml").write_text(SCHEMA_YAML.replace("BACKEND", backend))
    for name, text in (extra or {}).items():
        (schema_dir / name).write_text(text)
    return schema_dir


def apply_scenario(db: TestDatabase, directory: Path, backend: str, extra: dict[str, str] | None = None
                   ) -> Lifecycle:
    schema_dir = write_scenario(directory, backend, extra)
    migrations = directory / "migrations"
    # A minimal scenario (no created_at/updated_at, no waivers): lint's gate is not what these tests are about.
    result = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations), "--no-verify")
    assert result.exit_code == 0, result.output
    result = invoke("apply", "--dsn", db.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    return Lifecycle(db, schema_dir, backend)
