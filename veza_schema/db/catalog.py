"""Facts read from a server's catalog: what a database holds, and what PostgreSQL knows.

:func:`catalog_facts` reads what the planner, the change policy and lint ask of PostgreSQL
(function volatility, types, operator classes per access method, casts) from ``pg_catalog``,
once per server version and process. :func:`builtin_catalog_source` writes the same facts,
plus the objects each available extension adds, as the source of
:mod:`veza_schema.sql.builtin_catalog`: the offline answer when no server is at hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from veza_schema.sql import builtin_catalog
from veza_schema.sql.facts import Cast, CatalogFacts, ExtensionFacts, OpClass, builtin_facts
from veza_schema.sql.volatility import FunctionFacts, Overloads, Volatility

# -- what PostgreSQL knows ------------------------------------------------------------------------
# Each query reads the objects of pg_catalog, or those one extension owns (pg_depend 'e').

_FUNCTIONS = """
SELECT p.proname,
       min(CASE p.provolatile WHEN 'v' THEN 2 WHEN 's' THEN 1 ELSE 0 END),
       max(CASE p.provolatile WHEN 'v' THEN 2 WHEN 's' THEN 1 ELSE 0 END)
FROM pg_proc p
WHERE {where} AND p.prokind IN ('f', 'w', 'a')
GROUP BY p.proname ORDER BY p.proname
"""
_TYPES = """
SELECT format_type(t.oid, NULL), t.typname, t.typcategory
FROM pg_type t
WHERE {where} AND t.typcategory <> 'A' AND (t.typtype <> 'c' OR t.typrelid = 0)
ORDER BY 1
"""
_OPCLASSES = """
SELECT am.amname, oc.opcname, format_type(oc.opcintype, NULL), oc.opcdefault
FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
WHERE {where}
ORDER BY 1, 2, 3
"""
_CASTS = """
SELECT format_type(c.castsource, NULL), format_type(c.casttarget, NULL), c.castcontext, c.castmethod
FROM pg_cast c
WHERE {where}
ORDER BY 1, 2
"""
_LEVELS: tuple[Volatility, ...] = ("immutable", "stable", "volatile")


def _where(alias: str, oid: str, namespace_column: str | None, class_name: str, extension: int | None) -> str:
    """A constant filter (no outside text reaches it: ``extension`` is an oid the server gave)."""
    if extension is None:
        assert namespace_column is not None
        return f"{alias}.{namespace_column} = 'pg_catalog'::regnamespace"
    return (f"EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{class_name}'::regclass AND d.objid = {oid} "
            f"AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND d.refobjid = {int(extension)})")


def _read(conn: psycopg.Connection, extension: int | None = None) -> ExtensionFacts:
    """pg_catalog's objects (``extension`` None), or those extension ``extension`` (an oid) owns."""
    functions = {
        str(name): (_LEVELS[least], _LEVELS[most])
        for name, least, most in conn.execute(
            _FUNCTIONS.format(where=_where("p", "p.oid", "pronamespace", "pg_proc", extension))).fetchall()
    }
    types: dict[str, str] = {}
    for spelled, name, category in conn.execute(
            _TYPES.format(where=_where("t", "t.oid", "typnamespace", "pg_type", extension))).fetchall():
        types[str(spelled)] = str(category)
        types.setdefault(str(name), str(category))  # int4 as well as integer
    opclasses = tuple(
        OpClass(str(method), str(name), str(input_type), bool(default))
        for method, name, input_type, default in conn.execute(
            _OPCLASSES.format(where=_where("oc", "oc.oid", "opcnamespace", "pg_opclass", extension))).fetchall()
    )
    cast_filter = ("c.castsource < 16384 AND c.casttarget < 16384" if extension is None
                   else _where("c", "c.oid", None, "pg_cast", extension))
    casts = tuple(
        Cast(str(source), str(target), str(context), str(method))
        for source, target, context, method in conn.execute(_CASTS.format(where=cast_filter)).fetchall()
    )
    return ExtensionFacts(functions, types, opclasses, casts)


_BY_VERSION: dict[int, CatalogFacts] = {}


def catalog_facts(conn: psycopg.Connection) -> CatalogFacts:
    """What this server's ``pg_catalog`` says (read once per server version and process).

    Objects of extensions come from the built-in table (:mod:`veza_schema.sql.builtin_catalog`):
    a database need not have them installed for the schema to declare them.
    """
    version = conn.info.server_version
    cached = _BY_VERSION.get(version)
    if cached is not None:
        return cached
    core = _read(conn)
    facts = CatalogFacts(
        FunctionFacts(core.functions, source=f"pg_catalog of PostgreSQL {version // 10000}",
                      extensions={name: ext.functions for name, ext in builtin_facts().extensions.items()}),
        core.types, core.opclasses, core.casts, builtin_facts().extensions,
        source=f"pg_catalog of PostgreSQL {version // 10000}",
    )
    _BY_VERSION[version] = facts
    return facts


def function_facts(conn: psycopg.Connection) -> FunctionFacts:
    """Volatility of every function of ``pg_catalog`` as this server's catalog has it (least, most overload)."""
    return catalog_facts(conn).functions


# -- the built-in table -----------------------------------------------------------------------------
def _names(table: Mapping[str, Overloads], level: Volatility) -> list[str]:
    return [name for name, (least, most) in table.items() if least == most == level]


def _wrapped(words: list[str], width: int = 116) -> str:
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return "\n".join(lines)


def _block(name: str, body: str) -> str:
    return f'{name} = """\n{body}\n"""\n'


def _rows(facts: ExtensionFacts, prefix: str = "") -> dict[str, list[str]]:
    """The facts as ``|``-separated rows per kind (type names contain spaces)."""
    return {
        "functions": [f"{prefix}{name}|{least}|{most}" for name, (least, most) in sorted(facts.functions.items())],
        "types": [f"{prefix}{name}|{category}" for name, category in sorted(facts.types.items())],
        "opclasses": [f"{prefix}{o.method}|{o.name}|{o.input_type}|{'default' if o.default else ''}"
                      for o in facts.opclasses],
        "casts": [f"{prefix}{c.source}|{c.target}|{c.context}|{c.method}" for c in facts.casts],
    }


def _each_extension(conn: psycopg.Connection) -> list[tuple[str, ExtensionFacts]]:
    """Every extension the server offers and what it adds (installed in turn, rolled back)."""
    names = [str(r[0]) for r in conn.execute("SELECT name FROM pg_available_extensions ORDER BY name").fetchall()]
    found: list[tuple[str, ExtensionFacts]] = []
    for name in names:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {} CASCADE").format(sql.Identifier(name)))
                row = conn.execute("SELECT oid FROM pg_extension WHERE extname = %s", (name,)).fetchone()
                assert row is not None
                found.append((name, _read(conn, int(row[0]))))
        except psycopg.Error:  # needs shared_preload_libraries, a missing language...: not offered offline
            continue
    return found


def builtin_catalog_source(conn: psycopg.Connection, progress: Callable[[str], Any] | None = None) -> str:
    """The text of :mod:`veza_schema.sql.builtin_catalog`, read from the (empty) database of ``conn``.

    Regenerate it with::

        python -c "import psycopg, sys; from veza_schema.db.catalog import builtin_catalog_source as s; \\
          print(s(psycopg.connect(sys.argv[1])), end='')" postgresql://.../empty > veza_schema/sql/builtin_catalog.py
    """
    version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
    core = _read(conn)
    rows = _rows(core)
    table = core.functions
    mixed = [f"{name}:{least}:{most}" for name, (least, most) in table.items() if least != most]
    extension_rows: dict[str, list[str]] = {"functions": [], "types": [], "opclasses": [], "casts": []}
    extensions = _each_extension(conn)
    for name, facts in extensions:
        if progress:
            progress(name)
        for kind, items in _rows(facts, f"{name}|").items():
            extension_rows[kind] += items
    parts = [
        f'"""What PostgreSQL\'s catalog says, read from PostgreSQL {version}: the offline answer.\n'
        "\n"
        "Generated by :func:`veza_schema.db.catalog.builtin_catalog_source`; do not edit by hand.\n"
        "Function volatility by name (``MIXED`` lists names whose overloads differ as ``name:least:most``:\n"
        "``to_tsvector(regconfig, text)`` is immutable, ``to_tsvector(text)`` stable); types with their\n"
        "``typcategory`` (format_type spelling and internal name); operator classes per access method;\n"
        "casts with their context (i implicit, a assignment, e explicit) and method (f function, i I/O,\n"
        "b binary coercible); and the same facts for each extension the server offers, keyed by extension.\n"
        "It is read by :mod:`veza_schema.sql.facts`; ``tests/test_catalog_facts.py`` compares it with the\n"
        "test server's catalog, so a release that changes a fact fails a test instead of a plan.\n"
        '"""\n',
        "from __future__ import annotations\n",
        f'SERVER = "PostgreSQL {version}"\n',
        _block("IMMUTABLE", _wrapped(_names(table, "immutable"))),
        _block("STABLE", _wrapped(_names(table, "stable"))),
        _block("VOLATILE", _wrapped(_names(table, "volatile"))),
        _block("MIXED", _wrapped(mixed)),
        "# kept by hand, carried over from the previous file: volatile functions that only produce a value,\n"
        "# which a column default may call (sql/routes.py)\n"
        + _block("VALUE_GENERATORS", _wrapped(sorted(builtin_catalog.VALUE_GENERATORS.split()))),
        "# every extension the server offers that installs without server settings\n"
        + _block("EXTENSIONS", _wrapped([name for name, _ in extensions])),
        "# name|typcategory\n" + _block("TYPES", "\n".join(rows["types"])),
        "# access method|operator class|input type|default\n" + _block("OPCLASSES", "\n".join(rows["opclasses"])),
        "# source|target|context|method\n" + _block("CASTS", "\n".join(rows["casts"])),
        "# extension|name|least|most\n" + _block("EXTENSION_FUNCTIONS", "\n".join(extension_rows["functions"])),
        "# extension|name|typcategory\n" + _block("EXTENSION_TYPES", "\n".join(extension_rows["types"])),
        "# extension|access method|operator class|input type|default\n"
        + _block("EXTENSION_OPCLASSES", "\n".join(extension_rows["opclasses"])),
        "# extension|source|target|context|method\n" + _block("EXTENSION_CASTS", "\n".join(extension_rows["casts"])),
    ]
    return "\n".join(parts)
