"""What PostgreSQL's catalog says, as the planner, the change policy and lint ask it.

Function volatility (:mod:`.volatility`), which types exist (and their ``typcategory``),
which operator classes each access method has (and which is the default for a type), and
which casts exist in which context. One :class:`CatalogFacts` answers all of them: read from
a live server's ``pg_catalog`` (:func:`veza_schema.db.catalog.catalog_facts`, once per
server version) or, offline, from the built-in table generated from PostgreSQL's catalog
(:mod:`.builtin_catalog`, :func:`builtin_facts`). Objects of extensions count only for a
schema that declares the extension.

Every answer is conservative: ``None`` means "cannot tell" and rules stay silent on it; a
rule reports only what the catalog shows PostgreSQL will refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from veza_schema.model import Schema
from veza_schema.sql import builtin_catalog
from veza_schema.sql.volatility import FunctionFacts, Overloads, offline_facts
from veza_schema.types import base_type, is_array

T = TypeVar("T")

# Type spellings PostgreSQL accepts in CREATE TABLE without a pg_type row of that name.
SERIAL_TYPES = ("serial", "serial4", "bigserial", "serial8", "smallserial", "serial2")
# Polymorphic input types an operator class may be declared for, and the categories they take.
_POLYMORPHIC = {"anyarray": "A", "anyenum": "E", "anyrange": "R", "anymultirange": "M", "record": "C"}
STRING_CATEGORY = "S"


@dataclass(frozen=True, slots=True)
class OpClass:
    """An operator class of an access method, for values of ``input_type``."""

    method: str
    name: str
    input_type: str
    default: bool


@dataclass(frozen=True, slots=True)
class Cast:
    """``source`` -> ``target``; context i(mplicit), a(ssignment), e(xplicit); method f, i(/o), b(inary)."""

    source: str
    target: str
    context: str
    method: str


@dataclass(frozen=True)
class ExtensionFacts:
    """The functions, types, operator classes and casts of pg_catalog or of one extension."""

    functions: Mapping[str, Overloads] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    opclasses: tuple[OpClass, ...] = ()
    casts: tuple[Cast, ...] = ()


@dataclass(frozen=True)
class _Merged:
    """pg_catalog plus the schema's extensions, indexed for the questions rules ask."""

    types: Mapping[str, str]
    opclasses: Mapping[str, tuple[OpClass, ...]]  # by access method
    casts: Mapping[tuple[str, str], Cast]
    binary: Mapping[str, frozenset[str]]  # type -> types it is binary coercible to


@dataclass(frozen=True)
class CatalogFacts:
    """PostgreSQL's answers for one server version (or the built-in table's)."""

    functions: FunctionFacts
    types: Mapping[str, str]
    opclasses: tuple[OpClass, ...]
    casts: tuple[Cast, ...]
    extensions: Mapping[str, ExtensionFacts] = field(default_factory=dict)
    source: str = "built-in table"
    _merged: dict[tuple[str, ...], _Merged] = field(default_factory=dict, compare=False, repr=False)
    # The answers given about the latest schema asked of, by question: a 10,000-table schema asks the
    # same few questions (a uuid column under a btree) ~200,000 times. One schema only, as lint's own
    # caches, so a long-lived process keeps no old model alive.
    _recent: list[Any] = field(default_factory=lambda: [None, {}], compare=False, repr=False)

    def _answers(self, schema: Schema | None) -> dict[tuple[str, ...], Any]:
        if self._recent[0] is not schema:
            self._recent[:] = [schema, {}]
        answers: dict[tuple[str, ...], Any] = self._recent[1]
        return answers

    def _remembered(self, schema: Schema | None, key: tuple[str, ...], work_out: Callable[[], T]) -> T:
        """The answer to ``key`` about ``schema``, worked out once (lint asks the same of every table)."""
        answers = self._answers(schema)
        if key not in answers:
            answers[key] = work_out()
        answer: T = answers[key]
        return answer

    def _for(self, schema: Schema | None) -> _Merged:
        names = tuple(sorted(schema.extensions)) if schema is not None else ()
        merged = self._merged.get(names)
        if merged is None:
            parts = [ExtensionFacts(self.functions.volatility, self.types, self.opclasses, self.casts)]
            parts += [self.extensions[n] for n in names if n in self.extensions]
            merged = _merge(parts)
            self._merged[names] = merged
        return merged

    def knows_extensions(self, schema: Schema) -> bool:
        """Whether every extension the schema declares is in the table (else unknown types may be theirs)."""
        return all(name in self.extensions for name in schema.extensions)

    def type_category(self, type_text: str, schema: Schema | None = None) -> str | None:
        """``typcategory`` of a model type spelling (``A`` for arrays); None when not known to exist.

        The schema's enums are ``E``, its composite types, tables and views ``C``. A qualified
        or quoted name is answered None: lint does not know other schemas.
        """
        return self._remembered(schema, ("category", type_text), lambda: self._type_category(type_text, schema))

    def _type_category(self, type_text: str, schema: Schema | None) -> str | None:
        if is_array(type_text):
            return "A" if self.type_category(type_text.removesuffix("[]").rstrip("[] "), schema) else None
        base = base_type(type_text)
        if schema is not None:
            if base in schema.enums:
                return "E"
            if base in schema.composite_types or base in schema.tables or base in schema.views:
                return "C"
        if base in SERIAL_TYPES:
            return "N"
        return self._for(schema).types.get(base)

    def type_exists(self, type_text: str, schema: Schema | None = None) -> bool | None:
        """True or False when the catalog can tell; None for names outside its reach (qualified, quoted,
        or possibly from a declared extension the table does not know)."""
        return self._remembered(schema, ("exists", type_text), lambda: self._type_exists(type_text, schema))

    def _type_exists(self, type_text: str, schema: Schema | None) -> bool | None:
        base = base_type(type_text.removesuffix("[]").rstrip("[] "))
        if "." in base or '"' in base:
            return None
        if self.type_category(type_text, schema) is not None:
            return True
        if schema is not None and not self.knows_extensions(schema):
            return None
        return False

    def operator_classes(self, method: str, schema: Schema | None = None) -> tuple[OpClass, ...]:
        return self._for(schema).opclasses.get(method, ())

    def knows_method(self, method: str, schema: Schema | None = None) -> bool:
        return method in self._for(schema).opclasses

    def has_default_opclass(self, method: str, type_text: str, schema: Schema | None = None) -> bool | None:
        """Whether ``CREATE INDEX ... USING method (col)`` finds a default operator class for the type.

        As PostgreSQL's GetDefaultOpClass: an opclass for the type itself, for a type it is
        binary coercible to, or for a polymorphic type that takes it (anyarray, anyenum, ...).
        None when the type or the method is unknown.
        """
        return self._remembered(schema, ("default opclass", method, type_text),
                                lambda: self._has_default_opclass(method, type_text, schema))

    def _has_default_opclass(self, method: str, type_text: str, schema: Schema | None) -> bool | None:
        if not self.knows_method(method, schema) or (schema is not None and not self.knows_extensions(schema)):
            return None
        category = self.type_category(type_text, schema)
        if category is None:
            return None
        base = "array" if category == "A" else base_type(type_text)
        targets = {base} | set(self._for(schema).binary.get(base, frozenset()))
        if category == STRING_CATEGORY:
            targets.add("text")  # varchar, char and name reach text_ops through binary coercion
        for opclass in self.operator_classes(method, schema):
            if not opclass.default:
                continue
            if opclass.input_type in targets:
                return True
            polymorphic = _POLYMORPHIC.get(opclass.input_type)
            if polymorphic is not None and polymorphic == category:
                return True
        return False

    def has_opclass(self, method: str, name: str, schema: Schema | None = None) -> bool | None:
        """Whether the access method has an operator class of that name (None: cannot tell)."""
        if not self.knows_method(method, schema) or (schema is not None and not self.knows_extensions(schema)):
            return None
        bare = name.rsplit(".", 1)[-1].strip('"')
        return any(opclass.name == bare for opclass in self.operator_classes(method, schema))

    def cast_context(self, source: str, target: str, schema: Schema | None = None) -> str | None:
        """How ``source`` converts to ``target``: ``i``, ``a``, ``e`` as in pg_cast, None when no cast exists.

        Besides pg_cast, PostgreSQL converts any type to a string type through I/O in
        assignment context, and from one in explicit context; a type to itself always.
        """
        source, target = base_type(source), base_type(target)
        if source == target:
            return "i"
        merged = self._for(schema)
        cast = merged.casts.get((source, target))
        if cast is not None:
            return cast.context
        target_category = self.type_category(target, schema)
        if target_category == STRING_CATEGORY:
            return "a"
        if self.type_category(source, schema) == STRING_CATEGORY:
            return "e"
        return None

    def comparable(self, left: str, right: str, schema: Schema | None = None) -> bool | None:
        """Whether ``=``/``<``/... can compare values of the two types (None: cannot tell).

        Conservative: the same type, an implicit cast either way, or the same category (where
        PostgreSQL has cross-type operators: integer and bigint, date and timestamp).
        """
        return self._remembered(schema, ("comparable", left, right), lambda: self._comparable(left, right, schema))

    def _comparable(self, left: str, right: str, schema: Schema | None) -> bool | None:
        left_category = self.type_category(left, schema)
        right_category = self.type_category(right, schema)
        if left_category is None or right_category is None or "P" in (left_category, right_category) \
                or "X" in (left_category, right_category):
            return None
        if left_category == right_category or base_type(left) == base_type(right):
            return True
        return "i" in (self.cast_context(left, right, schema), self.cast_context(right, left, schema))


def _merge(parts: Iterable[ExtensionFacts]) -> _Merged:
    types: dict[str, str] = {}
    opclasses: dict[str, list[OpClass]] = {}
    casts: dict[tuple[str, str], Cast] = {}
    for part in parts:
        types.update(part.types)
        for opclass in part.opclasses:
            opclasses.setdefault(opclass.method, []).append(opclass)
        for cast in part.casts:
            casts[(cast.source, cast.target)] = cast
    binary: dict[str, set[str]] = {}
    for (source, target), cast in casts.items():
        if cast.method == "b" and cast.context == "i":
            binary.setdefault(source, set()).add(target)
    return _Merged(types, {m: tuple(o) for m, o in opclasses.items()}, casts,
                   {t: frozenset(s) for t, s in binary.items()})


def _rows(text: str) -> list[list[str]]:
    return [line.split("|") for line in text.strip().splitlines() if line.strip()]


@cache
def builtin_facts() -> CatalogFacts:
    """The built-in table (:mod:`.builtin_catalog`): PostgreSQL's own catalog, as generated."""
    extensions: dict[str, dict[str, list[object]]] = {}

    def of(name: str) -> dict[str, list[object]]:
        return extensions.setdefault(name, {"functions": [], "types": [], "opclasses": [], "casts": []})

    for ext, name, least, most in _rows(builtin_catalog.EXTENSION_FUNCTIONS):
        of(ext)["functions"].append((name, (least, most)))
    for ext, name, category in _rows(builtin_catalog.EXTENSION_TYPES):
        of(ext)["types"].append((name, category))
    for ext, method, name, input_type, default in _rows(builtin_catalog.EXTENSION_OPCLASSES):
        of(ext)["opclasses"].append(OpClass(method, name, input_type, default == "default"))
    for ext, source, target, context, method in _rows(builtin_catalog.EXTENSION_CASTS):
        of(ext)["casts"].append(Cast(source, target, context, method))
    extension_facts = {
        name: ExtensionFacts(dict(parts["functions"]),  # type: ignore[arg-type]
                             dict(parts["types"]),  # type: ignore[arg-type]
                             tuple(parts["opclasses"]), tuple(parts["casts"]))  # type: ignore[arg-type]
        for name, parts in extensions.items()
    }
    # Extensions that add nothing lint asks about (plpgsql, tcn...) still count as known.
    for name in builtin_catalog.EXTENSIONS.split():
        extension_facts.setdefault(name, ExtensionFacts())
    return CatalogFacts(
        offline_facts(),
        {name: category for name, category in _rows(builtin_catalog.TYPES)},
        tuple(OpClass(m, n, t, d == "default") for m, n, t, d in _rows(builtin_catalog.OPCLASSES)),
        tuple(Cast(s, t, c, m) for s, t, c, m in _rows(builtin_catalog.CASTS)),
        extension_facts,
        source=f"built-in table ({builtin_catalog.SERVER})",
    )
