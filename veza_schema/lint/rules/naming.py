"""Naming rules (seed section 2): the shapes of index, constraint and key names.

snake_case for tables, columns, indexes and constraints is immutable rule IMM007; NAM001
covers every other identifier. A name's middle part is read as column names (longest
match first; ``user`` may stand for ``user_id``, ``expires`` for ``expires_at``), so a
name that claims a column its object does not cover is caught (NAM007).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import Rule, rule
from veza_schema.lint.rules.common import (
    SNAKE_CASE,
    index_path,
    other_identifiers,
    per_schema,
    table_path,
)
from veza_schema.model import Index, Schema, split_name
from veza_schema.sql.parse import parse_sql

# Index name suffix -> what the index must be for the suffix to tell the truth.
INDEX_SUFFIXES: tuple[str, ...] = (
    "btree",
    "gin",
    "gist",
    "hash",
    "brin",
    "spgist",
    "unique",
    "desc",
    "partial",
    "trgm",
    "covering",
)


def bare(key: str) -> str:
    """A model key without its schema: names are built from the object's own name."""
    return split_name(key)[1]


def _suffix_holds(suffix: str, index: Index) -> bool:
    if suffix in ("btree", "gin", "gist", "hash", "brin", "spgist"):
        return index.method == suffix
    if suffix == "unique":
        return index.unique
    if suffix == "desc":
        return any(e.descending for e in index.elements)
    if suffix == "partial":
        return index.where is not None
    if suffix == "trgm":
        return any(e.opclass and "trgm" in e.opclass for e in index.elements)
    return bool(index.include)  # covering


class ColumnWords:
    """A table's column names as word tuples, for reading names like ``uq_t_provider_user``."""

    def __init__(self, columns: Iterable[str]) -> None:
        exact: dict[tuple[str, ...], frozenset[str]] = {}
        prefixes: dict[tuple[str, ...], set[str]] = {}
        self.longest = 1
        for column in columns:
            words = tuple(column.split("_"))
            exact[words] = frozenset({column})
            self.longest = max(self.longest, len(words))
            for n in range(1, len(words)):
                prefixes.setdefault(words[:n], set()).add(column)
        self.lookup: dict[tuple[str, ...], frozenset[str]] = {k: frozenset(v) for k, v in prefixes.items()}
        self.lookup.update(exact)  # an exact column name wins over a prefix of a longer one
        # Names read before: tables sharing these columns repeat them (idx_<table>_account_id_btree).
        self._read: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {}

    def claims(self, text: str) -> tuple[tuple[str, frozenset[str]], ...]:
        """(words, candidate columns) for each run of words that names a column; others are free words."""
        found = self._read.get(text)
        if found is None:
            found = self._read[text] = tuple(self._claims(text))
        return found

    def _claims(self, text: str) -> Iterator[tuple[str, frozenset[str]]]:
        words = [w for w in text.split("_") if w]
        i = 0
        while i < len(words):
            for j in range(min(len(words), i + self.longest), i, -1):
                candidates = self.lookup.get(tuple(words[i:j]))
                if candidates:
                    yield "_".join(words[i:j]), candidates
                    i = j
                    break
            else:
                i += 1


@lru_cache(maxsize=1024)
def column_words(columns: tuple[str, ...]) -> ColumnWords:
    """One :class:`ColumnWords` per distinct column list (tables are visited by several rules)."""
    return ColumnWords(columns)


def _names_a_column(words: ColumnWords, text: str, columns: frozenset[str]) -> bool:
    """True when the name reads as a column (``user`` for user_id) or shares a word with one it uses
    (``chk_files_size_positive`` for file_size)."""
    if words.claims(text):
        return True
    used = {word for column in columns for word in column.split("_")}
    return any(word in used for word in text.split("_"))


def _uncovered(words: ColumnWords, text: str, covered: set[str] | frozenset[str]) -> list[str]:
    return [claim for claim, candidates in words.claims(text) if not candidates & covered]


def _index_columns(index: Index) -> set[str]:
    """Columns an index covers: plain keys, columns inside expression keys, INCLUDE columns."""
    covered = set(index.include)
    for element in index.elements:
        if element.is_column:
            covered.add(element.expression)
        else:
            covered |= parse_sql(element.expression).columns
    return covered


@rule(
    "NAM001",
    "snake-case-identifier",
    "error",
    "naming",
    summary="Enums, composite types and their attributes, functions, views and triggers are snake_case.",
    why="The seed's naming is snake_case throughout; a CamelCase or quoted name has to be double-quoted in "
    "every query forever (tables, columns, indexes and constraints are covered by IMM007).",
    fix="Rename the object to lower snake_case (letters, digits, single underscores).",
)
def check_snake_case_other(schema: Schema) -> Iterator[Finding]:
    this = check_snake_case_other
    for named in other_identifiers(schema):
        if named.kind != "index" and not SNAKE_CASE.match(named.name):  # indexes are IMM007's
            yield this.finding(f"{named.kind} name '{named.name}' is not snake_case", named.pos, named.path)


def _check_index_name(
    index: Index,
    table_name: str,
    words: ColumnWords | None,
    on_view: bool,
    shape_rule: Rule,
    claim_rule: Rule,
) -> Iterator[Finding]:
    """NAM002's and NAM007's findings on one index name; ``words`` are the table's columns (None on a view)."""
    prefix = f"idx_{table_name}_"
    shape = shape_rule
    if not index.name.startswith(prefix):
        yield shape.finding(
            f"index '{index.name}' should be named idx_{table_name}_{{columns}}_{{type}}",
            index.meta.pos,
            index_path(index, on_view),
        )
        return
    rest = index.name[len(prefix) :]
    suffix = rest.rsplit("_", 1)[-1]
    if "_" not in rest or suffix not in INDEX_SUFFIXES:
        yield shape.finding(
            f"index '{index.name}' lacks a type suffix (one of {', '.join(INDEX_SUFFIXES)})",
            index.meta.pos,
            index_path(index, on_view),
        )
        middle = rest
    else:
        middle = rest[: -len(suffix) - 1]
        if not _suffix_holds(suffix, index):
            yield shape.finding(
                f"index '{index.name}' says '_{suffix}' but it is a {_describe(index)}", index.meta.pos,
                index_path(index, on_view)
            )
    if words is None:
        return
    claims = claim_rule
    for claim in _uncovered(words, middle, _index_columns(index)):
        yield claims.finding(
            f"index '{index.name}' names column '{claim}', which the index does not cover",
            index.meta.pos,
            index_path(index, on_view),
        )


def _describe(index: Index) -> str:
    parts = ["unique" if index.unique else "non-unique", index.method]
    if index.where:
        parts.append("partial")
    return " ".join(parts) + " index"


@rule(
    "NAM002",
    "index-name",
    "warning",
    "naming",
    summary="Indexes are named idx_{table}_{columns}_{type}, and the type suffix tells the truth.",
    why="A reviewer reading a plan or a slow-query log learns from the name alone which table, which "
    "columns "
    "and what kind of index it is (seed section 2.3: idx_users_email_unique, "
    "idx_messages_content_gin).",
    fix="Rename to idx_{table}_{columns}_{type}; type is one of btree, gin, gist, hash, brin, spgist, "
    "unique, "
    "desc, partial, trgm, covering and must match the index.",
)
def check_index_name(schema: Schema) -> Iterator[Finding]:
    return (f for f in _index_name_findings(schema) if f.code == "NAM002")


@per_schema
def _index_name_findings(schema: Schema) -> list[Finding]:
    """NAM002 and NAM007 findings of every index name, read once for both rules."""
    found: list[Finding] = []
    for table in schema.tables.values():
        if not table.indexes:
            continue
        words, name = column_words(table.column_names), bare(table.name)
        for index in table.indexes.values():
            found += _check_index_name(index, name, words, False, check_index_name, check_name_claims)
    for view in schema.views.values():
        for index in view.indexes.values():
            found += _check_index_name(index, bare(view.name), None, True, check_index_name, check_name_claims)
    return found


@rule(
    "NAM003",
    "foreign-key-name",
    "warning",
    "naming",
    summary="Foreign keys are named fk_{source}_{target}, plus a column suffix when two FKs share a target.",
    why="PostgreSQL's automatic names (*_fkey) say nothing about the target; the seed fixes "
    "fk_{source}_{target} "
    "(section 2.4), and a suffix is the only way two FKs to one table keep distinct, readable names.",
    fix="Rename to fk_{table}_{target} (or fk_{table}_{target}_{column} when the table has several FKs to "
    "that "
    "target); column-level `references:` get this name automatically.",
)
def check_fk_name(schema: Schema) -> Iterator[Finding]:
    this = check_fk_name
    for table in schema.tables.values():
        per_target: dict[str, int] = {}
        for fk in table.foreign_keys.values():
            per_target[fk.ref_table] = per_target.get(fk.ref_table, 0) + 1
        for fk in table.foreign_keys.values():
            path = f"{table_path(table.name)}.foreign_keys.{fk.name}"
            base = f"fk_{bare(table.name)}_{bare(fk.ref_table)}"
            if fk.name != base and not fk.name.startswith(base + "_"):
                yield this.finding(
                    f"foreign key '{fk.name}' should be named {base}"
                    + ("_{column}" if per_target[fk.ref_table] > 1 else ""),
                    fk.meta.pos,
                    path,
                )
            elif fk.name == base and per_target[fk.ref_table] > 1:
                yield this.finding(
                    f"foreign key '{fk.name}': {bare(table.name)} has {per_target[fk.ref_table]} "
                    "foreign "
                    f"keys to {bare(fk.ref_table)}; add the column suffix "
                    f"({base}_{'_'.join(fk.columns)})",
                    fk.meta.pos,
                    path,
                )


@rule(
    "NAM004",
    "check-name",
    "warning",
    "naming",
    summary="CHECK constraints are named chk_{table}_{column}_{condition}.",
    why="When an INSERT fails, the constraint name is all the application log shows; "
    "chk_users_email_format "
    "says which table and column broke which condition (seed section 2.5).",
    fix="Rename to chk_{table}_{column}_{condition}, e.g. chk_tracks_duration_positive.",
)
def check_check_name(schema: Schema) -> Iterator[Finding]:
    this = check_check_name
    for table in schema.tables.values():
        words: ColumnWords | None = None
        for check in table.checks.values():
            path = f"{table_path(table.name)}.checks.{check.name}"
            prefix = f"chk_{bare(table.name)}_"
            if not check.name.startswith(prefix) or len(check.name) == len(prefix):
                yield this.finding(
                    f"check '{check.name}' should be named {prefix}{{column}}_{{condition}}",
                    check.meta.pos,
                    path,
                )
                continue
            words = words or column_words(table.column_names)
            if not _names_a_column(words, check.name[len(prefix) :], parse_sql(check.expression).columns):
                yield this.finding(
                    f"check '{check.name}' does not name the column it checks "
                    f"({prefix}{{column}}_{{condition}})",
                    check.meta.pos,
                    path,
                )


@rule(
    "NAM005",
    "unique-name",
    "warning",
    "naming",
    summary="UNIQUE constraints are named uq_{table}_{columns}.",
    why="A unique violation reports only the constraint name; uq_{table}_{columns} tells which duplicate "
    "was refused without opening the schema (PostgreSQL's automatic *_key names do not).",
    fix="Rename to uq_{table}_{columns}; column-level `unique: true` gets this name automatically.",
)
def check_unique_name(schema: Schema) -> Iterator[Finding]:
    this = check_unique_name
    for table in schema.tables.values():
        words: ColumnWords | None = None
        for uq in table.uniques.values():
            path = f"{table_path(table.name)}.unique.{uq.name}"
            prefix = f"uq_{bare(table.name)}_"
            if not uq.name.startswith(prefix) or len(uq.name) == len(prefix):
                yield this.finding(
                    f"unique constraint '{uq.name}' should be named {prefix}{'_'.join(uq.columns)}",
                    uq.meta.pos,
                    path,
                )
                continue
            words = words or column_words(table.column_names)
            if not _names_a_column(words, uq.name[len(prefix) :], frozenset(uq.columns)):
                yield this.finding(
                    f"unique constraint '{uq.name}' does not name its columns "
                    f"({prefix}{'_'.join(uq.columns)})",
                    uq.meta.pos,
                    path,
                )


@rule(
    "NAM006",
    "primary-key-name",
    "warning",
    "naming",
    summary="Primary keys are named pk_{table}.",
    why="One predictable name per table (pk_users) keeps migrations that drop or recreate the key writable "
    "without looking the name up, and matches what the YAML loader generates.",
    fix="Rename the primary key to pk_{table} (drop the explicit `name:`).",
)
def check_pk_name(schema: Schema) -> Iterator[Finding]:
    this = check_pk_name
    for table in schema.tables.values():
        pk = table.primary_key
        if pk is not None and pk.name != f"pk_{bare(table.name)}":
            yield this.finding(
                f"primary key '{pk.name}' should be named pk_{bare(table.name)}",
                pk.meta.pos,
                f"{table_path(table.name)}.primary_key",
            )


@rule(
    "NAM007",
    "name-claims-uncovered-column",
    "error",
    "naming",
    summary="An index, UNIQUE, CHECK or FK name that names a column the object does not cover.",
    why="Names are read, definitions are not: idx_orders_user_id_btree on (seller_id) after an edit sends "
    "the "
    "next reader, and the next migration, after the wrong column.",
    fix="Rename the object after the columns it really covers, or fix its column list.",
)
def check_name_claims(schema: Schema) -> Iterator[Finding]:
    this = check_name_claims
    yield from (f for f in _index_name_findings(schema) if f.code == "NAM007")
    for table in schema.tables.values():
        words = column_words(table.column_names)
        tp = table_path(table.name)
        for uq in table.uniques.values():
            prefix = f"uq_{bare(table.name)}_"
            if uq.name.startswith(prefix):
                for claim in _uncovered(words, uq.name[len(prefix) :], frozenset(uq.columns)):
                    yield this.finding(
                        f"unique constraint '{uq.name}' names column '{claim}', which it does not cover",
                        uq.meta.pos,
                        f"{tp}.unique.{uq.name}",
                    )
        for check in table.checks.values():
            prefix = f"chk_{bare(table.name)}_"
            parsed = parse_sql(check.expression)
            if check.name.startswith(prefix) and parsed.error is None:
                for claim in _uncovered(words, check.name[len(prefix) :], parsed.columns):
                    yield this.finding(
                        f"check '{check.name}' names column '{claim}', which its expression does not use",
                        check.meta.pos,
                        f"{tp}.checks.{check.name}",
                    )
        for fk in table.foreign_keys.values():
            base = f"fk_{bare(table.name)}_{bare(fk.ref_table)}_"
            if fk.name.startswith(base):
                for claim in _uncovered(words, fk.name[len(base) :], frozenset(fk.columns)):
                    yield this.finding(
                        f"foreign key '{fk.name}' names column '{claim}', which is not one of its "
                        f"columns ({', '.join(fk.columns)})",
                        fk.meta.pos,
                        f"{tp}.foreign_keys.{fk.name}",
                    )


RULES: tuple[Rule, ...] = (
    check_snake_case_other,
    check_index_name,
    check_fk_name,
    check_check_name,
    check_unique_name,
    check_pk_name,
    check_name_claims,
)
