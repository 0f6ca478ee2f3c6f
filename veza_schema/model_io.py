"""The model as plain JSON data and back, for the migration snapshot and ``--format json``.

Why generic: the converter walks the dataclass fields and their type hints instead of
listing every class by hand, so a field added to :mod:`veza_schema.model` is serialized
without touching this file. Why only some fields: the snapshot records what PostgreSQL
holds (the ``compare=True`` fields) plus each object's ``module`` (docs and JSON outputs
group by it); YAML-only metadata (source positions, waivers, tags, RFCs) stays out, so a
snapshot does not change when only a comment in the YAML moves.

Every field is written, defaults included, so reading an old snapshot does not depend on
today's defaults. ``dumps`` sorts keys: the same model always gives the same text.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Literal, Union

from veza_schema import model
from veza_schema.model import Schema

FORMAT_VERSION = 1
# compare=False fields that the snapshot keeps anyway (a partition backend: the down
# migration of a pg_partman table must also remove its pg_partman configuration; premake:
# `generate` plans a change of it, and a shadow model read back must keep the declared one).
_KEPT_METADATA: frozenset[str] = frozenset({"module", "backend", "premake"})


class ModelFormatError(ValueError):
    """The data is not a serialized model this version can read."""


@cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, resolved type) of the fields a dataclass serializes, in declaration order."""
    hints = typing.get_type_hints(cls, vars(model))
    return tuple(
        (f.name, hints[f.name])
        for f in dataclasses.fields(cls)
        if f.compare or f.name in _KEPT_METADATA
    )


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _encode(getattr(value, name)) for name, _ in _fields(type(value))}
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_encode(item) for item in value]
    if isinstance(value, (frozenset, set)):
        return sorted(_encode(item) for item in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot serialize {type(value).__name__}: {value!r}")


def _decode(value: Any, hint: Any, where: str) -> Any:
    return _decoder(hint)(value, where)


Decoder = Callable[[Any, str], Any]


@cache
def _decoder(hint: Any) -> Decoder:
    """The function reading JSON data as ``hint`` (``where`` names the value in errors), made once per type.

    Why made once: a snapshot holds ~25,000 values; asking ``typing`` what each hint is, value by
    value, cost more than the rest of reading it (``lint`` reads the snapshot on every run).
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _union_decoder(hint, args)
    if origin is Literal:
        def literal(value: Any, where: str) -> Any:
            if value not in args:
                raise ModelFormatError(f"{where}: {value!r} is not one of {args}")
            return value
        return literal
    if origin is tuple:
        item_decoder = _decoder(args[0])

        def tuple_of(value: Any, where: str) -> Any:
            _expect(value, list, where)
            return tuple(item_decoder(item, f"{where}[{i}]") for i, item in enumerate(value))
        return tuple_of
    if origin in (Mapping, dict, typing.Mapping):
        value_decoder = _decoder(args[1])

        def mapping_of(value: Any, where: str) -> Any:
            _expect(value, dict, where)
            return {key: value_decoder(item, f"{where}.{key}") for key, item in value.items()}
        return mapping_of
    if origin is frozenset:
        member_decoder = _decoder(args[0])

        def frozenset_of(value: Any, where: str) -> Any:
            _expect(value, list, where)
            return frozenset(member_decoder(item, where) for item in value)
        return frozenset_of
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if hint is bool or hint is str:
        def exactly(value: Any, where: str) -> Any:
            if not isinstance(value, hint):  # _expect inlined: most of a snapshot's values are strings
                _expect(value, hint, where)
            return value
        return exactly
    if hint is int:
        def integer(value: Any, where: str) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ModelFormatError(f"{where}: expected an integer, got {value!r}")
            return value
        return integer
    if hint is float:
        def number(value: Any, where: str) -> Any:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ModelFormatError(f"{where}: expected a number, got {value!r}")
            return float(value)
        return number
    if hint is object or hint is Any:
        return lambda value, where: value

    def unsupported(value: Any, where: str) -> Any:
        raise ModelFormatError(f"{where}: unsupported type {hint!r}")
    return unsupported


def _union_decoder(hint: Any, args: tuple[Any, ...]) -> Decoder:
    nullable = type(None) in args
    options = [_decoder(arg) for arg in args if arg is not type(None)]
    if len(options) == 1:
        (only,) = options

        def optional(value: Any, where: str) -> Any:
            return None if value is None and nullable else only(value, where)
        return optional

    def first_match(value: Any, where: str) -> Any:
        if value is None and nullable:
            return None
        for option in options:
            try:
                return option(value, where)
            except ModelFormatError:
                continue
        raise ModelFormatError(f"{where}: {value!r} matches none of {hint}")
    return first_match


def _dataclass_decoder(cls: type) -> Decoder:
    fields: tuple[tuple[str, Decoder], ...] | None = None  # resolved on first use: a type may refer to itself
    known: frozenset[str] = frozenset(name for name, _ in _fields(cls))

    def instance(value: Any, where: str) -> Any:
        nonlocal fields
        if fields is None:
            fields = tuple((name, _decoder(hint)) for name, hint in _fields(cls))
        _expect(value, dict, where)
        if not known.issuperset(value):
            raise ModelFormatError(f"{where}: unknown keys {sorted(set(value) - known)} for {cls.__name__}")
        return cls(**{name: decode(value[name], f"{where}.{name}") for name, decode in fields if name in value})
    return instance


def _expect(value: Any, kind: type, where: str) -> None:
    if not isinstance(value, kind):
        raise ModelFormatError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")


def schema_to_dict(schema: Schema) -> dict[str, Any]:
    """The schema as JSON-ready data (``{"format": 1, "tables": {...}, ...}``)."""
    data = _encode(schema)
    assert isinstance(data, dict)
    deprecations = _deprecations(schema)
    return {"format": FORMAT_VERSION, **data, **({"deprecations": deprecations} if deprecations else {})}


def _deprecations(schema: Schema) -> dict[str, Any]:
    """``{"table": {...}, "table.column": {...}}``: the one piece of YAML metadata the change policy
    needs from an earlier state (a drop is allowed only after a deprecation in an earlier migration)."""
    found: dict[str, Any] = {}
    for table in schema.tables.values():
        if table.meta.deprecated:
            found[table.name] = _encode(table.meta.deprecated)
        for column in table.columns:
            if column.meta.deprecated:
                found[f"{table.name}.{column.name}"] = _encode(column.meta.deprecated)
    return dict(sorted(found.items()))


def _with_deprecations(schema: Schema, data: Any) -> Schema:
    _expect(data, dict, "schema.deprecations")
    tables = dict(schema.tables)
    for key, value in data.items():
        deprecation = _decode(value, model.Deprecation, f"schema.deprecations.{key}")
        table_name, _, column_name = key.partition(".")
        table = tables.get(table_name)
        if table is None or (column_name and table.column(column_name) is None):
            raise ModelFormatError(f"schema.deprecations: {key!r} names no table or column")
        if column_name:
            columns = tuple(
                dataclasses.replace(c, meta=c.meta.replace(deprecated=deprecation))
                if c.name == column_name else c for c in table.columns)
            tables[table_name] = dataclasses.replace(table, columns=columns)
        else:
            meta = table.meta.replace(deprecated=deprecation)
            tables[table_name] = dataclasses.replace(table, meta=meta)
    return dataclasses.replace(schema, tables=tables)


def schema_from_dict(data: Mapping[str, Any]) -> Schema:
    """Inverse of :func:`schema_to_dict`; raises :class:`ModelFormatError` on anything else."""
    if not isinstance(data, Mapping):
        raise ModelFormatError("a serialized schema must be a JSON object")
    version = data.get("format")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported model format {version!r} (this version reads {FORMAT_VERSION})")
    body = {key: value for key, value in data.items() if key not in ("format", "deprecations")}
    result = _decode(body, Schema, "schema")
    assert isinstance(result, Schema)
    if "deprecations" in data:
        result = _with_deprecations(result, data["deprecations"])
    return result


def dumps(schema: Schema) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, final newline."""
    return json.dumps(schema_to_dict(schema), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def loads(text: str) -> Schema:
    """Inverse of :func:`dumps`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"not JSON: {exc}") from exc
    return schema_from_dict(data)
