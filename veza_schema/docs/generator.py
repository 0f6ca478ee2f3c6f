"""Reader docs from the model: one Markdown page per module, an index, and Mermaid diagrams.

Python decides what appears, in which order, and how names are made safe for Mermaid;
the Jinja templates in ``templates/docs/`` hold the words. Everything is sorted (columns
keep their declared order), so the same YAML gives byte-identical pages and CI can fail
on committed docs that no longer match ``schema/`` (``veza-schema docs --check``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jinja2

from veza_schema.errors import UsageError
from veza_schema.managed import partition_name_pattern
from veza_schema.model import (
    CheckConstraint,
    Column,
    CompositeType,
    EnumType,
    ForeignKey,
    Function,
    Index,
    Module,
    Schema,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)
from veza_schema.sql.render import index_element, templates_dir
from veza_schema.types import short_type

INDEX_PAGE = "index.md"

# Words Mermaid's grammars read as keywords (checked with Mermaid 11's parser): an entity, attribute
# or type so named gets a trailing underscore.
_MERMAID_ENTITY_RESERVED = frozenset({
    "erdiagram", "flowchart", "graph", "title", "acctitle", "accdescr", "direction", "style", "classdef",
    "class", "end", "subgraph", "click", "linkstyle", "default", "one", "many", "to", "only", "zero",
    "optionally",
})
_MERMAID_ATTRIBUTE_RESERVED = frozenset({"pk", "fk", "uk"})
_NOT_WORD = re.compile(r"[^A-Za-z0-9_]+")


# -- text helpers (also template filters) ------------------------------------------------
def md_cell(text: object) -> str:
    """Text safe inside one Markdown table cell: pipes escaped, line breaks as ``<br>``."""
    value = "" if text is None else str(text)
    lines = [line.strip() for line in value.strip().splitlines()]
    return "<br>".join(line for line in lines if line).replace("|", "\\|")


def md_code(text: object) -> str:
    """An inline code span whose fence cannot clash with backticks inside the text."""
    value = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _word(text: str, fallback: str, reserved: frozenset[str]) -> str:
    cleaned = re.sub("_+", "_", _NOT_WORD.sub("_", text)).strip("_") or fallback
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned + "_" if cleaned.lower() in reserved else cleaned


def mermaid_name(name: str) -> str:
    """A Mermaid entity or node name: ``[A-Za-z_][A-Za-z0-9_]*``, never a grammar keyword."""
    return _word(name, "_", _MERMAID_ENTITY_RESERVED)


def mermaid_attribute(name: str) -> str:
    """An erDiagram attribute name (``pk``, ``fk`` and ``uk`` would be read as key markers)."""
    return _word(name, "_", _MERMAID_ATTRIBUTE_RESERVED)


def mermaid_type(canonical: str) -> str:
    """An erDiagram attribute type (no parentheses, commas or spaces): ``varchar(255)`` -> ``varchar_255``."""
    return _word(short_type(canonical).replace("[]", "_array"), "unknown", _MERMAID_ATTRIBUTE_RESERVED)


def mermaid_label(text: str) -> str:
    """Text inside a double-quoted Mermaid label."""
    return " ".join(text.replace('"', "'").split())


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def page_name(module: str) -> str:
    return f"{module}.md"


# -- the view model handed to the templates ------------------------------------------------
@dataclass(frozen=True)
class ColumnDoc:
    column: Column
    type: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class LinkDoc:
    """A reference to a table, possibly on another module's page."""

    name: str
    href: str
    module: str


@dataclass(frozen=True)
class ForeignKeyDoc:
    fk: ForeignKey
    target: LinkDoc


@dataclass(frozen=True)
class ReferrerDoc:
    fk: ForeignKey
    source: LinkDoc


@dataclass(frozen=True)
class IndexDoc:
    index: Index
    elements: tuple[str, ...]
    refreshable: bool = False  # usable by REFRESH MATERIALIZED VIEW CONCURRENTLY


@dataclass(frozen=True)
class TableDoc:
    table: Table
    columns: tuple[ColumnDoc, ...]
    tags: tuple[str, ...]
    uniques: tuple[UniqueConstraint, ...]
    checks: tuple[CheckConstraint, ...]
    foreign_keys: tuple[ForeignKeyDoc, ...]
    referenced_by: tuple[ReferrerDoc, ...]
    indexes: tuple[IndexDoc, ...]
    triggers: tuple[Trigger, ...]
    partition_name: str | None  # name pattern of the managed partitions, e.g. events_pYYYYMM


@dataclass(frozen=True)
class ViewDoc:
    view: View
    depends_on: tuple[str, ...]
    indexes: tuple[IndexDoc, ...]
    concurrently: bool


@dataclass(frozen=True)
class ErAttribute:
    type: str
    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ErEntity:
    name: str
    attributes: tuple[ErAttribute, ...]
    external_module: str | None = None  # set for a table of another module, drawn because it is referenced


@dataclass(frozen=True)
class ErRelationship:
    child: str
    child_cardinality: str
    parent_cardinality: str
    parent: str
    label: str


@dataclass(frozen=True)
class ErDiagram:
    entities: tuple[ErEntity, ...]
    relationships: tuple[ErRelationship, ...]


@dataclass(frozen=True)
class ModulePage:
    module: Module
    extensions: tuple[str, ...]
    enums: tuple[EnumType, ...]
    composite_types: tuple[tuple[CompositeType, tuple[tuple[str, str], ...]], ...]
    functions: tuple[Function, ...]
    tables: tuple[TableDoc, ...]
    views: tuple[ViewDoc, ...]
    diagram: ErDiagram | None


@dataclass(frozen=True)
class ModuleSummary:
    module: Module
    node: str
    href: str
    tables: int
    views: int
    enums: int
    functions: int


@dataclass(frozen=True)
class ModuleEdge:
    source: str
    target: str
    count: int


@dataclass(frozen=True)
class IndexPage:
    modules: tuple[ModuleSummary, ...]
    edges: tuple[ModuleEdge, ...]
    totals: dict[str, int] = field(default_factory=dict)


# -- decisions -----------------------------------------------------------------------------

def _modules(schema: Schema) -> dict[str, Module]:
    """Declared modules plus any module an object names (a model built without a loader)."""
    found = dict(schema.modules)
    for group in (schema.tables, schema.views, schema.enums, schema.composite_types, schema.functions,
                  schema.extensions):
        for obj in group.values():
            module = getattr(obj, "module", "")
            if module and module not in found:
                found[module] = Module(module)
    if INDEX_PAGE.removesuffix(".md") in found:
        raise UsageError(f"a module named 'index' would overwrite the docs' {INDEX_PAGE}; rename the module")
    return dict(sorted(found.items()))


def _link(schema: Schema, name: str, from_module: str) -> LinkDoc:
    target = schema.tables.get(name)
    module = target.module if target is not None else ""
    if module == from_module:
        return LinkDoc(name, f"#{anchor(name)}", module)
    if not module:
        return LinkDoc(name, "", module)
    return LinkDoc(name, f"{page_name(module)}#{anchor(name)}", module)


def _index_doc(index: Index) -> IndexDoc:
    elements = tuple(index_element(e.expression, e.is_column, e.descending, e.nulls, e.opclass)
                     for e in index.elements)
    return IndexDoc(index, elements, index.serves_concurrent_refresh)


def _column_keys(table: Table, column: str) -> tuple[str, ...]:
    keys = []
    if table.primary_key and column in table.primary_key.columns:
        keys.append("PK")
    if any(column in fk.columns for fk in table.foreign_keys.values()):
        keys.append("FK")
    if any(column in uq.columns for uq in table.uniques.values()):
        keys.append("UK")
    return tuple(keys)


def _table_doc(schema: Schema, table: Table) -> TableDoc:
    referrers = sorted(((other.name, fk) for other in schema.tables.values()
                        for fk in other.foreign_keys.values() if fk.ref_table == table.name),
                       key=lambda pair: (pair[0], pair[1].name))
    return TableDoc(
        table=table,
        columns=tuple(ColumnDoc(c, short_type(c.type), _column_keys(table, c.name)) for c in table.columns),
        tags=tuple(sorted(table.tags)),
        uniques=tuple(sorted(table.uniques.values(), key=lambda u: u.name)),
        checks=tuple(sorted(table.checks.values(), key=lambda c: c.name)),
        foreign_keys=tuple(ForeignKeyDoc(fk, _link(schema, fk.ref_table, table.module))
                           for fk in sorted(table.foreign_keys.values(), key=lambda fk: fk.name)),
        referenced_by=tuple(ReferrerDoc(fk, _link(schema, name, table.module)) for name, fk in referrers),
        indexes=tuple(_index_doc(ix) for ix in sorted(table.indexes.values(), key=lambda ix: ix.name)),
        triggers=tuple(sorted(table.triggers.values(), key=lambda t: t.name)),
        partition_name=_partition_name(table),
    )


def _partition_name(table: Table) -> str | None:
    """The names maintenance gives a table's partitions (``messages_pYYYYMM``), for the docs."""
    spec = table.partition
    if spec is None or spec.strategy != "range" or not spec.interval:
        return None
    return partition_name_pattern(table.name, spec.interval)


def _one_to_one(table: Table, columns: tuple[str, ...]) -> bool:
    """The FK columns are themselves unique, so each parent row has at most one child."""
    wanted = set(columns)
    keys = [uq.columns for uq in table.uniques.values()]
    keys += [ix.column_names for ix in table.indexes.values()
             if ix.unique and ix.where is None and len(ix.column_names) == len(ix.elements)]
    if table.primary_key:
        keys.append(table.primary_key.columns)
    return any(set(key) == wanted for key in keys)


def _er_entity(table: Table, columns: tuple[str, ...] | None = None, external: str | None = None) -> ErEntity:
    chosen = [c for c in table.columns if columns is None or c.name in columns]
    return ErEntity(
        mermaid_name(table.name),
        tuple(ErAttribute(mermaid_type(c.type), mermaid_attribute(c.name), _column_keys(table, c.name))
              for c in chosen),
        external,
    )


def _diagram(schema: Schema, tables: list[Table]) -> ErDiagram | None:
    """The module's tables, plus the referenced columns of other modules' tables its FKs point at."""
    if not tables:
        return None
    own = {t.name for t in tables}
    external: dict[str, set[str]] = {}
    relationships: list[ErRelationship] = []
    for table in tables:
        for fk in sorted(table.foreign_keys.values(), key=lambda fk: fk.name):
            target = schema.tables.get(fk.ref_table)
            if target is None:
                continue
            if target.name not in own:
                external.setdefault(target.name, set()).update(fk.ref_columns)
            nullable = any((col := table.column(name)) is not None and col.nullable for name in fk.columns)
            relationships.append(ErRelationship(
                child=mermaid_name(table.name),
                child_cardinality="|o" if _one_to_one(table, fk.columns) else "}o",
                parent_cardinality="o|" if nullable else "||",
                parent=mermaid_name(target.name),
                label=mermaid_label(fk.name),
            ))
    entities = [_er_entity(t) for t in tables]
    entities += [_er_entity(schema.tables[name], tuple(sorted(cols)), schema.tables[name].module or "?")
                 for name, cols in sorted(external.items())]
    relationships.sort(key=lambda r: (r.child, r.parent, r.label))
    return ErDiagram(tuple(entities), tuple(relationships))


def _view_doc(view: View) -> ViewDoc:
    indexes = tuple(_index_doc(ix) for ix in sorted(view.indexes.values(), key=lambda ix: ix.name))
    return ViewDoc(view, tuple(sorted(view.depends_on)), indexes,
                   view.materialized and any(ix.refreshable for ix in indexes))


def module_page(schema: Schema, module: Module) -> ModulePage:
    def mine(group: dict) -> list:
        return [obj for name, obj in sorted(group.items()) if obj.module == module.name]

    tables: list[Table] = mine(dict(schema.tables))
    return ModulePage(
        module=module,
        extensions=tuple(e.name for e in mine(dict(schema.extensions))),
        enums=tuple(mine(dict(schema.enums))),
        composite_types=tuple((ct, tuple((a.name, short_type(a.type)) for a in ct.attributes))
                              for ct in mine(dict(schema.composite_types))),
        functions=tuple(mine(dict(schema.functions))),
        tables=tuple(_table_doc(schema, t) for t in tables),
        views=tuple(_view_doc(v) for v in mine(dict(schema.views))),
        diagram=_diagram(schema, tables),
    )


def index_page(schema: Schema) -> IndexPage:
    modules = _modules(schema)
    count = Counter[tuple[str, str]]()
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            target = schema.tables.get(fk.ref_table)
            if target is not None and target.module != table.module:
                count[(table.module, target.module)] += 1

    def tally(group: dict, name: str) -> int:
        return sum(1 for obj in group.values() if obj.module == name)

    summaries = tuple(ModuleSummary(
        module=module,
        node=mermaid_name("m_" + name),
        href=page_name(name),
        tables=tally(dict(schema.tables), name),
        views=tally(dict(schema.views), name),
        enums=tally(dict(schema.enums), name),
        functions=tally(dict(schema.functions), name),
    ) for name, module in modules.items())
    edges = tuple(ModuleEdge(mermaid_name("m_" + source), mermaid_name("m_" + target), n)
                  for (source, target), n in sorted(count.items()))
    totals = {"modules": len(summaries), "tables": len(schema.tables), "views": len(schema.views),
              "indexes": len(schema.indexes), "cross_module_fks": sum(count.values())}
    return IndexPage(summaries, edges, totals)


# -- text ---------------------------------------------------------------------------------------
@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cell=md_cell, code=md_code, mermaid_label=mermaid_label, anchor=anchor)
    return env


def _tidy(text: str) -> str:
    """No trailing spaces, no runs of blank lines (outside fences), one final newline."""
    out: list[str] = []
    fenced = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            fenced = not fenced
        if line or fenced or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def render_docs(schema: Schema) -> dict[str, str]:
    """File name -> Markdown for every page: ``index.md`` and one ``<module>.md`` per module."""
    env = environment()
    pages = {INDEX_PAGE: _tidy(env.get_template("docs/index.md.j2").render(page=index_page(schema)))}
    template = env.get_template("docs/module.md.j2")
    for module in _modules(schema).values():
        pages[page_name(module.name)] = _tidy(template.render(page=module_page(schema, module)))
    return dict(sorted(pages.items()))


@dataclass(frozen=True)
class StalePage:
    path: Path
    reason: str  # "missing", "differs" or "not generated"


def stale_pages(schema: Schema, out_dir: Path) -> list[StalePage]:
    """Pages on disk that differ from what :func:`write_docs` would write (for ``--check``)."""
    pages = render_docs(schema)
    stale: list[StalePage] = []
    for name, text in pages.items():
        path = out_dir / name
        if not path.is_file():
            stale.append(StalePage(path, "missing"))
        elif path.read_bytes().replace(b"\r\n", b"\n") != text.encode("utf-8"):  # a CRLF checkout is fresh
            stale.append(StalePage(path, "differs"))
    if out_dir.is_dir():
        stale += [StalePage(path, "not generated") for path in sorted(out_dir.glob("*.md"))
                  if path.name not in pages]
    return sorted(stale, key=lambda page: page.path)


def write_docs(schema: Schema, out_dir: Path) -> list[Path]:
    """Write every page (only when its bytes change) and delete ``*.md`` pages no longer generated.

    Returns the generated pages' paths, sorted.
    """
    pages = render_docs(schema)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in pages.items():
        path = out_dir / name
        data = text.encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    for path in sorted(out_dir.glob("*.md")):
        if path.name not in pages:
            path.unlink()
    return written
