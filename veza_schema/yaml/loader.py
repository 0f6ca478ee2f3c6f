"""``schema/*.yaml`` -> :class:`~veza_schema.model.Schema`.

One job: reading the YAML format; its length is one reader per kind of object the format declares.

The loader is the only place that sees YAML: it checks every key and type, names the
constraints the YAML leaves unnamed (seed conventions), expands trigger templates, and
resolves references across files. Every problem is collected with its ``file:line:col``
and raised together as one :class:`SchemaLoadError`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from veza_schema.errors import Problem, SchemaLoadError
from veza_schema.model import (
    DEFAULT_PRIVILEGE_TARGETS,
    FK_ACTIONS,
    HOME_SCHEMA,
    INDEX_METHODS,
    PARALLEL_SAFETY,
    PARTITION_BACKENDS,
    POLICY_COMMANDS,
    PRIVILEGES,
    PUBLIC_ROLE,
    TABLE_PRIVILEGES_EXTRA,
    CheckConstraint,
    Column,
    CompositeAttribute,
    CompositeType,
    CounterSpec,
    DefaultPrivilege,
    Deprecation,
    EnumType,
    ExclusionConstraint,
    Extension,
    ForeignKey,
    Function,
    Index,
    IndexElement,
    Meta,
    Module,
    Namespace,
    PartitionSpec,
    Policy,
    PrimaryKey,
    Purge,
    Retention,
    Role,
    Schema,
    SequenceObject,
    SourcePos,
    Table,
    Trigger,
    UniqueConstraint,
    View,
    Waiver,
    default_grants,
    qualify,
    schema_of,
    split_name,
)
from veza_schema.sql import parse_cache, routes
from veza_schema.sql import render as render_module
from veza_schema.sql.parse_cache import on_disk
from veza_schema.sql.render import render_template, template_digest
from veza_schema.sql.routes import Route, RouteError, sql_expression
from veza_schema.sql.text import ident, needs_quotes
from veza_schema.types import SERIAL_TYPES
from veza_schema.yaml import load_cache, workers
from veza_schema.yaml.contract import keys
from veza_schema.yaml.names import format_name, make_object_name, nextval_default, parse_name, parse_qualified
from veza_schema.yaml.nodes import NodeReader, compose_file, located_meta, read_bytes

# The keys of each object come from the format's contract (yaml/contract.py), which the JSON Schema
# of `veza-schema json-schema` is generated from too: add a key there, not here.
MODULE_KEYS = keys("module")
TABLE_KEYS = keys("table")
COLUMN_KEYS = keys("column")
INDEX_KEYS = keys("index")
FK_KEYS = keys("foreign_key")
TRIGGER_KEYS = keys("trigger")
TEMPLATE_KEYS = keys("trigger_template")
FUNCTION_KEYS = keys("function")
VIEW_KEYS = keys("view")
SEQUENCE_KEYS = keys("sequence")
ROLE_KEYS = keys("role")
POLICY_KEYS = keys("policy")
EXCLUSION_KEYS = keys("exclusion")
EXTENSION_KEYS = keys("extension")
SCHEMA_KEYS = keys("schema")
DEFAULT_PRIVILEGE_KEYS = keys("default_privilege")
PARTITION_KEYS = keys("partition_by")
COUNTS_KEYS = keys("counts")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")  # a bare name (counters name home-schema tables)
_T = TypeVar("_T")
_PURGE_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
_RETENTION = re.compile(r"^\s*(?P<count>[0-9]{1,4})\s+(?P<unit>day|week|month|year)s?\s*$", re.IGNORECASE)

# Every field of the format and the one route its text takes into SQL (veza_schema.sql.routes,
# docs/security.md). Keys are (object kind, key) with the kinds and keys of the contract
# (yaml/contract.py); "(name)" is the object's own name (its mapping key), "(value)" the text of a
# list or mapping item. tests/hostile/test_field_routes.py fails on a contract key without a route
# here and on a text field missing from the hostile-input corpus (tests/hostile/corpus.py).
FIELD_ROUTES: dict[tuple[str, str], Route] = {
    ("module", "module"): Route.IDENTIFIER, ("module", "description"): Route.FREE_TEXT,
    ("module", "extensions"): Route.IDENTIFIER, ("module", "enums"): Route.NOT_TEXT,
    ("module", "types"): Route.NOT_TEXT, ("module", "functions"): Route.NOT_TEXT,
    ("module", "trigger_templates"): Route.NOT_TEXT, ("module", "tables"): Route.NOT_TEXT,
    ("module", "views"): Route.NOT_TEXT,
    ("enum", "(name)"): Route.IDENTIFIER, ("enum", "values"): Route.LITERAL, ("enum", "comment"): Route.LITERAL,
    ("enum", "waive"): Route.NOT_TEXT, ("enum", "rfc"): Route.RFC,
    ("type", "(name)"): Route.IDENTIFIER, ("type", "attributes"): Route.NOT_TEXT, ("type", "comment"): Route.LITERAL,
    ("type", "waive"): Route.NOT_TEXT, ("type", "rfc"): Route.RFC,
    ("attribute", "(name)"): Route.IDENTIFIER, ("attribute", "(value)"): Route.TYPE,
    ("function", "(name)"): Route.IDENTIFIER, ("function", "returns"): Route.FUNCTION_RETURNS,
    ("function", "language"): Route.KEYWORD, ("function", "arguments"): Route.FUNCTION_ARGUMENTS,
    ("function", "body"): Route.FUNCTION_BODY, ("function", "volatility"): Route.KEYWORD,
    ("function", "security_definer"): Route.NOT_TEXT, ("function", "comment"): Route.LITERAL,
    ("function", "waive"): Route.NOT_TEXT, ("function", "rfc"): Route.RFC,
    ("function", "renamed_from"): Route.IDENTIFIER,
    ("trigger_template", "(name)"): Route.FREE_TEXT, ("trigger_template", "name"): Route.IDENTIFIER,
    ("trigger_template", "function"): Route.REFERENCE, ("trigger_template", "timing"): Route.KEYWORD,
    ("trigger_template", "events"): Route.KEYWORD, ("trigger_template", "for_each"): Route.KEYWORD,
    ("trigger_template", "when"): Route.EXPRESSION, ("trigger_template", "applies_to"): Route.NOT_TEXT,
    ("trigger_template", "rfc"): Route.RFC,
    ("applies_to", "has_column"): Route.IDENTIFIER, ("applies_to", "tagged"): Route.FREE_TEXT,
    ("applies_to", "tables"): Route.IDENTIFIER, ("applies_to", "except"): Route.IDENTIFIER,
    ("table", "(name)"): Route.IDENTIFIER, ("table", "comment"): Route.LITERAL, ("table", "tags"): Route.FREE_TEXT,
    ("table", "columns"): Route.NOT_TEXT, ("table", "primary_key"): Route.IDENTIFIER,
    ("table", "unique"): Route.NOT_TEXT, ("table", "checks"): Route.NOT_TEXT,
    ("table", "foreign_keys"): Route.NOT_TEXT, ("table", "indexes"): Route.NOT_TEXT,
    ("table", "partition_by"): Route.NOT_TEXT, ("table", "triggers"): Route.NOT_TEXT,
    ("table", "waive"): Route.NOT_TEXT, ("table", "renamed_from"): Route.IDENTIFIER, ("table", "rfc"): Route.RFC,
    ("table", "deprecated"): Route.NOT_TEXT,
    ("column", "(name)"): Route.IDENTIFIER, ("column", "type"): Route.TYPE, ("column", "nullable"): Route.NOT_TEXT,
    ("column", "default"): Route.DEFAULT, ("column", "primary_key"): Route.NOT_TEXT,
    ("column", "unique"): Route.NOT_TEXT, ("column", "references"): Route.REFERENCE,
    ("column", "on_delete"): Route.KEYWORD, ("column", "on_update"): Route.KEYWORD,
    ("column", "identity"): Route.KEYWORD, ("column", "generated"): Route.EXPRESSION,
    ("column", "comment"): Route.LITERAL, ("column", "renamed_from"): Route.IDENTIFIER, ("column", "rfc"): Route.RFC,
    ("column", "deprecated"): Route.NOT_TEXT, ("column", "waive"): Route.NOT_TEXT,
    ("column", "counts"): Route.NOT_TEXT, ("column", "maintained_by"): Route.FREE_TEXT,
    ("counts", "rows_of"): Route.IDENTIFIER, ("counts", "via"): Route.IDENTIFIER, ("counts", "key"): Route.IDENTIFIER,
    ("counts", "where"): Route.EXPRESSION, ("counts", "maintained_by"): Route.IDENTIFIER,
    ("primary_key", "name"): Route.IDENTIFIER, ("primary_key", "columns"): Route.IDENTIFIER,
    ("unique", "(name)"): Route.IDENTIFIER, ("unique", "columns"): Route.IDENTIFIER,
    ("unique", "waive"): Route.NOT_TEXT, ("unique", "rfc"): Route.RFC,
    ("check", "(name)"): Route.IDENTIFIER, ("check", "expression"): Route.EXPRESSION,
    ("check", "waive"): Route.NOT_TEXT, ("check", "rfc"): Route.RFC,
    ("foreign_key", "(name)"): Route.IDENTIFIER, ("foreign_key", "columns"): Route.IDENTIFIER,
    ("foreign_key", "references"): Route.REFERENCE, ("foreign_key", "on_delete"): Route.KEYWORD,
    ("foreign_key", "on_update"): Route.KEYWORD, ("foreign_key", "deferrable"): Route.NOT_TEXT,
    ("foreign_key", "initially_deferred"): Route.NOT_TEXT, ("foreign_key", "waive"): Route.NOT_TEXT,
    ("foreign_key", "rfc"): Route.RFC,
    ("index", "(name)"): Route.IDENTIFIER, ("index", "columns"): Route.IDENTIFIER,
    ("index", "expressions"): Route.EXPRESSION, ("index", "opclasses"): Route.OPERATOR_CLASS,
    ("index", "unique"): Route.NOT_TEXT, ("index", "using"): Route.KEYWORD, ("index", "where"): Route.EXPRESSION,
    ("index", "include"): Route.IDENTIFIER, ("index", "waive"): Route.NOT_TEXT, ("index", "rfc"): Route.RFC,
    ("index", "comment"): Route.LITERAL, ("index", "renamed_from"): Route.IDENTIFIER,
    ("trigger", "(name)"): Route.IDENTIFIER, ("trigger", "function"): Route.REFERENCE,
    ("trigger", "timing"): Route.KEYWORD, ("trigger", "events"): Route.KEYWORD,
    ("trigger", "for_each"): Route.KEYWORD, ("trigger", "when"): Route.EXPRESSION,
    ("trigger", "waive"): Route.NOT_TEXT, ("trigger", "rfc"): Route.RFC,
    ("partition_by", "range"): Route.IDENTIFIER, ("partition_by", "list"): Route.IDENTIFIER,
    ("partition_by", "hash"): Route.IDENTIFIER, ("partition_by", "interval"): Route.KEYWORD,
    ("partition_by", "premake"): Route.NOT_TEXT, ("partition_by", "default_partition"): Route.NOT_TEXT,
    ("partition_by", "retention"): Route.KEYWORD, ("partition_by", "retention_keep_table"): Route.NOT_TEXT,
    ("partition_by", "backend"): Route.KEYWORD, ("table", "purge"): Route.NOT_TEXT,
    ("purge", "column"): Route.IDENTIFIER, ("purge", "after"): Route.KEYWORD,
    ("view", "(name)"): Route.IDENTIFIER, ("view", "query"): Route.QUERY, ("view", "materialized"): Route.NOT_TEXT,
    ("view", "indexes"): Route.NOT_TEXT, ("view", "comment"): Route.LITERAL,
    ("view", "depends_on"): Route.IDENTIFIER, ("view", "waive"): Route.NOT_TEXT, ("view", "rfc"): Route.RFC,
    ("deprecated", "since"): Route.FREE_TEXT, ("deprecated", "rfc"): Route.RFC,
    ("deprecated", "note"): Route.FREE_TEXT,
    ("waive", "(name)"): Route.FREE_TEXT, ("waive", "(value)"): Route.FREE_TEXT,
    # Object coverage: schemas, extensions' options, roles, sequences, grants, policies, exclusions.
    ("module", "schema"): Route.IDENTIFIER, ("module", "roles"): Route.NOT_TEXT,
    ("module", "sequences"): Route.NOT_TEXT, ("module", "default_privileges"): Route.NOT_TEXT,
    ("schema", "name"): Route.IDENTIFIER, ("schema", "comment"): Route.LITERAL, ("schema", "grants"): Route.NOT_TEXT,
    ("extension", "name"): Route.IDENTIFIER, ("extension", "version"): Route.LITERAL,
    ("extension", "schema"): Route.IDENTIFIER,
    ("role", "(name)"): Route.IDENTIFIER, ("role", "login"): Route.NOT_TEXT, ("role", "inherit"): Route.NOT_TEXT,
    ("role", "createdb"): Route.NOT_TEXT, ("role", "createrole"): Route.NOT_TEXT, ("role", "bypassrls"): Route.NOT_TEXT,
    ("role", "connection_limit"): Route.NOT_TEXT, ("role", "member_of"): Route.IDENTIFIER,
    ("role", "comment"): Route.LITERAL, ("role", "waive"): Route.NOT_TEXT, ("role", "rfc"): Route.RFC,
    ("sequence", "(name)"): Route.IDENTIFIER, ("sequence", "type"): Route.TYPE, ("sequence", "start"): Route.NOT_TEXT,
    ("sequence", "increment"): Route.NOT_TEXT, ("sequence", "min_value"): Route.NOT_TEXT,
    ("sequence", "max_value"): Route.NOT_TEXT, ("sequence", "cache"): Route.NOT_TEXT,
    ("sequence", "cycle"): Route.NOT_TEXT, ("sequence", "owned_by"): Route.REFERENCE,
    ("sequence", "comment"): Route.LITERAL, ("sequence", "grants"): Route.NOT_TEXT,
    ("sequence", "waive"): Route.NOT_TEXT, ("sequence", "rfc"): Route.RFC,
    ("default_privilege", "for_role"): Route.IDENTIFIER, ("default_privilege", "schema"): Route.IDENTIFIER,
    ("default_privilege", "on"): Route.KEYWORD, ("default_privilege", "grants"): Route.NOT_TEXT,
    ("grant", "(name)"): Route.IDENTIFIER, ("grant", "(value)"): Route.KEYWORD,
    ("function", "strict"): Route.NOT_TEXT, ("function", "leakproof"): Route.NOT_TEXT,
    ("function", "parallel"): Route.KEYWORD, ("function", "cost"): Route.NOT_TEXT, ("function", "rows"): Route.NOT_TEXT,
    ("function", "settings"): Route.SETTING, ("function", "grants"): Route.NOT_TEXT,
    ("function", "exact_body"): Route.NOT_TEXT,
    ("table", "exclusions"): Route.NOT_TEXT, ("table", "unlogged"): Route.NOT_TEXT,
    ("table", "row_security"): Route.NOT_TEXT, ("table", "force_row_security"): Route.NOT_TEXT,
    ("table", "policies"): Route.NOT_TEXT, ("table", "grants"): Route.NOT_TEXT,
    ("column", "collation"): Route.COLLATION, ("column", "statistics"): Route.NOT_TEXT,
    ("primary_key", "deferrable"): Route.NOT_TEXT, ("primary_key", "initially_deferred"): Route.NOT_TEXT,
    ("unique", "deferrable"): Route.NOT_TEXT, ("unique", "initially_deferred"): Route.NOT_TEXT,
    ("unique", "nulls_not_distinct"): Route.NOT_TEXT,
    ("exclusion", "(name)"): Route.IDENTIFIER, ("exclusion", "using"): Route.KEYWORD,
    ("exclusion", "elements"): Route.EXCLUSION_ELEMENT, ("exclusion", "where"): Route.EXPRESSION,
    ("exclusion", "include"): Route.IDENTIFIER, ("exclusion", "deferrable"): Route.NOT_TEXT,
    ("exclusion", "initially_deferred"): Route.NOT_TEXT, ("exclusion", "waive"): Route.NOT_TEXT,
    ("exclusion", "rfc"): Route.RFC,
    ("policy", "(name)"): Route.IDENTIFIER, ("policy", "command"): Route.KEYWORD,
    ("policy", "permissive"): Route.NOT_TEXT, ("policy", "roles"): Route.IDENTIFIER,
    ("policy", "using"): Route.EXPRESSION, ("policy", "with_check"): Route.EXPRESSION,
    ("policy", "waive"): Route.NOT_TEXT, ("policy", "rfc"): Route.RFC,
    ("view", "triggers"): Route.NOT_TEXT, ("view", "grants"): Route.NOT_TEXT,
}
# The check each route runs on a text when the loader reads it; keyword and reference fields are
# checked against their closed set or pattern where they are read.
_ROUTE_CHECKS = {
    Route.IDENTIFIER: routes.check_identifier, Route.LITERAL: routes.check_free_text,
    Route.FREE_TEXT: routes.check_free_text, Route.RFC: routes.check_rfc, Route.TYPE: routes.check_type,
    Route.EXPRESSION: routes.check_expression, Route.DEFAULT: routes.check_default,
    Route.QUERY: routes.check_query, Route.FUNCTION_ARGUMENTS: routes.check_function_arguments,
    Route.FUNCTION_RETURNS: routes.check_function_returns, Route.FUNCTION_BODY: routes.check_function_body,
    Route.OPERATOR_CLASS: routes.check_operator_class, Route.KEYWORD: routes.check_free_text,
    Route.REFERENCE: routes.check_free_text, Route.EXCLUSION_ELEMENT: routes.check_exclusion_element,
    Route.COLLATION: routes.check_free_text, Route.SETTING: routes.check_setting_value,
}
# Fields whose check is narrower than their route's.
_FIELD_CHECKS = {
    ("module", "extensions"): routes.check_extension_name,
    ("function", "language"): routes.check_language,
}

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")
_ORDER_SUFFIX = re.compile(r"^(?P<expr>.*?)(?:\s+(?P<dir>asc|desc))?(?:\s+nulls\s+(?P<nulls>first|last))?\s*$",
                           re.IGNORECASE | re.DOTALL)
_EVENTS = ("insert", "update", "delete", "truncate")


@dataclass
class _Template:
    name: str
    pattern: str
    function: str
    timing: str
    events: tuple[str, ...]
    for_each: str
    when: str | None
    has_column: str | None
    tagged: str | None
    tables: tuple[str, ...] | None
    excluded: tuple[str, ...]
    pos: SourcePos
    rfc: str | None = None


@dataclass
class _Parts:
    """Everything read from all files, before cross-file resolution."""

    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, EnumType] = field(default_factory=dict)
    composite_types: dict[str, CompositeType] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    extensions: dict[str, Extension] = field(default_factory=dict)
    sequences: dict[str, SequenceObject] = field(default_factory=dict)
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    default_privileges: dict[str, DefaultPrivilege] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    templates: list[_Template] = field(default_factory=list)
    # Where each global name was declared, for duplicate reports: name -> (kind, pos).
    declared: dict[str, tuple[str, SourcePos]] = field(default_factory=dict)
    # Index names are unique per schema: (schema, index name) -> where declared.
    index_names: dict[tuple[str, str], SourcePos] = field(default_factory=dict)
    # Role names used by grants and policies, with where: checked against the declared roles.
    role_uses: list[tuple[str, SourcePos | None]] = field(default_factory=list)


_PARTS_FIELDS = tuple(part.name for part in dataclass_fields(_Parts))
_CACHED_CLASSES = load_cache.Codec((_Parts, _Template))  # what one file's entry in the load cache may hold


def load_schema(path: str | Path) -> Schema:
    """Load every ``*.yaml`` file of a directory (or one file) into a model.

    Raises:
        SchemaLoadError: with every problem found, each located as ``file:line:col``.
    """
    root = Path(path)
    problems: list[Problem] = []
    if root.is_dir():
        files = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
        if not files:
            raise SchemaLoadError([Problem(None, f"{display_path(root)}: no *.yaml files in the schema directory")])
    elif root.is_file():
        files = [root]
    else:
        raise SchemaLoadError([Problem(None, f"{display_path(root)}: schema directory not found")])
    # Loading builds millions of small, acyclic objects; the cyclic garbage collector would
    # rescan the growing heap again and again (3x slower at 10,000 tables) for nothing.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_files(files, problems)
    finally:
        if gc_was_enabled:
            gc.enable()


def _load_files(files: list[Path], problems: list[Problem]) -> Schema:
    parts = _Parts()
    cache = load_cache.active()
    sources = [_Source.of(file, cache) for file in files]
    alone = _read_alone_on_every_core(sources, cache)
    sources.reverse()  # taken in file order: each file's bytes are let go once it is merged
    for index in range(len(files)):
        _load_file(sources.pop(), parts, problems, cache, alone.pop(index, None))
    schema = _resolve(parts, problems)
    if problems:
        raise SchemaLoadError(sorted(problems, key=lambda p: (p.pos or SourcePos("", 0, 0))))
    return schema


@dataclass(frozen=True, slots=True)
class _Source:
    """One schema file as read from disk: its bytes (None: unreadable) and its load cache key."""

    file: Path
    display: str
    data: bytes | None
    key: str | None

    @classmethod
    def of(cls, file: Path, cache: load_cache.LoadCache | None) -> _Source:
        display = display_path(file)
        data = read_bytes(file)
        key = cache.key(display, file.stem, data) if cache is not None and data is not None else None
        return cls(file, display, data, key)


# A file read alone had problems: read it again against everything read before it.
_HAS_PROBLEMS = "problems"
# Below this many bytes of files to read, forking costs more than the second core saves.
PARALLEL_FROM_BYTES = 1 << 20


def _load_file(source: _Source, parts: _Parts, problems: list[Problem], cache: load_cache.LoadCache | None,
               alone: _Parts | str | None = None) -> None:
    """Read one file into ``parts``: from ``alone`` (the file read on its own beforehand, or
    :data:`_HAS_PROBLEMS`), from the load cache when it holds the file's bytes, else from YAML.

    A file is read on its own first (into empty parts) so that what it declares can be kept in the
    cache; when it has problems, or declares a name an earlier file declared too, it is read again
    against everything read so far, exactly as if it had never been read alone.
    """
    if alone is None and source.key is not None and cache is not None:
        cached = cache.get(source.key, _CACHED_CLASSES)
        if isinstance(cached, _Parts):
            alone = cached
    if isinstance(alone, _Parts) and _merge(parts, alone):
        return
    own_problems = list[Problem]()
    node = compose_file(source.file, source.display, own_problems, source.data)
    if node is None:
        problems += own_problems
        if not problems:
            problems.append(Problem(SourcePos(source.display, 1, 1), "empty file: expected 'module: NAME'"))
        return
    if alone is None:
        alone = _Parts()
        _ModuleReader(NodeReader(source.display, own_problems), alone, source.file.stem).read(node)
        if not own_problems and _merge(parts, alone):
            if source.key is not None and cache is not None:
                cache.put(source.key, alone, _CACHED_CLASSES)
            return
    _ModuleReader(NodeReader(source.display, problems), parts, source.file.stem).read(node)


def _read_alone(source: _Source) -> _Parts | str | None:
    """The file read on its own: its parts, :data:`_HAS_PROBLEMS`, or None (not composed: no node)."""
    own_problems = list[Problem]()
    node = compose_file(source.file, source.display, own_problems, source.data)
    if node is None:
        return None
    alone = _Parts()
    _ModuleReader(NodeReader(source.display, own_problems), alone, source.file.stem).read(node)
    return _HAS_PROBLEMS if own_problems else alone


def _read_alone_on_every_core(sources: list[_Source], cache: load_cache.LoadCache | None) -> dict[int, _Parts | str]:
    """Files the load cache does not hold, read alone by this process and forked ones, by index.

    Each child reads its share, writes each file's load cache entry itself and hands the parent
    the same bytes; the parse cache's new answers come back too. The parent merges every file
    in order afterwards (:func:`_load_file`), so problems, their order and the model are those of
    one process. Only for large schemas (:data:`PARALLEL_FROM_BYTES`) on more than one core.
    """
    todo = [index for index, source in enumerate(sources) if source.data is not None
            and (source.key is None or cache is None or not cache.path(source.key).exists())]
    count = min(workers.processes(), len(todo))
    if count < 2 or sum(len(sources[i].data or b"") for i in todo) < PARALLEL_FROM_BYTES or not workers.can_fork():
        return {}
    if cache is not None:
        cache.misses += len(todo)  # as if each had been asked for: none is
    split = workers.shares([len(sources[i].data or b"") for i in todo], count)
    started: list[workers.Worker] = []
    found: dict[int, _Parts | str] = {}
    try:
        for share in split[1:]:
            with contextlib.suppress(OSError):  # no process to be had: its files are read here, in order
                started.append(workers.start(partial(_read_share, [todo[i] for i in share], sources, cache)))
        for index in (todo[i] for i in split[0]):
            try:
                read = _read_alone(sources[index])
            except Exception:  # noqa: BLE001 - read again in order, so the same error stops the load at the same file
                continue
            if read is not None:
                found[index] = read
            key = sources[index].key
            if isinstance(read, _Parts) and key is not None and cache is not None:
                cache.put(key, read, _CACHED_CLASSES)
        for worker in started:
            for number, data in workers.collect(worker):
                if number == _PARSE_ANSWERS:
                    with contextlib.suppress(ValueError, EOFError, TypeError):  # only answers lost
                        parse_cache.adopt(marshal.loads(data))
                elif not data:
                    found[number] = _HAS_PROBLEMS
                else:
                    with contextlib.suppress(Exception):  # an entry that does not load: read the file here
                        found[number] = _CACHED_CLASSES.loads(data)
    finally:
        for worker in started:
            workers.stop(worker)
    return found


_PARSE_ANSWERS = -1  # a worker's last record: what it added to the parse cache


def _read_share(indexes: list[int], sources: list[_Source], cache: load_cache.LoadCache | None,
                send: workers.Send) -> None:
    """A worker's job: each file read alone, sent (and kept in the load cache) when it has no problem."""
    for index in indexes:
        read = _read_alone(sources[index])
        if isinstance(read, str):  # _HAS_PROBLEMS
            send(index, b"")
        elif isinstance(read, _Parts):
            data = load_cache.encode(read, _CACHED_CLASSES)
            if data is not None:
                key = sources[index].key
                if key is not None and cache is not None:
                    cache.write(key, data)
                send(index, data)
    send(_PARSE_ANSWERS, marshal.dumps(parse_cache.learnt()))


def _merge(parts: _Parts, alone: _Parts) -> bool:
    """Add one file's objects to ``parts``; False (and nothing added) when a name is in both.

    Every check one file makes against the others is a name found in one of these dicts
    (declared names, index names, extensions, schemas, roles, modules...): with no name in
    common, reading the file alone and merging is the same as reading it after the others.
    """
    pairs = [(getattr(parts, name), getattr(alone, name)) for name in _PARTS_FIELDS]
    if any(isinstance(mine, dict) and not mine.keys().isdisjoint(theirs) for mine, theirs in pairs):
        return False
    for mine, theirs in pairs:
        if isinstance(mine, dict):
            mine.update(theirs)
        else:
            mine.extend(theirs)
    return True


def function_returns(text: str) -> str:
    """``TRIGGER`` -> ``trigger``, ``setof Text`` -> ``SETOF text``: the spelling pg_get_function_result uses."""
    words = " ".join(text.split())
    for keyword in ("setof ", "table"):
        if words.lower().startswith(keyword):
            return keyword.upper() + words[len(keyword):].lower()
    return words.lower()


def function_body(text: str) -> str:
    """The body as PostgreSQL stores it (``prosrc``) when rendered between dollar quotes on lines of their own.

    With ``exact_body: true`` the body is kept exactly as written instead.
    """
    return "\n" + text.strip("\n").rstrip() + "\n"


def _label(key: str, what: str) -> str:
    return f"name of {what}" if key == "(name)" else f"{key} of {what}"
def _split_names(text: str) -> list[str]:
    """``a, "b,c"`` -> ``['a', '"b,c"']``: commas outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


# Parameters whose value is a list of names (GUC_LIST_QUOTE): PostgreSQL keeps them quoted as identifiers.
_NAME_LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces"})


def setting_value(name: str, text: str) -> str:
    """A ``SET name = value`` clause's value as PostgreSQL keeps it in ``proconfig``.

    ``search_path: pg_catalog, public`` -> ``pg_catalog, public``; ``"$user"`` stays quoted.
    """
    if name not in _NAME_LIST_SETTINGS:
        return text.strip()
    items = []
    for part in _split_names(text):
        item = part.strip()
        parsed = parse_name(item) if item.startswith('"') else item.lower()
        item = parsed if parsed is not None else item
        items.append('"' + item.replace('"', '""') + '"' if needs_quotes(item) else item)
    return ", ".join(items)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def display_path(path: Path) -> str:
    """Paths relative to the working directory when possible: ``schema/auth.yaml``."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _ModuleReader:
    def __init__(self, reader: NodeReader, parts: _Parts, stem: str) -> None:
        self.r = reader
        self.parts = parts
        self.stem = stem
        self.module = stem
        self.schema: str | None = None  # the module's PostgreSQL schema; None: the home schema
        self._first: dict[Any, Any] = {}
        # The one empty mapping of the file's tables (most have no trigger, exclusion, policy or grant: four
        # empty dicts a table, ~3 MB at 10,000 tables). Safe because the model is never changed in place.
        self._none: dict[Any, Any] = {}

    def same(self, value: _T) -> _T:
        """The first equal value this file made (names, column lists, index keys, actions): 100 tables of a
        file then hold one ``("id",)``, one ``"cascade"``, one ``lower(title)`` key instead of 100 copies
        (~10 MiB at 10,000 tables). Only for values whose equality is identity of meaning (str, tuples of
        them, frozen sets of tags, IndexElement); the load cache's pickle keeps the sharing."""
        return self._first.setdefault(value, value)  # type: ignore[no-any-return]

    # -- module -------------------------------------------------------------
    def read(self, node: yaml.Node) -> None:
        items = self.r.mapping(node, "module file")
        if items is None:
            return
        values = {key: (key_node, value) for key, key_node, value in self.r.check_keys(items, MODULE_KEYS,
                                                                                       "module file")}
        if "module" not in values:
            self.r.problem(node, "missing required key 'module'")
        else:
            name = self.text(values["module"][1], "module", "module", "module file")
            if name is not None:
                if name != self.stem:
                    self.r.problem(values["module"][1],
                                   f"module '{name}' must be declared in a file named {name}.yaml")
                self.module = name
        description = None
        if "description" in values:
            description = self.text(values["description"][1], "module", "description", "module file")
        self.parts.modules[self.module] = Module(self.module, description, self.r.file)
        if "schema" in values:
            self.read_schema(values["schema"][0], values["schema"][1])
        readers = {
            "extensions": self.read_extensions, "roles": self.read_roles, "enums": self.read_enums,
            "types": self.read_types, "sequences": self.read_sequences, "functions": self.read_functions,
            "trigger_templates": self.read_templates, "tables": self.read_tables, "views": self.read_views,
            "default_privileges": self.read_default_privileges,
        }
        for key, reader in readers.items():
            if key in values:
                reader(values[key][1])

    def text(self, node: yaml.Node, kind: str, key: str, what: str, *, allow_scalars: bool = False) -> str | None:
        """One text field, read and checked on its route (:data:`FIELD_ROUTES`); None, with a located
        problem, when it is not what it declares."""
        label = _label(key, what)
        value = self.r.string(node, label, allow_scalars=allow_scalars)
        return None if value is None else self.check(value, node, kind, key, label)

    def texts(self, node: yaml.Node, kind: str, key: str, what: str) -> list[tuple[str, yaml.Node]] | None:
        """A list of text items (or one text), each checked on the field's route; refused items are left out."""
        label = _label(key, what)
        items = self.r.string_list(node, label)
        if items is None:
            return None
        return [(text, item) for text, item in items if self.check(text, item, kind, key, label) is not None]

    def check(self, text: str, node: yaml.Node, kind: str, key: str, label: str) -> str | None:
        """``text`` as its field's route accepts it (possibly canonical), or None and a located problem."""
        route = FIELD_ROUTES[(kind, key)]  # a field without a route is a bug: fail loudly, never pass it through
        checker = _FIELD_CHECKS.get((kind, key)) or _ROUTE_CHECKS.get(route)
        if checker is None:
            return text
        try:
            return checker(text)
        except RouteError as error:
            self.r.problem(node, f"{label}: {error}")
            return None

    def declare(self, text: str, kind: str, node: yaml.Node) -> str | None:
        """Register a name of the module's schema; its model key, or None (and a problem)."""
        pos = self.r.pos(node)
        name = self.name(text, node, f"{kind} name")
        if name is None:
            return None
        if "." in name:
            self.r.problem(node, f"{kind} name {text!r} contains a dot, which a schema-qualified reference "
                                 "could not tell from a schema name")
            return None
        key = qualify(self.schema, name)
        previous = self.parts.declared.get(key)
        if previous:
            other_kind, other_pos = previous
            self.r.problem(node, f"duplicate name '{key}': {kind} here, {other_kind} already declared at "
                                 f"{other_pos}")
            return None
        self.parts.declared[key] = (kind, pos)
        return key

    def name(self, text: str, node: yaml.Node, what: str) -> str | None:
        """A bare identifier, or the quoted-name form (``'"Order Items"'``); None (and a problem) otherwise."""
        name = parse_name(text)
        if name is None:
            self.r.problem(node, f"{what} {text!r} is not a valid identifier; write a name that needs quoting "
                                 'as PostgreSQL does, between double quotes: \'"Order Items"\'')
            return None
        return self.same(name)

    def names(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        """A list of names (or one name)."""
        found = []
        for text, item in self.r.string_list(node, what) or []:
            name = self.name(text, item, f"item of {what}")
            if name is not None:
                found.append(name)
        return self.same(tuple(found))

    def references(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        """A list of (maybe schema-qualified) object names -> their keys."""
        found = []
        for text, item in self.r.string_list(node, what) or []:
            key = self.reference(text, item, f"item of {what}")
            if key is not None:
                found.append(key)
        return tuple(found)

    def reference(self, text: str, node: yaml.Node, what: str) -> str | None:
        """A possibly schema-qualified object name -> its model key."""
        parts = parse_qualified(text)
        if parts is None or len(parts) > 2 or any("." in part for part in parts):
            self.r.problem(node, f"{what} {text!r} is not a name or a schema-qualified name")
            return None
        return qualify(parts[0], parts[1]) if len(parts) == 2 else parts[0]

    def role(self, text: str, node: yaml.Node, what: str) -> str | None:
        """A role name (``public`` is PUBLIC), remembered for the check against the declared roles."""
        name = self.name(text, node, what)
        if name is not None:
            name = PUBLIC_ROLE if name.lower() == PUBLIC_ROLE else name
            self.parts.role_uses.append((name, self.r.pos(node)))
        return name

    def grants(self, node: yaml.Node, kind: str, what: str) -> dict[str, tuple[str, ...]] | None:
        """``{role: [select, insert], other: [all]}`` -> the model's grants; ``all`` expands to the kind's rights."""
        items = self.r.mapping(node, f"grants of {what}")
        if items is None:
            return None
        allowed = PRIVILEGES[kind] + (TABLE_PRIVILEGES_EXTRA if kind == "table" else ())
        found: dict[str, tuple[str, ...]] = {}
        for grantee_text, key_node, value in items:
            grantee = self.role(grantee_text, key_node, f"grantee of {what}")
            if grantee is None:
                continue
            privileges: set[str] = set()
            for privilege_text, item in self.r.string_list(value, f"privileges of {grantee} on {what}") or []:
                words = " ".join(privilege_text.lower().split())
                option = words.endswith(" with grant option")
                base = words.removesuffix(" with grant option")
                names = PRIVILEGES[kind] if base in ("all", "all privileges") else (base,)
                if any(name not in allowed for name in names):
                    self.r.problem(item, f"privilege {privilege_text!r} of {grantee} on {what}: expected "
                                         f"{', '.join(allowed)} or all (optionally 'with grant option')")
                    continue
                privileges.update(f"{name} with grant option" if option else name for name in names)
            if grantee in found:
                self.r.problem(key_node, f"grantee {grantee} listed twice in grants of {what}")
            found[grantee] = tuple(sorted(privileges))
        return {grantee: found[grantee] for grantee in sorted(found) if found[grantee]}

    def meta(self, node: yaml.Node, items: list[tuple[str, yaml.Node, yaml.Node]] | None = None,
             what: str = "") -> Meta:
        """Position, waivers, rfc, deprecation and per-key positions of one object."""
        waivers: tuple[Waiver, ...] = ()
        rfc = renamed = None
        deprecated = None
        for key, _key_node, value in items or []:
            if key == "waive":
                waivers = self.read_waivers(value, what)
            elif key == "rfc":
                rfc = self.text(value, "table", "rfc", what)
            elif key == "renamed_from":
                renamed = self.text(value, "table", "renamed_from", what)
            elif key == "deprecated":
                deprecated = self.read_deprecation(value, what)
        return located_meta(self.r.file, node, items or [], (waivers, rfc, deprecated, renamed))

    def read_waivers(self, node: yaml.Node, what: str) -> tuple[Waiver, ...]:
        items = self.r.mapping(node, f"waive of {what}")
        if items is None:
            return ()
        waivers = []
        for code, key_node, value in items:
            reason = self.r.scalar(value) if hasattr(value, "tag") and value.tag.endswith(":str") else None
            if not isinstance(reason, str) or not reason.strip():
                reason = ""  # lint reports a waiver without a reason
            if self.check(code, key_node, "waive", "(name)", f"waiver code of {what}") is None or \
                    self.check(reason, value, "waive", "(value)", f"waiver reason of {what}") is None:
                continue
            waivers.append(Waiver(code, reason.strip(), self.r.pos(key_node)))
        return tuple(waivers)

    def read_deprecation(self, node: yaml.Node, what: str) -> Deprecation | None:
        items = self.r.mapping(node, f"deprecated of {what}")
        if items is None:
            return None
        fields: dict[str, str | None] = {"since": None, "rfc": None, "note": None}
        for key, _, value in self.r.check_keys(items, keys("deprecated"), f"deprecated of {what}"):
            scalar = self.r.scalar(value) if isinstance(value, yaml.ScalarNode) else None
            if key == "since" and isinstance(scalar, date):  # `since: 2026-12-01` is a YAML date
                fields[key] = scalar.isoformat()
                continue
            fields[key] = self.text(value, "deprecated", key, f"deprecated of {what}", allow_scalars=True)
        if not fields["since"]:
            self.r.problem(node, f"deprecated of {what} needs 'since' (a date or version)")
            return None
        return Deprecation(fields["since"] or "", fields["rfc"], fields["note"])

    # -- extensions, enums, composite types ----------------------------------
    def read_extensions(self, node: yaml.Node) -> None:
        """``[pgcrypto, {name: citext, version: "1.6", schema: ext}]``."""
        items = [node] if isinstance(node, yaml.ScalarNode) else self.r.sequence(node, "extensions") or []
        for item in items:
            version = schema = None
            if isinstance(item, yaml.MappingNode):
                values = {k: v for k, _, v in self.r.check_keys(self.r.mapping(item, "extension") or [],
                                                                EXTENSION_KEYS, "extension")}
                if "name" not in values:
                    self.r.problem(item, "extension needs 'name'")
                    continue
                text = self.r.string(values["name"], "name of extension")
                if "version" in values:
                    version = self.text(values["version"], "extension", "version", "extension", allow_scalars=True)
                if "schema" in values:
                    schema_text = self.r.string(values["schema"], "schema of extension")
                    schema = self.name(schema_text, values["schema"], "schema of extension") if schema_text \
                        else None
                    schema = None if schema == HOME_SCHEMA else schema
            else:
                text = self.r.string(item, "item of extensions")
            name = self.name(text, item, "extension") if text is not None else None
            if name is None:
                continue
            if name in self.parts.extensions:
                self.r.problem(item, f"duplicate extension '{name}'")
                continue
            self.parts.extensions[name] = Extension(name, self.module, Meta(self.r.pos(item)), version=version,
                                                    schema=schema)

    def read_schema(self, key_node: yaml.Node, node: yaml.Node) -> None:
        """``schema: audit`` or ``schema: {name: audit, comment: ..., grants: {...}}``: where the module lives."""
        comment = grants = None
        items = None
        if isinstance(node, yaml.MappingNode):
            items = self.r.mapping(node, "schema") or []
            values = {k: v for k, _, v in self.r.check_keys(items, SCHEMA_KEYS, "schema")}
            if "name" not in values:
                self.r.problem(node, "schema needs 'name'")
                return
            text = self.r.string(values["name"], "name of schema")
            if "comment" in values:
                comment = self.text(values["comment"], "schema", "comment", "schema")
            if "grants" in values:
                grants = self.grants(values["grants"], "schema", f"schema of module {self.module}")
        else:
            text = self.r.string(node, "schema")
        name = self.name(text, node, "schema") if text is not None else None
        if name is None:
            return
        if "." in name:
            self.r.problem(node, f"schema name {text!r} contains a dot")
            return
        if name == HOME_SCHEMA:
            if items:
                self.r.problem(node, f"the home schema {HOME_SCHEMA} takes no comment or grants here")
            return
        self.schema = name
        if items is None and name in self.parts.namespaces:
            return  # declared (maybe with its comment and grants) by another module
        previous = self.parts.namespaces.get(name)
        if previous is not None and items is not None and (previous.comment is not None or previous.grants):
            self.r.problem(node, f"schema {name}: comment and grants already declared at {previous.meta.pos}")
            return
        self.parts.namespaces[name] = Namespace(name, comment, grants or {}, self.module,
                                                self.meta(key_node, items, f"schema {name}"))

    def read_roles(self, node: yaml.Node) -> None:
        for text, key_node, value in self.r.mapping(node, "roles") or []:
            name = self.name(text, key_node, "role name")
            if name is None:
                continue
            what = f"role {name}"
            items = self.r.mapping(value, what)
            if items is None:
                continue
            values = {k: v for k, _, v in self.r.check_keys(items, ROLE_KEYS, what)}
            flags = {key: bool(self.r.boolean(values[key], f"{key} of {what}")) if key in values else default
                     for key, default in (("login", False), ("inherit", True), ("createdb", False),
                                          ("createrole", False), ("bypassrls", False))}
            limit = self.r.integer(values["connection_limit"], f"connection_limit of {what}") \
                if "connection_limit" in values else -1
            member_of = tuple(sorted(self.names(values["member_of"], f"member_of of {what}"))) \
                if "member_of" in values else ()
            comment = self.text(values["comment"], "role", "comment", what) if "comment" in values else None
            if name in self.parts.roles:
                self.r.problem(key_node, f"duplicate role '{name}' (first declared at "
                                         f"{self.parts.roles[name].meta.pos})")
                continue
            if name.lower() == PUBLIC_ROLE or name.startswith("pg_"):
                self.r.problem(key_node, f"{what}: PUBLIC and pg_* roles are PostgreSQL's own, not declared")
                continue
            self.parts.roles[name] = Role(name, flags["login"], flags["inherit"], flags["createdb"],
                                          flags["createrole"], flags["bypassrls"], -1 if limit is None else limit,
                                          member_of, comment, self.module, self.meta(key_node, items, what))

    def read_sequences(self, node: yaml.Node) -> None:
        for text, key_node, value in self.r.mapping(node, "sequences") or []:
            what = f"sequence {text}"
            items = self.r.mapping(value, what)
            if items is None:
                continue
            values = {k: v for k, _, v in self.r.check_keys(items, SEQUENCE_KEYS, what)}
            sequence_type = "bigint"
            if "type" in values:
                sequence_type = self.type_of(values["type"], what) or "bigint"
                if sequence_type not in ("smallint", "integer", "bigint"):
                    self.r.problem(values["type"], f"type of {what} must be smallint, integer or bigint")
            numbers: dict[str, int | None] = {}
            for key in ("start", "increment", "min_value", "max_value", "cache"):
                numbers[key] = self.r.integer(values[key], f"{key} of {what}") if key in values else None
            increment = numbers["increment"] or 1
            if numbers["increment"] == 0:
                self.r.problem(values["increment"], f"increment of {what} must not be zero")
            start = numbers["start"]
            if start is None:
                start = (numbers["min_value"] or 1) if increment > 0 else (numbers["max_value"] or -1)
            cycle = bool(self.r.boolean(values["cycle"], f"cycle of {what}")) if "cycle" in values else False
            owned_by = None
            if "owned_by" in values:
                owned_text = self.r.string(values["owned_by"], f"owned_by of {what}")
                parts = parse_qualified(owned_text) if owned_text else None
                if parts is None or len(parts) not in (2, 3):
                    self.r.problem(values["owned_by"], f"owned_by of {what} must be 'table.column' or "
                                                       "'schema.table.column'")
                else:
                    owned_by = f"{qualify(parts[0], parts[1]) if len(parts) == 3 else parts[0]}.{parts[-1]}"
            comment = self.text(values["comment"], "sequence", "comment", what) if "comment" in values else None
            grants = self.grants(values["grants"], "sequence", what) if "grants" in values else {}
            declared = self.declare(text, "sequence", key_node)
            if declared is not None:
                self.parts.sequences[declared] = SequenceObject(
                    declared, sequence_type, start, increment, numbers["min_value"], numbers["max_value"],
                    1 if numbers["cache"] is None else numbers["cache"], cycle, owned_by, comment, grants or {},
                    self.module, self.meta(key_node, items, what))

    def read_default_privileges(self, node: yaml.Node) -> None:
        """``[{for_role: owner, schema: public, on: tables, grants: {app: [select]}}]``."""
        for item in self.r.sequence(node, "default_privileges") or []:
            items = self.r.mapping(item, "default privileges")
            if items is None:
                continue
            values = {k: v for k, _, v in self.r.check_keys(items, DEFAULT_PRIVILEGE_KEYS, "default privileges")}
            missing = [k for k in ("for_role", "on", "grants") if k not in values]
            if missing:
                self.r.problem(item, f"default privileges need {', '.join(missing)}")
                continue
            role_text = self.r.string(values["for_role"], "for_role of default privileges")
            for_role = self.role(role_text, values["for_role"], "for_role") if role_text else None
            on = (self.r.string(values["on"], "on of default privileges") or "").lower()
            if on not in DEFAULT_PRIVILEGE_TARGETS:
                self.r.problem(values["on"], f"on of default privileges must be one of "
                                             f"{', '.join(DEFAULT_PRIVILEGE_TARGETS)}")
                continue
            schema = None
            if "schema" in values:
                schema_text = self.r.string(values["schema"], "schema of default privileges")
                schema = self.name(schema_text, values["schema"], "schema") if schema_text else None
                if on == "schemas" and schema is not None:
                    self.r.problem(values["schema"], "default privileges on schemas cannot name a schema")
            kind = on.removesuffix("s")
            grants = self.grants(values["grants"], kind, f"default privileges on {on}")
            if for_role is None or grants is None:
                continue
            entry = DefaultPrivilege(for_role, on, schema, grants, self.module,  # type: ignore[arg-type]
                                     self.meta(item, items, f"default privileges on {on}"))
            if entry.key in self.parts.default_privileges:
                self.r.problem(item, f"default privileges for role {for_role} on {on}"
                                     f"{' in schema ' + schema if schema else ''} declared twice")
                continue
            if schema is None and grants == dict(default_grants(kind)):
                continue  # exactly PostgreSQL's own default
            self.parts.default_privileges[entry.key] = entry

    def read_enums(self, node: yaml.Node) -> None:
        for name, key_node, value in self.r.mapping(node, "enums") or []:
            what = f"enum {name}"
            comment = None
            items = None
            values_node: yaml.Node | None = value
            if isinstance(value, yaml.MappingNode):
                items = self.r.mapping(value, what) or []
                values_node = None
                for key, _, sub in self.r.check_keys(items, keys("enum"), what):
                    if key == "values":
                        values_node = sub
                    elif key == "comment":
                        comment = self.text(sub, "enum", "comment", what)
                if values_node is None:
                    self.r.problem(value, f"{what} needs 'values'")
                    continue
            assert values_node is not None
            values = [text for text, _ in self.texts(values_node, "enum", "values", what) or []]
            duplicates = [v for v, count in Counter(values).items() if count > 1]
            if duplicates:
                self.r.problem(values_node, f"{what} repeats value(s): {', '.join(duplicates)}")
            if not values:
                self.r.problem(values_node, f"{what} needs at least one value")
            declared = self.declare(name, "enum", key_node)
            if declared is not None:
                self.parts.enums[declared] = EnumType(declared, tuple(values), comment, self.module,
                                                 self.meta(key_node, items, what))

    def read_types(self, node: yaml.Node) -> None:
        for name, key_node, value in self.r.mapping(node, "types") or []:
            what = f"type {name}"
            items = self.r.mapping(value, what)
            if items is None:
                continue
            attributes: list[CompositeAttribute] = []
            comment = None
            for key, _, sub in self.r.check_keys(items, keys("type"), what):
                if key == "comment":
                    comment = self.text(sub, "type", "comment", what)
                elif key == "attributes":
                    for attr_text, attr_node, type_node in self.r.mapping(sub, f"attributes of {what}") or []:
                        attr = self.name(attr_text, attr_node, f"attribute of {what}")
                        type_text = self.type_of(type_node, f"attribute {name}.{attr_text}")
                        if type_text and attr is not None:
                            attributes.append(CompositeAttribute(attr, type_text))
            if not attributes:
                self.r.problem(value, f"{what} needs 'attributes'")
            declared = self.declare(name, "type", key_node)
            if declared is not None:
                self.parts.composite_types[declared] = CompositeType(declared, tuple(attributes), comment, self.module,
                                                                self.meta(key_node, items, what))

    def type_of(self, node: yaml.Node, what: str) -> str | None:
        text = self.r.string(node, f"type of {what}")
        if text is None:
            return None
        try:
            return routes.check_type(text)
        except RouteError:
            self.r.problem(node, f"type of {what} is not a type: {text!r}")
            return None

    # -- functions and trigger templates -------------------------------------
    def read_functions(self, node: yaml.Node) -> None:
        for name, key_node, value in self.r.mapping(node, "functions") or []:
            what = f"function {name}"
            items = self.r.mapping(value, what)
            if items is None:
                continue
            fields: dict[str, object] = {"arguments": "", "volatility": "volatile", "security_definer": False,
                                         "strict": False, "leakproof": False, "parallel": "unsafe"}
            extra: dict[str, object] = {}
            present: set[str] = set()
            for key, _, sub in self.r.check_keys(items, FUNCTION_KEYS, what):
                present.add(key)
                if key in ("security_definer", "strict", "leakproof"):
                    fields[key] = self.r.boolean(sub, f"{key} of {what}")
                elif key == "exact_body":
                    # The body as written, not put on lines of its own (inspect writes bodies PostgreSQL
                    # keeps otherwise so).
                    fields[key] = self.r.boolean(sub, f"{key} of {what}")
                elif key == "arguments" and isinstance(sub, yaml.ScalarNode) and sub.value == "":
                    fields[key] = ""
                elif key == "returns":
                    returns = self.r.string(sub, f"{key} of {what}")
                    fields[key] = None if returns is None else \
                        self.check(function_returns(returns), sub, "function", key, f"{key} of {what}")
                elif key in ("language", "arguments", "body", "volatility", "comment", "parallel"):
                    fields[key] = self.text(sub, "function", key, what)
                elif key in ("cost", "rows"):
                    number = self.r.scalar(sub) if isinstance(sub, yaml.ScalarNode) else None
                    if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                        self.r.problem(sub, f"{key} of {what} must be a positive number")
                    else:
                        extra[key] = float(number)
                elif key == "settings":
                    extra["settings"] = self.read_settings(sub, what)
                elif key == "grants":
                    extra["grants"] = self.grants(sub, "function", what)
            for required in ("returns", "language", "body"):
                if required not in present:
                    self.r.problem(value, f"{what} needs '{required}'")
            volatility = str(fields.get("volatility") or "volatile").lower()
            if volatility not in ("volatile", "stable", "immutable"):
                self.r.problem(value, f"volatility of {what} must be volatile, stable or immutable")
            parallel = str(fields.get("parallel") or "unsafe").lower()
            if parallel not in PARALLEL_SAFETY:
                self.r.problem(value, f"parallel of {what} must be one of {', '.join(PARALLEL_SAFETY)}")
            declared = self.declare(name, "function", key_node)
            if declared is not None and all(fields.get(k) for k in ("returns", "language", "body")):
                grants = extra.get("grants")
                self.parts.functions[declared] = Function(
                    name=declared, arguments=str(fields["arguments"] or ""),
                    returns=function_returns(str(fields["returns"])),
                    language=str(fields["language"]).lower(),
                    body=str(fields["body"]) if fields.get("exact_body") else function_body(str(fields["body"])),
                    volatility=volatility,  # type: ignore[arg-type]
                    security_definer=bool(fields["security_definer"]),
                    comment=_text_or_none(fields.get("comment")),
                    module=self.module, meta=self.meta(key_node, items, what),
                    strict=bool(fields["strict"]), leakproof=bool(fields["leakproof"]),
                    parallel=parallel,  # type: ignore[arg-type]
                    cost=extra.get("cost"),  # type: ignore[arg-type]
                    rows=extra.get("rows"),  # type: ignore[arg-type]
                    settings=extra.get("settings") or (),  # type: ignore[arg-type]
                    grants=default_grants("function") if grants is None else grants,  # type: ignore[arg-type]
                )

    def read_settings(self, node: yaml.Node, what: str) -> tuple[tuple[str, str], ...]:
        """``{search_path: "pg_catalog, public", work_mem: 64MB}`` -> sorted (name, value) as PostgreSQL keeps them."""
        found: list[tuple[str, str]] = []
        for name, key_node, value in self.r.mapping(node, f"settings of {what}") or []:
            if not _SETTING_NAME.match(name):
                self.r.problem(key_node, f"setting {name!r} of {what} is not a configuration parameter name")
                continue
            text = self.text(value, "function", "settings", f"setting {name} of {what}", allow_scalars=True)
            if text is None:
                continue
            found.append((name.lower(), setting_value(name.lower(), text)))
        return tuple(sorted(found))

    def read_templates(self, node: yaml.Node) -> None:
        for name, key_node, value in self.r.mapping(node, "trigger_templates") or []:
            what = f"trigger template {name}"
            items = self.r.mapping(value, what)
            if items is None:
                continue
            values = {k: v for k, _, v in self.r.check_keys(items, TEMPLATE_KEYS, what)}
            pattern = self.r.string(values["name"], f"name of {what}") if "name" in values else None
            if pattern and "{table}" not in pattern:
                self.r.problem(values["name"], f"name of {what} must contain '{{table}}'")
                pattern = None
            if pattern and self.check(pattern.replace("{table}", "t"), values["name"], "trigger_template", "name",
                                      f"name of {what}") is None:
                pattern = None
            trig = self.trigger_fields(values, value, what, "trigger_template")
            applies = values.get("applies_to")
            selector = self.read_applies_to(applies, what) if applies is not None else None
            if applies is None:
                self.r.problem(value, f"{what} needs 'applies_to'")
            if pattern is None and "name" not in values:
                self.r.problem(value, f"{what} needs 'name' (e.g. \"trg_{{table}}_{name}\")")
            if pattern and trig and selector:
                has_column, tagged, tables, excluded = selector
                rfc = self.text(values["rfc"], "trigger_template", "rfc", what) if "rfc" in values else None
                self.parts.templates.append(_Template(name, pattern, trig[0], trig[1], trig[2], trig[3], trig[4],
                                                      has_column, tagged, tables, excluded, self.r.pos(key_node), rfc))

    def read_applies_to(self, node: yaml.Node, what: str
                        ) -> tuple[str | None, str | None, tuple[str, ...] | None, tuple[str, ...]] | None:
        items = self.r.mapping(node, f"applies_to of {what}")
        if items is None:
            return None
        has_column = tagged = None
        tables: tuple[str, ...] | None = None
        excluded: tuple[str, ...] = ()
        for key, _, sub in self.r.check_keys(items, keys("applies_to"), f"applies_to of {what}"):
            if key == "has_column":
                has_column = self.text(sub, "applies_to", key, what)
            elif key == "tagged":
                tagged = self.text(sub, "applies_to", key, what)
            elif key == "tables":
                tables = self.references(sub, f"tables of {what}")
            else:
                excluded = self.references(sub, f"except of {what}")
        if sum(x is not None for x in (has_column, tagged, tables)) != 1:
            self.r.problem(node, f"applies_to of {what} needs exactly one of has_column, tagged, tables")
            return None
        return has_column, tagged, tables, excluded

    def trigger_fields(self, values: dict[str, yaml.Node], node: yaml.Node, what: str, kind: str
                       ) -> tuple[str, str, tuple[str, ...], str, str | None] | None:
        ok = True
        function_text = self.text(values["function"], kind, "function", what) if "function" in values else None
        function = self.reference(function_text, values["function"], f"function of {what}") \
            if function_text is not None else None
        if function is None:
            if "function" not in values:
                self.r.problem(node, f"{what} needs 'function'")
            ok = False
        timing = (self.text(values["timing"], kind, "timing", what) or "") if "timing" in values else ""
        timing = timing.lower()
        if timing not in ("before", "after", "instead of"):
            self.r.problem(values.get("timing", node), f"timing of {what} must be before, after or instead of")
            ok = False
        events: list[str] = []
        if "events" not in values:
            self.r.problem(node, f"{what} needs 'events'")
            ok = False
        else:
            for event, event_node in self.texts(values["events"], kind, "events", what) or []:
                if event.lower() not in _EVENTS:
                    self.r.problem(event_node, f"event '{event}' of {what} must be one of {', '.join(_EVENTS)}")
                    ok = False
                events.append(event.lower())
        for_each = "row"
        if "for_each" in values:
            for_each = (self.text(values["for_each"], kind, "for_each", what) or "").lower()
            if for_each not in ("row", "statement"):
                self.r.problem(values["for_each"], f"for_each of {what} must be row or statement")
                ok = False
        when = self.text(values["when"], kind, "when", what) if "when" in values else None
        if not ok or function is None or ("when" in values and when is None):
            return None
        ordered = tuple(e for e in _EVENTS if e in events)
        return function, timing, ordered, for_each, when

    # -- tables ---------------------------------------------------------------
    def read_tables(self, node: yaml.Node) -> None:
        for text, key_node, value in self.r.mapping(node, "tables") or []:
            key = self.declare(text, "table", key_node)
            table = self.read_table(key, key_node, value) if key is not None else None
            if table is not None and key is not None:
                self.parts.tables[key] = table

    def read_table(self, name: str, key_node: yaml.Node, node: yaml.Node) -> Table | None:
        what = f"table {name}"
        bare = split_name(name)[1]
        items = self.r.mapping(node, what)
        if items is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, TABLE_KEYS, what)}
        meta = self.meta(key_node, items, what)
        if "columns" not in values:
            self.r.problem(node, f"{what} needs 'columns' (write 'columns: {{}}' for a table without columns)")
            return None
        columns: list[Column] = []
        pk_columns: list[str] = []
        uniques: dict[str, UniqueConstraint] = {}
        column_fks: list[tuple[str, str, tuple[str, ...], str | None, str | None, yaml.Node, Meta]] = []
        column_items = self.r.mapping(values["columns"], f"columns of {what}")
        for col_name, col_key, col_node in column_items or []:
            read = self.read_column(name, col_name, col_key, col_node)
            if read is None:
                continue
            column, is_pk, is_unique, reference, serial = read
            if serial:
                column = self.serial(name, column, col_key)
            columns.append(column)
            if is_pk:
                pk_columns.append(column.name)
            if is_unique:
                uq_name = f"uq_{bare}_{column.name}"
                uniques[uq_name] = UniqueConstraint(uq_name, self.same((column.name,)), Meta(column.meta.at("unique")))
            if reference:
                column_fks.append((column.name, *reference))
        primary_key = None
        if len(pk_columns) > 1:
            self.r.problem(values["columns"], f"{what}: several columns say primary_key: true; declare a "
                                              "composite key with table-level 'primary_key: [a, b]'")
        elif pk_columns:
            primary_key = PrimaryKey(f"pk_{bare}", self.same(tuple(pk_columns)), Meta(meta.pos))
        if "primary_key" in values:
            if primary_key is not None:
                self.r.problem(values["primary_key"], f"{what}: primary key declared both on a column and on "
                                                      "the table")
            primary_key = self.read_primary_key(name, values["primary_key"])
        foreign_keys = self.name_column_fks(name, column_fks)
        checks: dict[str, CheckConstraint] = {}
        if "unique" in values:
            for uq_name, uq_key, uq_node in self.r.mapping(values["unique"], f"unique of {what}") or []:
                uq = self.read_unique(name, uq_name, uq_key, uq_node)
                if uq:
                    self.add_named(uniques, uq.name, uq, uq_key, what)
        if "checks" in values:
            for ck_name, ck_key, ck_node in self.r.mapping(values["checks"], f"checks of {what}") or []:
                check = self.read_check(name, ck_name, ck_key, ck_node)
                if check:
                    self.add_named(checks, check.name, check, ck_key, what)
        if "foreign_keys" in values:
            for fk_name, fk_key, fk_node in self.r.mapping(values["foreign_keys"],
                                                           f"foreign_keys of {what}") or []:
                fk = self.read_foreign_key(name, fk_name, fk_key, fk_node)
                if fk:
                    self.add_named(foreign_keys, fk.name, fk, fk_key, what)
        indexes: dict[str, Index] = {}
        if "indexes" in values:
            indexes = self.read_indexes(name, values["indexes"], what)
        triggers = self.read_triggers(name, values["triggers"], what) if "triggers" in values else {}
        partition = self.read_partition(values["partition_by"], what) if "partition_by" in values else None
        if partition is not None and self.schema is not None:
            self.r.problem(values["partition_by"], f"{what}: partitioned tables are supported in the home schema "
                                                   f"({HOME_SCHEMA}) only (veza_ensure_partitions names partitions "
                                                   "there)")
        purge = self.read_purge(values["purge"], what, columns, partition) if "purge" in values else None
        comment = self.text(values["comment"], "table", "comment", what) if "comment" in values else None
        tags = self.same(frozenset(t for t, _ in self.texts(values["tags"], "table", "tags", what) or [])) \
            if "tags" in values else frozenset()
        exclusions: dict[str, ExclusionConstraint] = {}
        if "exclusions" in values:
            for ex_name, ex_key, ex_node in self.r.mapping(values["exclusions"], f"exclusions of {what}") or []:
                exclusion = self.read_exclusion(ex_name, ex_key, ex_node)
                if exclusion is not None:
                    self.add_named(exclusions, exclusion.name, exclusion, ex_key, what)
        flags = {key: bool(self.r.boolean(values[key], f"{key} of {what}")) if key in values else False
                 for key in ("unlogged", "row_security", "force_row_security")}
        policies: dict[str, Policy] = {}
        if "policies" in values:
            for po_name, po_key, po_node in self.r.mapping(values["policies"], f"policies of {what}") or []:
                policy = self.read_policy(name, po_name, po_key, po_node)
                if policy is not None:
                    self.add_named(policies, policy.name, policy, po_key, what)
        grants = self.grants(values["grants"], "table", what) if "grants" in values else {}
        for constraint_map in (uniques, checks, foreign_keys, exclusions):
            for constraint_name in constraint_map:
                if primary_key is not None and constraint_name == primary_key.name:
                    self.r.problem(values["columns"], f"{what}: constraint name {constraint_name} is used twice")
        none = self._none
        return Table(name=name, columns=tuple(columns), primary_key=primary_key, uniques=uniques or none,
                     checks=checks or none, foreign_keys=foreign_keys or none, indexes=indexes or none,
                     triggers=triggers or none, partition=partition, comment=comment, purge=purge, module=self.module,
                     tags=tags, meta=meta, exclusions=exclusions or none, unlogged=flags["unlogged"],
                     row_security=flags["row_security"], force_row_security=flags["force_row_security"],
                     policies=policies or none, grants=grants or none)

    def read_triggers(self, table: str, node: yaml.Node, what: str) -> dict[str, Trigger]:
        triggers: dict[str, Trigger] = {}
        for tg_text, tg_key, tg_node in self.r.mapping(node, f"triggers of {what}") or []:
            tg_name = self.name(tg_text, tg_key, f"trigger of {what}")
            tg_items = self.r.mapping(tg_node, f"trigger {tg_text}")
            if tg_items is None or tg_name is None:
                continue
            tg_values = {k: v for k, _, v in self.r.check_keys(tg_items, TRIGGER_KEYS, f"trigger {tg_name}")}
            fields = self.trigger_fields(tg_values, tg_node, f"trigger {tg_name}", "trigger")
            if fields:
                function, timing, events, for_each, when = fields
                triggers[tg_name] = Trigger(tg_name, table, function, timing, events,  # type: ignore[arg-type]
                                            for_each, when,  # type: ignore[arg-type]
                                            meta=self.meta(tg_key, tg_items, f"trigger {tg_name}"))
        return triggers

    def read_policy(self, table: str, text: str, key_node: yaml.Node, node: yaml.Node) -> Policy | None:
        name = self.name(text, key_node, f"policy of table {table}")
        what = f"policy {text} on {table}"
        items = self.r.mapping(node, what)
        if items is None or name is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, POLICY_KEYS, what)}
        command = "all"
        if "command" in values:
            command = (self.r.string(values["command"], f"command of {what}") or "all").lower()
            if command not in POLICY_COMMANDS:
                self.r.problem(values["command"], f"command of {what} must be one of {', '.join(POLICY_COMMANDS)}")
                return None
        permissive = bool(self.r.boolean(values["permissive"], f"permissive of {what}")) \
            if "permissive" in values else True
        roles: tuple[str, ...] = (PUBLIC_ROLE,)
        if "roles" in values:
            found = []
            for role_text, role_node in self.r.string_list(values["roles"], f"roles of {what}") or []:
                role = self.role(role_text, role_node, f"role of {what}")
                if role is not None:
                    found.append(role)
            roles = tuple(sorted(set(found))) or (PUBLIC_ROLE,)
            if PUBLIC_ROLE in roles and len(roles) > 1:
                self.r.problem(values["roles"], f"roles of {what}: public already means every role")
        using = self.r.string(values["using"], f"using of {what}", allow_scalars=True) if "using" in values \
            else None
        with_check = self.r.string(values["with_check"], f"with_check of {what}", allow_scalars=True) \
            if "with_check" in values else None
        if using is not None:  # checked as stored, stripped
            using = self.check(using.strip(), values["using"], "policy", "using", f"using of {what}") or ""
        if with_check is not None:
            with_check = self.check(with_check.strip(), values["with_check"], "policy", "with_check",
                                    f"with_check of {what}") or ""
        if command == "insert" and using is not None:
            self.r.problem(values["using"], f"{what}: an INSERT policy takes only with_check")
        if command in ("select", "delete") and with_check is not None:
            self.r.problem(values["with_check"], f"{what}: a {command.upper()} policy takes only using")
        if using is None and with_check is None:
            self.r.problem(node, f"{what} needs 'using' or 'with_check'")
        return Policy(name, table, command, permissive, roles,  # type: ignore[arg-type]
                      using.strip() if using else None, with_check.strip() if with_check else None,
                      self.meta(key_node, items, what))

    def read_exclusion(self, text: str, key_node: yaml.Node, node: yaml.Node) -> ExclusionConstraint | None:
        name = self.name(text, key_node, "exclusion constraint name")
        what = f"exclusion constraint {text}"
        items = self.r.mapping(node, what)
        if items is None or name is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, EXCLUSION_KEYS, what)}
        if "elements" not in values:
            self.r.problem(node, f"{what} needs 'elements' (e.g. [\"room_id WITH =\", \"during WITH &&\"])")
            return None
        elements = []
        for element, item in self.r.string_list(values["elements"], f"elements of {what}") or []:
            if " with " not in f" {element.lower()} ":
                self.r.problem(item, f"element {element!r} of {what} must read 'expression WITH operator'")
                continue
            checked = self.check(" ".join(element.split()), item, "exclusion", "elements", f"element of {what}")
            if checked is not None:
                elements.append(checked)
        method = (self.text(values["using"], "exclusion", "using", what) or "gist").lower() if "using" in values \
            else "gist"
        if method not in INDEX_METHODS:
            self.r.problem(values["using"], f"using of {what} must be one of {', '.join(INDEX_METHODS)}")
        where = self.r.string(values["where"], f"where of {what}", allow_scalars=True) if "where" in values \
            else None
        if where is not None:  # checked as stored, stripped
            where = self.check(where.strip(), values["where"], "exclusion", "where", f"where of {what}") or ""
        include = self.names(values["include"], f"include of {what}") if "include" in values else ()
        deferrable = bool(self.r.boolean(values["deferrable"], f"deferrable of {what}")) \
            if "deferrable" in values else False
        deferred = bool(self.r.boolean(values["initially_deferred"], f"initially_deferred of {what}")) \
            if "initially_deferred" in values else False
        if deferred and not deferrable:
            self.r.problem(values["initially_deferred"], f"{what}: initially_deferred needs deferrable: true")
        if not elements:
            return None
        return ExclusionConstraint(name, tuple(elements), method, where.strip() if where else None, include,
                                   deferrable, deferred, self.meta(key_node, items, what))

    def add_named(self, target: dict, name: str, value: object, node: yaml.Node, what: str) -> None:
        if name in target:
            self.r.problem(node, f"duplicate constraint name '{name}' in {what}")
            return
        target[name] = value

    def read_column(self, table: str, text: str, key_node: yaml.Node, node: yaml.Node
                    ) -> tuple[Column, bool, bool, tuple[str, tuple[str, ...], str | None, str | None, yaml.Node,
                                                         Meta] | None, bool] | None:
        """(column, primary key?, unique?, column-level reference, serial?)."""
        what = f"column {table}.{text}"
        name = self.name(text, key_node, f"column of table {table}")
        if name is None:
            return None
        if isinstance(node, yaml.ScalarNode) and isinstance(self.r.scalar(node), str):
            # Short form: `name: uuid`.
            serial = SERIAL_TYPES.get(str(self.r.scalar(node)).strip().lower())
            type_text = serial or self.type_of(node, what)
            if type_text is None:
                return None
            return Column(name, type_text, meta=Meta(self.r.pos(key_node))), False, False, None, serial is not None
        items = self.r.mapping(node, what)
        if items is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, COLUMN_KEYS, what)}
        meta = self.meta(key_node, items, what)
        if "type" not in values:
            self.r.problem(node, f"{what} needs 'type'")
            return None
        type_node = values["type"]
        serial = SERIAL_TYPES.get(str(self.r.scalar(type_node)).strip().lower()) \
            if isinstance(type_node, yaml.ScalarNode) else None
        type_text = serial or self.type_of(type_node, what)
        if serial and ("default" in values or "identity" in values or "generated" in values):
            self.r.problem(type_node, f"{what}: a serial column takes its default from its sequence (no default, "
                                      "identity or generated)")
        flags = {}
        for key in ("nullable", "primary_key", "unique"):
            flags[key] = bool(self.r.boolean(values[key], f"{key} of {what}")) if key in values else False
        default = self.text(values["default"], "column", "default", what, allow_scalars=True) \
            if "default" in values else None
        identity = None
        if "identity" in values:
            identity = (self.text(values["identity"], "column", "identity", what) or "").lower()
            if identity not in ("always", "by default"):
                self.r.problem(values["identity"], f"identity of {what} must be 'always' or 'by default'")
                identity = None
        generated = self.text(values["generated"], "column", "generated", what) if "generated" in values else None
        comment = self.text(values["comment"], "column", "comment", what) if "comment" in values else None
        reference = None
        if "references" in values:
            target = self.read_reference(values["references"], what)
            on_delete = self.read_action(values.get("on_delete"), what, "on_delete")
            on_update = self.read_action(values.get("on_update"), what, "on_update")
            if target:
                reference = (target[0], target[1], on_delete, on_update, values["references"], meta)
        else:
            for key in ("on_delete", "on_update"):
                if key in values:
                    self.r.problem(values[key], f"{key} of {what} needs 'references'")
        if flags["primary_key"] and flags["nullable"]:
            self.r.problem(values["nullable"], f"{what}: a primary key column cannot be nullable")
        if identity and flags["nullable"]:
            self.r.problem(values["nullable"], f"{what}: an identity column cannot be nullable")
        collation = None
        if "collation" in values:
            collation_text = self.r.string(values["collation"], f"collation of {what}")
            parts = parse_qualified(collation_text) if collation_text else None
            if parts is None or len(parts) > 2:
                self.r.problem(values["collation"], f"collation of {what} must be a collation name, e.g. C or "
                                                    '"en_US.utf8" (quoted when it needs quotes)')
            else:
                collation = ".".join(ident(part) for part in parts)
        statistics = None
        if "statistics" in values:
            statistics = self.r.integer(values["statistics"], f"statistics of {what}")
            if statistics is not None and not 0 <= statistics <= 10000:
                self.r.problem(values["statistics"], f"statistics of {what} must be between 0 and 10000")
        if type_text is None:
            return None
        counts = self.read_counts(values["counts"], what) if "counts" in values else None
        maintained_by = self.text(values["maintained_by"], "column", "maintained_by", what) \
            if "maintained_by" in values else None
        if counts is not None and maintained_by is not None:
            self.r.problem(values["maintained_by"], f"{what}: give 'counts' (triggers keep it) or 'maintained_by' "
                                                    "(something else does), not both")
        column = Column(name, type_text, nullable=flags["nullable"], default=default,
                        identity=identity,  # type: ignore[arg-type]
                        generated=generated, comment=comment, counts=counts, maintained_by=maintained_by,
                        meta=meta, collation=collation, statistics=statistics)
        return column, flags["primary_key"], flags["unique"], reference, serial is not None

    def serial(self, table: str, column: Column, node: yaml.Node) -> Column:
        """``type: serial``: the sequence PostgreSQL would make (``{table}_{column}_seq``), owned by the column."""
        bare = split_name(table)[1]
        sequence_name = make_object_name(bare, column.name, "seq")
        key = self.declare(format_name(sequence_name), "sequence", node)
        if key is None:
            return column
        self.parts.sequences[key] = SequenceObject(key, column.type, owned_by=f"{table}.{column.name}",
                                                   module=self.module, meta=Meta(self.r.pos(node)))
        return replace(column, default=nextval_default(key))

    def read_counts(self, node: yaml.Node, what: str) -> CounterSpec | None:
        """``counts: {rows_of: table, via: fk column, key: column (id), where: predicate, maintained_by: [...]}``."""
        where_what = f"counts of {what}"
        items = self.r.mapping(node, where_what)
        if items is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, COUNTS_KEYS, where_what)}
        for required in ("rows_of", "via"):
            if required not in values:
                self.r.problem(node, f"{where_what} needs '{required}'")
                return None
        names = {}
        for key in ("rows_of", "via", "key"):
            if key in values:
                names[key] = self.text(values[key], "counts", key, where_what)
                if names[key] is None:
                    return None
        where = None
        if "where" in values:
            where = self.text(values["where"], "counts", "where", where_what, allow_scalars=True)
            if where is None:
                return None
        maintained = tuple(t for t, _ in self.texts(values["maintained_by"], "counts", "maintained_by",
                                                    where_what) or []) \
            if "maintained_by" in values else ()
        if names.get("rows_of") is None or names.get("via") is None:
            return None
        return CounterSpec(str(names["rows_of"]), str(names["via"]), str(names.get("key") or "id"),
                           where.strip() if where else None, maintained)

    def read_reference(self, node: yaml.Node, what: str) -> tuple[str, tuple[str, ...]] | None:
        """``table.column``, ``table(a, b)``, ``schema.table(a)`` or ``schema.table.column`` -> (table key, columns)."""
        text = self.text(node, "column", "references", what)
        if text is None:
            return None
        bad = f"references of {what} must be 'table.column' or 'table(col, ...)' (schema-qualified outside " \
              f"{HOME_SCHEMA}), got {text!r}"
        stripped = text.strip()
        if stripped.endswith(")") and "(" in stripped:
            head, _, inside = stripped[:-1].partition("(")
            parts = parse_qualified(head.strip())
            columns = [parse_name(c.strip()) for c in _split_names(inside)]
            if parts is None or len(parts) > 2 or not columns or None in columns:
                self.r.problem(node, bad)
                return None
            table = qualify(parts[0], parts[1]) if len(parts) == 2 else parts[0]
            return self.same(table), self.same(tuple(self.same(c) for c in columns if c is not None))
        parts = parse_qualified(stripped)
        if parts is None or len(parts) not in (2, 3):
            self.r.problem(node, bad)
            return None
        table = qualify(parts[0], parts[1]) if len(parts) == 3 else parts[0]
        return self.same(table), self.same((self.same(parts[-1]),))

    def read_action(self, node: yaml.Node | None, what: str, key: str) -> str | None:
        if node is None:
            return None
        text = self.text(node, "column", key, what)
        if text is None:
            return None
        action = " ".join(text.lower().replace("_", " ").split())
        if action not in FK_ACTIONS:
            self.r.problem(node, f"{key} of {what} must be one of {', '.join(FK_ACTIONS)}, got {text!r}")
            return None
        return self.same(action)

    def name_column_fks(self, table: str, fks: list) -> dict[str, ForeignKey]:
        """Seed convention: ``fk_{table}_{target}``, with a column suffix when a target repeats."""
        per_target = Counter(target for _, target, *_ in fks)
        named: dict[str, ForeignKey] = {}
        bare = split_name(table)[1]
        for column, target, ref_columns, on_delete, on_update, node, meta in fks:
            target_bare = split_name(target)[1]
            name = f"fk_{bare}_{target_bare}" if per_target[target] == 1 else f"fk_{bare}_{target_bare}_{column}"
            named[name] = ForeignKey(name, self.same((column,)), target, ref_columns, on_delete or "no action",
                                     on_update or "no action", on_delete_explicit=on_delete is not None,
                                     meta=meta.replace(pos=self.r.pos(node)))
        return named

    def deferral(self, values: dict[str, yaml.Node], what: str) -> tuple[bool, bool]:
        deferrable = bool(self.r.boolean(values["deferrable"], f"deferrable of {what}")) \
            if "deferrable" in values else False
        deferred = bool(self.r.boolean(values["initially_deferred"], f"initially_deferred of {what}")) \
            if "initially_deferred" in values else False
        if deferred and not deferrable:
            self.r.problem(values["initially_deferred"], f"{what}: initially_deferred needs deferrable: true")
        return deferrable, deferred

    def read_primary_key(self, table: str, node: yaml.Node) -> PrimaryKey | None:
        what = f"primary_key of table {table}"
        default_name = f"pk_{split_name(table)[1]}"
        if isinstance(node, yaml.MappingNode):
            items = self.r.mapping(node, what) or []
            values = {k: v for k, _, v in self.r.check_keys(items, keys("primary_key"), what)}
            text = self.r.string(values["name"], f"name of {what}") if "name" in values else None
            name = self.name(text, values["name"], f"name of {what}") if text is not None else None
            if "columns" not in values:
                self.r.problem(node, f"{what} needs 'columns'")
                return None
            columns = self.names(values["columns"], what)
            deferrable, deferred = self.deferral(values, what)
            return PrimaryKey(name or default_name, columns, Meta(self.r.pos(node)), deferrable=deferrable,
                              initially_deferred=deferred)
        columns = self.names(node, what)
        if not columns:
            return None
        return PrimaryKey(default_name, columns, Meta(self.r.pos(node)))

    def read_unique(self, table: str, text: str, key_node: yaml.Node, node: yaml.Node) -> UniqueConstraint | None:
        what = f"unique constraint {text}"
        name = self.name(text, key_node, "unique constraint name")
        items = None
        values: dict[str, yaml.Node] = {}
        columns_node: yaml.Node | None = node
        if isinstance(node, yaml.MappingNode):
            items = self.r.mapping(node, what) or []
            values = {k: v for k, _, v in self.r.check_keys(items, keys("unique"), what)}
            columns_node = values.get("columns")
            if columns_node is None:
                self.r.problem(node, f"{what} needs 'columns'")
                return None
        columns = self.names(columns_node, f"columns of {what}") if columns_node is not None else ()
        deferrable, deferred = self.deferral(values, what)
        distinct = bool(self.r.boolean(values["nulls_not_distinct"], f"nulls_not_distinct of {what}")) \
            if "nulls_not_distinct" in values else False
        if not columns or name is None:
            return None
        return UniqueConstraint(name, columns, self.meta(key_node, items, what), deferrable=deferrable,
                                initially_deferred=deferred, nulls_not_distinct=distinct)

    def read_check(self, table: str, text: str, key_node: yaml.Node, node: yaml.Node) -> CheckConstraint | None:
        what = f"check {text}"
        name = self.name(text, key_node, "check constraint name")
        if name is None:
            return None
        items = None
        expr_node: yaml.Node | None = node
        if isinstance(node, yaml.MappingNode):
            items = self.r.mapping(node, what) or []
            values = {k: v for k, _, v in self.r.check_keys(items, keys("check"), what)}
            expr_node = values.get("expression")
            if expr_node is None:
                self.r.problem(node, f"{what} needs 'expression'")
                return None
        expression = self.r.string(expr_node, f"expression of {what}") if expr_node is not None else None
        if expression is not None and expr_node is not None:  # checked as stored, stripped
            expression = self.check(expression.strip(), expr_node, "check", "expression", f"expression of {what}")
        if not expression:
            return None
        meta = self.meta(key_node, items, what)
        if items is None:
            meta = meta.replace(key_pos={"expression": self.r.pos(node)})
        return CheckConstraint(name, expression.strip(), meta)

    def read_foreign_key(self, table: str, text: str, key_node: yaml.Node, node: yaml.Node) -> ForeignKey | None:
        what = f"foreign key {text}"
        name = self.name(text, key_node, "foreign key name")
        items = self.r.mapping(node, what)
        if items is None or name is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, FK_KEYS, what)}
        for required in ("columns", "references"):
            if required not in values:
                self.r.problem(node, f"{what} needs '{required}'")
                return None
        columns = self.names(values["columns"], f"columns of {what}")
        target = self.read_reference(values["references"], what)
        on_delete = self.read_action(values.get("on_delete"), what, "on_delete")
        on_update = self.read_action(values.get("on_update"), what, "on_update")
        deferrable, deferred = self.deferral(values, what)
        if target is None or not columns:
            return None
        if len(columns) != len(target[1]):
            self.r.problem(values["references"], f"{what}: {len(columns)} column(s) reference "
                                                 f"{len(target[1])} column(s)")
            return None
        return ForeignKey(name, columns, target[0], target[1], on_delete or "no action", on_update or "no action",
                          deferrable, deferred, on_delete_explicit=on_delete is not None,
                          meta=self.meta(key_node, items, what))

    def read_indexes(self, table: str, node: yaml.Node, what: str) -> dict[str, Index]:
        indexes: dict[str, Index] = {}
        for ix_text, ix_key, ix_node in self.r.mapping(node, f"indexes of {what}") or []:
            ix_name = self.name(ix_text, ix_key, f"index of {what}")
            index = self.read_index(table, ix_name, ix_key, ix_node) if ix_name is not None else None
            if index is None or ix_name is None:
                continue
            registered = (schema_of(table), ix_name)
            previous = self.parts.index_names.get(registered)
            if previous:
                self.r.problem(ix_key, f"duplicate index name '{ix_name}' (first declared at {previous})")
                continue
            self.parts.index_names[registered] = self.r.pos(ix_key)
            indexes[ix_name] = index
        return indexes

    def read_index(self, table: str, name: str, key_node: yaml.Node, node: yaml.Node) -> Index | None:
        what = f"index {name}"  # the name is parsed by read_indexes (self.name)
        items = self.r.mapping(node, what)
        if items is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, INDEX_KEYS, what)}
        opclasses: dict[str, str] = {}
        if "opclasses" in values:
            for element_key, _, op_node in self.r.mapping(values["opclasses"], f"opclasses of {what}") or []:
                opclass = self.text(op_node, "index", "opclasses", what)
                if opclass:
                    opclasses[element_key] = opclass
        elements: list[IndexElement] = []
        for key, is_column_list in (("columns", True), ("expressions", False)):
            if key not in values:
                continue
            # Checked element by element, once the ordering words are off (index_element).
            for element_text, item in self.r.string_list(values[key], f"{key} of {what}") or []:
                element = self.index_element(element_text, is_column_list, item, what, opclasses)
                if element:
                    elements.append(element)
        if not elements:
            self.r.problem(node, f"{what} needs 'columns' or 'expressions'")
            return None
        method = "btree"
        if "using" in values:
            method = (self.text(values["using"], "index", "using", what) or "btree").lower()
            if method not in INDEX_METHODS:
                self.r.problem(values["using"], f"using of {what} must be one of {', '.join(INDEX_METHODS)}")
        unique = bool(self.r.boolean(values["unique"], f"unique of {what}")) if "unique" in values else False
        where = self.r.string(values["where"], f"where of {what}", allow_scalars=True) if "where" in values \
            else None
        if where is not None:  # checked as stored, stripped
            where = self.check(where.strip(), values["where"], "index", "where", f"where of {what}")
        include = self.names(values["include"], f"include of {what}") if "include" in values else ()
        return Index(name, table, self.same(tuple(elements)), unique, self.same(method), where or None, include,
                     self.meta(key_node, items, what))

    def index_element(self, text: str, from_columns: bool, node: yaml.Node, what: str,
                      opclasses: dict[str, str]) -> IndexElement | None:
        match = _ORDER_SUFFIX.match(text.strip())
        assert match is not None  # the pattern accepts any text
        expression = match.group("expr").strip()
        if not expression:
            self.r.problem(node, f"empty element in {what}")
            return None
        column_name = parse_name(expression)
        is_column = column_name is not None
        if column_name is not None:
            expression = column_name
        if from_columns and not is_column:
            self.r.problem(node, f"'{expression}' in columns of {what} is not a column name; "
                                 "use 'expressions' for expressions")
            return None
        if not is_column and self.check(expression, node, "index", "expressions", f"expression of {what}") is None:
            return None
        descending = (match.group("dir") or "").lower() == "desc"
        nulls = (match.group("nulls") or "").lower() or None
        # Keep NULLS only when it differs from PostgreSQL's default for the direction.
        if (nulls == "last" and not descending) or (nulls == "first" and descending):
            nulls = None
        return self.same(IndexElement(self.same(expression), is_column, descending, nulls,  # type: ignore[arg-type]
                                      opclasses.get(text) or opclasses.get(expression)))

    def read_partition(self, node: yaml.Node, what: str) -> PartitionSpec | None:
        items = self.r.mapping(node, f"partition_by of {what}")
        if items is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, PARTITION_KEYS, f"partition_by of {what}")}
        strategies = [s for s in ("range", "list", "hash") if s in values]
        if len(strategies) != 1:
            self.r.problem(node, f"partition_by of {what} needs exactly one of range, list, hash")
            return None
        strategy = strategies[0]
        columns = self.names(values[strategy], f"{strategy} of {what}")
        interval: str | None = None
        if strategy == "range":
            interval = "month"
            if "interval" in values:
                interval = (self.text(values["interval"], "partition_by", "interval", what) or "").lower()
                if interval not in ("day", "week", "month", "year"):
                    self.r.problem(values["interval"], f"interval of {what} must be day, week, month or year")
                    return None
        elif "interval" in values:
            self.r.problem(values["interval"], f"interval of {what} applies to range partitioning only")
        premake = 3
        if "premake" in values:
            premake = self.r.integer(values["premake"], f"premake of {what}") or 0
            if premake < 0 or premake > 120:
                self.r.problem(values["premake"], f"premake of {what} must be between 0 and 120")
        default_partition = True
        if "default_partition" in values:
            default_partition = bool(self.r.boolean(values["default_partition"], f"default_partition of {what}"))
        retention, keep_table, backend = self.read_partition_maintenance(values, interval, default_partition, what)
        if not columns:
            return None
        return PartitionSpec(strategy, columns, interval, premake, default_partition,  # type: ignore[arg-type]
                             retention, keep_table, backend)  # type: ignore[arg-type]

    def read_purge(self, node: yaml.Node, what: str, columns: list[Column], partition: PartitionSpec | None
                   ) -> Purge | None:
        """``purge: {column: created_at, after: 90 days}``: a time column of the table and a duration."""
        items = self.r.mapping(node, f"purge of {what}")
        if items is None:
            return None
        values = {k: v for k, _, v in self.r.check_keys(items, keys("purge"), f"purge of {what}")}
        if partition is not None:
            self.r.problem(node, f"purge of {what}: a partitioned table expires whole partitions, declare "
                                 "partition_by.retention instead")
            return None
        missing = [k for k in ("column", "after") if k not in values]
        if missing:
            self.r.problem(node, f"purge of {what} needs {' and '.join(missing)}")
            return None
        column_name = self.text(values["column"], "purge", "column", f"purge of {what}")
        column = next((c for c in columns if c.name == column_name), None)
        if column_name is not None and (column is None or column.type not in _PURGE_TYPES):
            self.r.problem(values["column"], f"column of purge of {what} must be a timestamptz or date column of "
                                             f"the table, got {column_name!r}")
            return None
        text = self.text(values["after"], "purge", "after", f"purge of {what}")
        match = _RETENTION.match(text or "")
        if text is not None and (match is None or int(match["count"]) < 1):
            self.r.problem(values["after"], f"after of purge of {what} must be a count and a unit, e.g. "
                                            f"'90 days' (day, week, month or year), got {text!r}")
            return None
        if match is None or column_name is None:
            return None
        return Purge(column_name, Retention(int(match["count"]), match["unit"].lower()))  # type: ignore[arg-type]

    def read_partition_maintenance(self, values: dict[str, yaml.Node], interval: str | None,
                                   default_partition: bool, what: str) -> tuple[Retention | None, bool, str]:
        """retention, retention_keep_table and backend: closed grammars, never SQL text."""
        retention = None
        if "retention" in values:
            text = self.text(values["retention"], "partition_by", "retention", what)
            match = _RETENTION.match(text or "")
            if interval is None:
                self.r.problem(values["retention"], f"retention of {what} needs range partitioning by time "
                                                    "(an interval)")
            elif text is not None and (match is None or int(match["count"]) < 1):
                self.r.problem(values["retention"], f"retention of {what} must be a count and a unit, e.g. "
                                                    f"'24 months' (day, week, month or year), got {text!r}")
            elif match is not None:
                retention = Retention(int(match["count"]), match["unit"].lower())  # type: ignore[arg-type]
        keep_table = True
        if "retention_keep_table" in values:
            keep_table = bool(self.r.boolean(values["retention_keep_table"], f"retention_keep_table of {what}"))
            if "retention" not in values:
                self.r.problem(values["retention_keep_table"], f"retention_keep_table of {what} needs a retention")
        backend = "builtin"
        if "backend" in values:
            backend = (self.text(values["backend"], "partition_by", "backend", what) or "builtin").lower()
            if backend not in PARTITION_BACKENDS:
                self.r.problem(values["backend"], f"backend of {what} must be one of {', '.join(PARTITION_BACKENDS)}")
                backend = "builtin"
            elif backend == "partman" and (interval is None or not default_partition):
                self.r.problem(values["backend"], f"backend partman of {what} needs range partitioning by time "
                                                  "with a default partition (pg_partman 4.x always creates one)")
        return retention, keep_table, backend

    # -- views --------------------------------------------------------------------
    def read_views(self, node: yaml.Node) -> None:
        for text, key_node, value in self.r.mapping(node, "views") or []:
            name = self.declare(text, "view", key_node)
            what = f"view {name or text}"
            items = self.r.mapping(value, what)
            if items is None or name is None:
                continue
            values = {k: v for k, _, v in self.r.check_keys(items, VIEW_KEYS, what)}
            query = self.r.string(values["query"], f"query of {what}") if "query" in values else None
            if query is not None:  # checked as stored: without the trailing semicolon
                query = self.check(query.strip().rstrip(";").strip(), values["query"], "view", "query",
                                   f"query of {what}")
            if "query" not in values:
                self.r.problem(value, f"{what} needs 'query'")
            materialized = bool(self.r.boolean(values["materialized"], f"materialized of {what}")) \
                if "materialized" in values else False
            indexes = self.read_indexes(name, values["indexes"], what) if "indexes" in values else {}
            if indexes and not materialized:
                self.r.problem(values["indexes"], f"{what}: only materialized views can have indexes")
            comment = self.text(values["comment"], "view", "comment", what) if "comment" in values else None
            depends = self.references(values["depends_on"], f"depends_on of {what}") if "depends_on" in values \
                else ()
            triggers = self.read_triggers(name, values["triggers"], what) if "triggers" in values else {}
            if triggers and materialized:
                self.r.problem(values["triggers"], f"{what}: a materialized view cannot have triggers")
            grants = self.grants(values["grants"], "table", what) if "grants" in values else {}
            if query:
                self.parts.views[name] = View(name, query.strip().rstrip(";").strip(), materialized, indexes,
                                              comment, depends, self.module, self.meta(key_node, items, what),
                                              triggers=triggers, grants=grants or {})


# -- cross-file resolution ---------------------------------------------------------
def _resolve(parts: _Parts, problems: list[Problem]) -> Schema:
    tables = dict(parts.tables)
    for table in parts.tables.values():
        _check_table_references(table, tables, parts, problems)
    tables = _expand_templates(parts, tables, problems)
    tables = _expand_counters(parts, tables, problems)
    owners: list[Table | View] = [*tables.values(), *parts.views.values()]
    for owner in owners:
        for trigger in owner.triggers.values():
            if trigger.function not in parts.functions:
                problems.append(Problem(trigger.meta.pos, f"trigger {trigger.name} on {owner.name}: function "
                                                          f"'{trigger.function}' is not declared"))
    _check_objects_outside_tables(parts, tables, problems)
    views = {}
    for name, view in parts.views.items():
        depends = view.depends_on or _view_dependencies(view, tables, parts.views)
        for dependency in depends:
            if dependency not in tables and dependency not in parts.views:
                problems.append(Problem(view.meta.at("depends_on"), f"view {name} depends on '{dependency}', "
                                                                    "which is not a table or view"))
        views[name] = replace(view, depends_on=tuple(depends))
        for index in view.indexes.values():
            _check_index_columns(index, None, problems)
    schema = Schema(tables=tables, enums=parts.enums, composite_types=parts.composite_types,
                    functions=parts.functions, views=views, extensions=parts.extensions, modules=parts.modules,
                    sequences=parts.sequences, namespaces=parts.namespaces, roles=parts.roles,
                    default_privileges=parts.default_privileges)
    problems += _apply_time_calls(schema, parts.templates)
    return schema


_ROW_BY_ROW = ("PostgreSQL evaluates it on every row while the migration runs, with the rights of whoever "
               "applies it; declare a function in the YAML (with its volatility) if this is intended")


def _apply_time_calls(schema: Schema, templates: list[_Template]) -> list[Problem]:
    """Expressions that run while a migration runs may not call volatile functions (docs/security.md)."""
    found: list[Problem] = []
    answers: dict[tuple[str, bool, bool], list[str]] = {}  # `now()`, `0`: the same few texts on every table

    def refuse(text: str, at: Meta | SourcePos, key: str, what: str, *, default: bool = False,
               query: bool = False) -> None:
        names = answers.get((text, default, query))
        if names is None:
            names = answers[text, default, query] = routes.refused_calls(text, schema, default=default, query=query)
        if names:  # rare: only then is the position looked up
            why = ("a default is computed for every existing row when its column is added, with the rights of "
                   "whoever applies the migration; only value generators such as gen_random_uuid() or nextval() "
                   "may be volatile there") if default else _ROW_BY_ROW
            pos = at.at(key) if isinstance(at, Meta) else at
            found.append(Problem(pos, f"{what} calls volatile function(s) {', '.join(names)}: {why}"))

    # Each text is checked only when there is one (most columns have no default, no generated expression).
    for table in schema.tables.values():
        for column in table.columns:
            if column.default:
                refuse(column.default, column.meta, "default", f"default of column {table.name}.{column.name}",
                       default=True)
            if column.generated:
                refuse(column.generated, column.meta, "generated", f"generated of column {table.name}.{column.name}")
        for check in table.checks.values():
            if check.expression:
                refuse(check.expression, check.meta, "expression", f"check {check.name} of table {table.name}")
        for trigger in table.triggers.values():
            if trigger.template is None and trigger.when:
                refuse(trigger.when, trigger.meta, "when", f"when of trigger {trigger.name}")
    for template in templates:
        if template.when:
            refuse(template.when, template.pos, "", f"when of trigger template {template.name}")
    for view in schema.views.values():
        if view.materialized and view.query:
            refuse(view.query, view.meta, "query", f"query of materialized view {view.name}", query=True)
    for index in schema.indexes:
        for element in index.elements:
            if not element.is_column and element.expression:
                refuse(element.expression, index.meta, "expressions", f"expression of index {index.name}")
        if index.where:
            refuse(index.where, index.meta, "where", f"where of index {index.name}")
    return found


def _check_objects_outside_tables(parts: _Parts, tables: dict[str, Table], problems: list[Problem]) -> None:
    """Sequence owners, extension and default-privilege schemas, and the roles grants and policies name."""
    for sequence in parts.sequences.values():
        if sequence.owned_by is None:
            continue
        owner = tables.get(sequence.owner_table or "")
        if owner is None or owner.column(sequence.owner_column or "") is None:
            problems.append(Problem(sequence.meta.at("owned_by"), f"sequence {sequence.name} is owned by "
                                                                  f"'{sequence.owned_by}', which is not a column"))
    schemas = set(parts.namespaces) | {HOME_SCHEMA}
    for entry in parts.default_privileges.values():
        if entry.schema is not None and entry.schema not in schemas:
            problems.append(Problem(entry.meta.pos, f"default privileges: schema {entry.schema} is not declared"))
    for role in parts.roles.values():
        for other in role.member_of:
            if other not in parts.roles and not other.startswith("pg_"):
                problems.append(Problem(role.meta.at("member_of"), f"role {role.name} is a member of '{other}', "
                                                                   "which is not a declared role"))
    for role_name, pos in parts.role_uses:
        if role_name != PUBLIC_ROLE and role_name not in parts.roles and not role_name.startswith("pg_"):
            problems.append(Problem(pos, f"role '{role_name}' is not declared (declare it under 'roles:' in "
                                         "a module)"))


def _missing(table: Table, columns: tuple[str, ...]) -> list[str]:
    if not columns:
        return []
    names = table.column_names
    return [c for c in columns if c not in names]


def _check_table_references(table: Table, tables: dict[str, Table], parts: _Parts,
                            problems: list[Problem]) -> None:
    where = f"table {table.name}"
    if table.primary_key:
        for column in _missing(table, table.primary_key.columns):
            problems.append(Problem(table.primary_key.meta.pos, f"primary key of {where} names unknown column "
                                                                f"'{column}'"))
    for unique in table.uniques.values():
        for column in _missing(table, unique.columns):
            problems.append(Problem(unique.meta.pos, f"unique constraint {unique.name} of {where} names unknown "
                                                     f"column '{column}'"))
    for fk in table.foreign_keys.values():
        for column in _missing(table, fk.columns):
            problems.append(Problem(fk.meta.pos, f"foreign key {fk.name} of {where} names unknown column "
                                                 f"'{column}'"))
        target = tables.get(fk.ref_table)
        if target is None:
            kind = parts.declared.get(fk.ref_table, ("", None))[0]
            detail = f" ('{fk.ref_table}' is a {kind})" if kind else ""
            problems.append(Problem(fk.meta.pos, f"foreign key {fk.name} of {where} references missing table "
                                                 f"'{fk.ref_table}'{detail}"))
            continue
        for column in _missing(target, fk.ref_columns):
            problems.append(Problem(fk.meta.pos, f"foreign key {fk.name} of {where} references missing column "
                                                 f"{fk.ref_table}.{column}"))
    for index in table.indexes.values():
        _check_index_columns(index, table, problems)
    if table.partition:
        for column in _missing(table, table.partition.columns):
            problems.append(Problem(table.meta.at("partition_by"), f"partition_by of {where} names unknown "
                                                                    f"column '{column}'"))


def _check_index_columns(index: Index, table: Table | None, problems: list[Problem]) -> None:
    if table is None:
        return
    columns = tuple(e.expression for e in index.elements if e.is_column) + index.include
    for column in _missing(table, columns):
        problems.append(Problem(index.meta.pos, f"index {index.name} on {table.name} names unknown column "
                                                f"'{column}'"))


def _expand_templates(parts: _Parts, tables: dict[str, Table], problems: list[Problem]) -> dict[str, Table]:
    """One concrete trigger per (template, matching table), in the table's own model."""
    added: dict[str, dict[str, Trigger]] = {}
    for template in sorted(parts.templates, key=lambda t: t.name):
        if template.tables is not None:
            for name in template.tables:
                if name not in tables:
                    problems.append(Problem(template.pos, f"trigger template {template.name} names missing "
                                                          f"table '{name}'"))
        for excluded in template.excluded:
            if excluded not in tables:
                problems.append(Problem(template.pos, f"trigger template {template.name} excludes missing "
                                                      f"table '{excluded}'"))
        for table in sorted(tables.values(), key=lambda t: t.name):
            if table.name in template.excluded:
                continue
            if template.has_column is not None and table.column(template.has_column) is None:
                continue
            if template.tagged is not None and template.tagged not in table.tags:
                continue
            if template.tables is not None and table.name not in template.tables:
                continue
            trigger_name = template.pattern.replace("{table}", split_name(table.name)[1])
            if trigger_name in table.triggers or trigger_name in added.get(table.name, {}):
                problems.append(Problem(template.pos, f"trigger template {template.name} makes trigger "
                                                      f"'{trigger_name}' on {table.name}, which already exists"))
                continue
            added.setdefault(table.name, {})[trigger_name] = Trigger(
                trigger_name, table.name, template.function, template.timing,  # type: ignore[arg-type]
                template.events, template.for_each, template.when,  # type: ignore[arg-type]
                template=template.name, meta=Meta(template.pos, rfc=template.rfc))
    for table_name, triggers in added.items():
        table = tables[table_name]
        tables[table_name] = replace(table, triggers={**table.triggers, **triggers})
    return tables


def _expand_counters(parts: _Parts, tables: dict[str, Table], problems: list[Problem]) -> dict[str, Table]:
    """Each ``counts`` declaration becomes the function and trigger that keep the counter exact.

    Why generated: one declaration per counter (like the ``updated_at`` template) keeps all of them
    written the same way, so a counter cannot be forgotten on one event (delete, a soft delete, a row
    moved to another parent). A declaration with ``maintained_by`` names the hand-written triggers that
    keep it instead (the seed's follower counters); they must exist on the counted table.
    """
    added: dict[str, dict[str, Trigger]] = {}
    for parent in sorted(tables.values(), key=lambda t: t.name):
        for column in parent.columns:
            spec = column.counts
            if spec is None:
                continue
            pos = column.meta.at("counts")
            what = f"counts of column {parent.name}.{column.name}"
            child = tables.get(spec.rows_of)
            if child is None:
                problems.append(Problem(pos, f"{what}: rows_of names missing table '{spec.rows_of}'"))
                continue
            missing = [f"{child.name}.{spec.via}"] if child.column(spec.via) is None else []
            missing += [f"{parent.name}.{spec.key}"] if parent.column(spec.key) is None else []
            if missing:
                problems.append(Problem(pos, f"{what} names unknown column(s) {', '.join(missing)}"))
                continue
            if spec.maintained_by:
                for name in spec.maintained_by:
                    if name not in child.triggers:
                        problems.append(Problem(pos, f"{what}: maintained_by names '{name}', which is not a "
                                                     f"trigger of {child.name}"))
                continue
            meta = Meta(pos, rfc=column.meta.rfc)
            function = counter_function(parent.name, column.name, spec, parent.module, meta)
            if function.name in parts.functions or function.name in parts.declared:
                problems.append(Problem(pos, f"{what}: the generated function name '{function.name}' is "
                                             "already declared"))
                continue
            parts.functions[function.name] = function
            trigger_name = f"trg_{child.name}_{function.name}"
            added.setdefault(child.name, {})[trigger_name] = Trigger(
                trigger_name, child.name, function.name, "after", ("insert", "update", "delete"),
                template="counts", meta=meta)
    for table_name, triggers in added.items():
        table = tables[table_name]
        tables[table_name] = replace(table, triggers={**table.triggers, **triggers})
    return tables


def counter_function(parent: str, column: str, spec: CounterSpec, module: str, meta: Meta) -> Function:
    """The trigger function keeping ``parent.column`` equal to the number of matching rows."""
    if spec.where:
        sql_expression(spec.where, f"where of counts of column {parent}.{column}")  # refused here, with its name
    template = "objects/counter_function_body.sql.j2"
    body = _counter_body(json.dumps([template_digest(template), parent, column, spec.rows_of, spec.via, spec.key,
                                     spec.where]))
    return Function(
        name=f"count_{parent}_{column}", arguments="", returns="trigger", language="plpgsql",
        body=function_body(body), volatility="volatile",
        comment=f"Keeps {parent}.{column} equal to the number of {spec.rows_of} rows"
                f"{' where ' + spec.where if spec.where else ''} (generated from its counts declaration)",
        module=module, meta=meta)


# The template's digest is in the request; the body is also the routes' and the renderer's.
@on_disk("counter-body", str, str, sources=(Path(routes.__file__), Path(render_module.__file__)))
def _counter_body(request: str) -> str:
    """A counter function's body for ``[template digest, parent, column, rows_of, via, key, where]`` (JSON).

    Why cached: the Veza schema declares 21 counters, and rendering them cost a lint run jinja2's
    import and 21 renders (~50 ms); a warm run reads the bodies back. ``where`` goes through the
    expression route again here (a cache hit), so the template still receives only routed SQL.
    """
    _, parent, column, rows_of, via, key, where = json.loads(request)
    condition = sql_expression(where, f"where of counts of column {parent}.{column}") if where else None
    return str(render_template("objects/counter_function_body.sql.j2", parent=parent, column=column,
                               spec=CounterSpec(rows_of, via, key, where), where=condition))


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_$]*)?")


def _view_dependencies(view: View, tables: dict[str, Table], views: dict[str, View]) -> tuple[str, ...]:
    """Tables and views a query names, for creation order (a word match: over-approximation is harmless)."""
    words = set()
    for word in _WORD.findall(view.query):
        compact = "".join(word.split())
        words.add(compact)
        words.update(compact.split("."))
    return tuple(sorted(name for name in words if (name in tables or name in views) and name != view.name))
