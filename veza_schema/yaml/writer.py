"""The model -> ``schema/``-style YAML text, one file per module (``veza-schema inspect``).

Why hand-written emission instead of ``yaml.dump``: the files are meant to be read and
edited by people, in the style of ``schema/`` (``docs/yaml-format.md``): one flow mapping
per column with aligned braces, short type names, the loader's shorthands wherever the
loader would produce the same model (column-level ``primary_key``/``unique``/``references``
when the constraint has the generated name, trigger templates for triggers that follow a
naming pattern). Every scalar is checked to read back as the same text, so the loader gives
back the model that was written.

Round trip contract: ``load_schema(written files)`` equals the model that was written,
except for function bodies, whose single leading newline is removed because the renderer
adds it back (``render.dollar_quote``), ``returns``, which the loader lowercases, and IN
lists over varchar columns, written back as IN lists (:func:`stable_expression`). What
matters in practice holds exactly: applying the written YAML gives a database that
introspects equal to the inspected one, so ``diff`` reports no drift right after an import.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from veza_schema.model import (
    CompositeType,
    EnumType,
    ForeignKey,
    Function,
    Index,
    IndexElement,
    Schema,
    Table,
    Trigger,
    View,
)
from veza_schema.types import short_type

OTHER_MODULE = "other"
_MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
INDENT = "  "


# -- scalars ------------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _plain_ok(text: str, flow: bool, sql: bool) -> bool:
    """Whether ``text`` written bare reads back as ``text`` (as the loader reads it)."""
    if not text or text != text.strip() or "\n" in text or text.startswith(("'", '"')):
        return False
    document = f"{{k: {text}}}" if flow else f"k: {text}"
    try:
        node = yaml.compose(document, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return False
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        return False
    value_node = node.value[0][1]
    if not isinstance(value_node, yaml.ScalarNode) or value_node.style is not None:
        return False
    value = yaml.SafeLoader("").construct_object(value_node)  # type: ignore[no-untyped-call]
    if isinstance(value, str):
        return value == text
    if sql and isinstance(value, bool):
        return ("true" if value else "false") == text
    if sql and isinstance(value, int | float):
        return str(value_node.value) == text
    return False


def scalar(text: str, *, flow: bool = False, sql: bool = False) -> str:
    """``text`` as a YAML scalar: bare when it reads back unchanged, else double-quoted.

    ``sql``: the loader turns a bare number or boolean into its SQL text (defaults), so
    ``0`` and ``true`` may stay bare.
    """
    if _plain_ok(text, flow, sql):
        return text
    return json.dumps(text, ensure_ascii=False)


def key(name: str) -> str:
    return name if _KEY.match(name) and _plain_ok(name, False, False) else json.dumps(name, ensure_ascii=False)


def flow_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(scalar(item, flow=True) for item in items) + "]"


def flow_map(pairs: Sequence[tuple[str, str]]) -> str:
    """Pairs whose values are already YAML text."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


def block_text(text: str, indent: str) -> str:
    """A multi-line text as a literal block (``|``) at ``indent``, or quoted when YAML cannot say it so."""
    if "\n" not in text.rstrip("\n") and not text.endswith("\n"):
        return scalar(text)
    lines = text.split("\n")
    literal_ok = (
        not text.endswith("\n\n")
        and all(line == line.rstrip() for line in lines)
        and "\t" not in text
        and not any(ord(ch) < 32 and ch != "\n" for ch in text)
        and text.strip() != ""
        and "\r" not in text
    )
    if not literal_ok:
        return json.dumps(text, ensure_ascii=False)
    body = text
    chomp = "" if body.endswith("\n") else "-"
    first = next(line for line in lines if line.strip())
    indicator = "2" if first.startswith(" ") else ""
    inner = indent + INDENT
    content = body[:-1] if body.endswith("\n") else body
    rendered = "\n".join(inner + line if line else "" for line in content.split("\n"))
    return f"|{indicator}{chomp}\n{rendered}"


# -- expressions ------------------------------------------------------------------------------------
_LITERAL = r"'(?:[^']|'')*'"
_VARCHAR_IN = re.compile(
    r"(?P<col>\b[a-z_][a-z0-9_$]*|\"(?:[^\"]|\"\")+\")::text (?P<op>= ANY|<> ALL) "
    r"\(ARRAY\[(?P<items>" + _LITERAL + r"::character varying(?:, " + _LITERAL + r"::character varying)*)\]"
    r"::text\[\]\)"
)


def stable_expression(text: str) -> str:
    """The catalog's text, with the one form PostgreSQL does not read back as itself put back as written.

    ``status IN ('a', 'b')`` on a varchar column is stored as ``status::text = ANY
    (ARRAY['a'::character varying, ...]::text[])``; that text, applied again, comes back as
    ``ARRAY['a'::character varying::text, ...]``, so a database rebuilt from the YAML (and the
    shadow database of ``diff``) would differ from the one inspected. The IN list does not.
    """

    def rewrite(match: re.Match[str]) -> str:
        items = ", ".join(re.findall(_LITERAL, match.group("items")))
        word = "IN" if match.group("op") == "= ANY" else "NOT IN"
        return f"{match.group('col')} {word} ({items})"

    return _VARCHAR_IN.sub(rewrite, text)


# -- module assignment ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    """Object name -> module, for every object of a schema."""

    modules: Mapping[str, str]

    def of(self, name: str) -> str:
        return self.modules.get(name, OTHER_MODULE)


def read_module_mapping(text: str) -> dict[str, str]:
    """A mapping file (``module: [name, ...]``) -> name -> module; raises ``ValueError`` on bad input."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("a module mapping must be a YAML mapping of module name to a list of names")
    found: dict[str, str] = {}
    for module, names in data.items():
        if not isinstance(module, str) or not _MODULE_NAME.match(module):
            raise ValueError(f"module name {module!r}: use lowercase letters, digits and underscores")
        if names is None:
            names = []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"module {module}: expected a list of table (or other object) names")
        for name in names:
            if name in found and found[name] != module:
                raise ValueError(f"{name} is listed in both {found[name]} and {module}")
            found[name] = module
    return found


def prefix_module(name: str) -> str:
    """``user_sessions`` -> ``user``; a name without ``_`` is its own module."""
    word = name.split("_", 1)[0].lower()
    return word if _MODULE_NAME.match(word) else OTHER_MODULE


def assign_modules(schema: Schema, mapping: Mapping[str, str] | None = None, by_prefix: bool = False
                   ) -> Assignment:
    """Tables by the mapping, else by prefix, else ``other``; the rest follows its users.

    Views go to the module of the first table their query reads, enums and composite types
    to the module of the first table (by name) using them, functions to the module of the
    first table whose trigger calls them, extensions to ``other``; a mapping may place any of
    them explicitly.
    """
    mapping = mapping or {}
    modules: dict[str, str] = {}
    for name in sorted(schema.tables):
        if name in mapping:
            modules[name] = mapping[name]
        elif by_prefix:
            modules[name] = prefix_module(name)
        else:
            modules[name] = OTHER_MODULE
    for name in sorted(schema.views):
        reads = [word for word in _WORD.findall(schema.views[name].query) if word in schema.tables]
        if name in mapping:
            modules[name] = mapping[name]
        elif reads:
            modules[name] = modules[reads[0]]
        else:
            modules[name] = prefix_module(name) if by_prefix else OTHER_MODULE
    for kinds in (schema.enums, schema.composite_types):
        for name in sorted(kinds):
            if name in mapping:
                modules[name] = mapping[name]
                continue
            users = sorted(t.name for t in schema.tables.values()
                           if any(_base(c.type) == name for c in t.columns))
            modules[name] = modules[users[0]] if users else OTHER_MODULE
    for key_name, function in sorted(schema.functions.items()):
        if key_name in mapping or function.name in mapping:
            modules[key_name] = mapping.get(key_name) or mapping[function.name]
            continue
        callers = sorted(t.table for t in schema.triggers if t.function == function.name)
        modules[key_name] = modules[callers[0]] if callers else OTHER_MODULE
    for name in schema.extensions:
        modules[name] = mapping.get(name, OTHER_MODULE)
    return Assignment(modules)


def _base(type_text: str) -> str:
    return type_text[:-2] if type_text.endswith("[]") else type_text


# -- trigger templates ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Template:
    name: str
    pattern: str
    function: str
    timing: str
    events: tuple[str, ...]
    for_each: str
    when: str | None
    tables: tuple[str, ...]
    has_column: str | None = None


def find_templates(schema: Schema) -> tuple[list[_Template], set[tuple[str, str]]]:
    """Triggers that follow one naming pattern on several tables -> templates (and the triggers they cover).

    ``trg_users_updated_at`` and ``trg_tracks_updated_at`` with the same function, timing,
    events, level and WHEN make ``trg_{table}_updated_at``; when exactly the tables having
    some column carry it, the template says ``has_column``, else it lists its tables.
    """
    groups: dict[tuple[str, str, str, tuple[str, ...], str, str | None], list[Trigger]] = defaultdict(list)
    for trigger in schema.triggers:
        if trigger.table not in trigger.name:
            continue
        pattern = trigger.name.replace(trigger.table, "{table}", 1)
        groups[(pattern, trigger.function, trigger.timing, trigger.events, trigger.for_each, trigger.when)
               ].append(trigger)
    templates: list[_Template] = []
    covered: set[tuple[str, str]] = set()
    used_names: set[str] = set()
    for group_key in sorted(groups, key=lambda k: (-len(groups[k]), k[0])):
        members = groups[group_key]
        pattern, function, timing, events, for_each, when = group_key
        tables = tuple(sorted({t.table for t in members}))
        if len(tables) < 2:
            continue
        has_column = _shared_column(schema, tables, pattern)
        name = _template_name(pattern, function, used_names)
        used_names.add(name)
        templates.append(_Template(name, pattern, function, timing, events, for_each, when, tables, has_column))
        for trigger in members:
            covered.add((trigger.table, trigger.name))
    return templates, covered


def _shared_column(schema: Schema, tables: tuple[str, ...], pattern: str) -> str | None:
    """A column that exactly ``tables`` have, among all tables (so ``has_column`` selects them).

    A column the trigger name mentions (``updated_at`` for ``trg_{table}_updated_at``) wins.
    """
    common = set.intersection(*(set(schema.tables[t].column_names) for t in tables))
    for column in sorted(common, key=lambda c: (c not in pattern, c)):
        having = {name for name, table in schema.tables.items() if table.column(column) is not None}
        if having == set(tables):
            return column
    return None


def _template_name(pattern: str, function: str, used: set[str]) -> str:
    match = re.fullmatch(r"[a-z]+_\{table\}_([a-z0-9_]+)", pattern)
    base = match.group(1) if match else function
    name = base
    counter = 2
    while name in used:
        name = f"{base}_{counter}"
        counter += 1
    return name


# -- emission -------------------------------------------------------------------------------------
@dataclass
class _ModuleParts:
    extensions: list[str] = field(default_factory=list)
    enums: list[EnumType] = field(default_factory=list)
    types: list[CompositeType] = field(default_factory=list)
    functions: list[tuple[str, Function]] = field(default_factory=list)
    templates: list[_Template] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    views: list[View] = field(default_factory=list)


def write_modules(schema: Schema, assignment: Assignment) -> dict[str, str]:
    """Module name -> the YAML text of its file, in the style of ``schema/``.

    Example:
        >>> texts = write_modules(schema, assign_modules(schema, by_prefix=True))  # doctest: +SKIP
        >>> print(texts["auth"])  # doctest: +SKIP
        module: auth
        ...
    """
    parts: dict[str, _ModuleParts] = defaultdict(_ModuleParts)
    templates, covered = find_templates(schema)
    for name in schema.extensions:
        parts[assignment.of(name)].extensions.append(name)
    for name in sorted(schema.enums):
        parts[assignment.of(name)].enums.append(schema.enums[name])
    for name in sorted(schema.composite_types):
        parts[assignment.of(name)].types.append(schema.composite_types[name])
    for key_name in sorted(schema.functions):
        parts[assignment.of(key_name)].functions.append((key_name, schema.functions[key_name]))
    function_keys = {f.name: k for k, f in schema.functions.items()}
    for template in templates:
        owner = function_keys.get(template.function)
        parts[assignment.of(owner) if owner else OTHER_MODULE].templates.append(template)
    for name in sorted(schema.tables):
        parts[assignment.of(name)].tables.append(schema.tables[name])
    for name in sorted(schema.views):
        parts[assignment.of(name)].views.append(schema.views[name])
    return {module: _module_text(module, parts[module], covered) for module in sorted(parts)}


def _module_text(module: str, parts: _ModuleParts, covered: set[tuple[str, str]]) -> str:
    out: list[str] = [f"module: {module}"]
    if parts.extensions:
        out.append(f"extensions: {flow_list(parts.extensions)}")
    if parts.enums:
        out += ["", "enums:"]
        for enum in parts.enums:
            if enum.comment is None:
                out.append(f"  {key(enum.name)}: {flow_list(enum.values)}")
            else:
                out += [f"  {key(enum.name)}:", f"    values: {flow_list(enum.values)}",
                        f"    comment: {scalar(enum.comment)}"]
    if parts.types:
        out += ["", "types:"]
        for ctype in parts.types:
            out.append(f"  {key(ctype.name)}:")
            if ctype.comment is not None:
                out.append(f"    comment: {scalar(ctype.comment)}")
            out.append("    attributes:")
            out += [f"      {key(a.name)}: {scalar(short_type(a.type))}" for a in ctype.attributes]
    if parts.functions:
        out += ["", "functions:"]
        for index, (_, function) in enumerate(parts.functions):
            if index:
                out.append("")
            out += _function_lines(function)
    if parts.templates:
        out += ["", "trigger_templates:"]
        for template in parts.templates:
            out += _template_lines(template)
    if parts.tables:
        out += ["", "tables:"]
        for index, table in enumerate(parts.tables):
            if index:
                out.append("")
            out += _table_lines(table, covered)
    if parts.views:
        out += ["", "views:"]
        for index, view in enumerate(parts.views):
            if index:
                out.append("")
            out += _view_lines(view)
    return "\n".join(out) + "\n"


def _function_lines(function: Function) -> list[str]:
    lines = [f"  {key(function.name)}:", f"    returns: {scalar(function.returns)}",
             f"    language: {scalar(function.language)}"]
    if function.arguments:
        lines.append(f"    arguments: {scalar(function.arguments)}")
    if function.volatility != "volatile":
        lines.append(f"    volatility: {function.volatility}")
    if function.security_definer:
        lines.append("    security_definer: true")
    if function.comment is not None:
        lines.append(f"    comment: {scalar(function.comment)}")
    body = function.body[1:] if function.body.startswith("\n") else function.body
    lines.append(f"    body: {block_text(body, '    ')}")
    return lines


def _template_lines(template: _Template) -> list[str]:
    lines = [f"  {key(template.name)}:", f"    name: {scalar(template.pattern)}",
             f"    function: {scalar(template.function)}", f"    timing: {template.timing}",
             f"    events: {flow_list(template.events)}"]
    if template.for_each != "row":
        lines.append(f"    for_each: {template.for_each}")
    if template.when is not None:
        lines.append(f"    when: {scalar(stable_expression(template.when))}")
    if template.has_column is not None:
        lines.append(f"    applies_to: {flow_map([('has_column', scalar(template.has_column, flow=True))])}")
    else:
        lines.append(f"    applies_to: {flow_map([('tables', flow_list(template.tables))])}")
    return lines


def column_level_foreign_keys(table: Table) -> dict[str, ForeignKey]:
    """Column name -> FK the loader would name the same way from a column-level ``references``.

    The loader names column-level FKs ``fk_{table}_{target}``, or ``fk_{table}_{target}_{column}``
    when several columns reference the same target; an FK named otherwise, deferrable, or on
    several columns stays a table-level ``foreign_keys`` entry.
    """
    candidates: dict[str, list[ForeignKey]] = defaultdict(list)
    for fk in table.foreign_keys.values():
        if len(fk.columns) == 1 and not fk.deferrable and not fk.initially_deferred \
                and _KEY.match(fk.ref_table) and _KEY.match(fk.ref_columns[0]):
            candidates[fk.ref_table].append(fk)
    chosen: dict[str, ForeignKey] = {}
    for target, fks in sorted(candidates.items()):
        suffixed = [fk for fk in fks if fk.name == f"fk_{table.name}_{target}_{fk.columns[0]}"]
        plain = [fk for fk in fks if fk.name == f"fk_{table.name}_{target}"]
        picked = suffixed if len(suffixed) >= 2 else plain[:1]
        columns = [fk.columns[0] for fk in picked]
        if len(set(columns)) < len(columns) or any(c in chosen for c in columns):
            continue  # one `references` per column
        chosen.update(zip(columns, picked, strict=True))
    return chosen


def _table_lines(table: Table, covered: set[tuple[str, str]]) -> list[str]:
    name = table.name
    lines = [f"  {key(name)}:"]
    if table.comment is not None:
        lines.append(f"    comment: {scalar(table.comment)}")
    pk = table.primary_key
    column_pk = pk.columns[0] if pk is not None and len(pk.columns) == 1 and pk.name == f"pk_{name}" else None
    column_uniques = {uq.columns[0]: uq for uq in table.uniques.values()
                      if len(uq.columns) == 1 and uq.name == f"uq_{name}_{uq.columns[0]}"}
    column_fks = column_level_foreign_keys(table)
    lines.append("    columns:")
    width = max(len(key(c.name)) for c in table.columns) + 1 if table.columns else 0
    for column in table.columns:
        pairs: list[tuple[str, str]] = [("type", scalar(short_type(column.type), flow=True))]
        if column.name == column_pk:
            pairs.append(("primary_key", "true"))
        if column.name in column_uniques:
            pairs.append(("unique", "true"))
        if column.nullable:
            pairs.append(("nullable", "true"))
        if column.default is not None:
            pairs.append(("default", scalar(stable_expression(column.default), flow=True, sql=True)))
        if column.identity is not None:
            pairs.append(("identity", scalar(column.identity, flow=True)))
        if column.generated is not None:
            pairs.append(("generated", scalar(stable_expression(column.generated), flow=True)))
        fk = column_fks.get(column.name)
        if fk is not None:
            pairs.append(("references", scalar(f"{fk.ref_table}.{fk.ref_columns[0]}", flow=True)))
            pairs.append(("on_delete", scalar(fk.on_delete, flow=True)))
            if fk.on_update != "no action":
                pairs.append(("on_update", scalar(fk.on_update, flow=True)))
        if column.comment is not None:
            pairs.append(("comment", scalar(column.comment, flow=True)))
        label = f"{key(column.name)}:"
        lines.append(f"      {label.ljust(width + 1)}{flow_map(pairs)}")
    if pk is not None and column_pk is None:
        if pk.name == f"pk_{name}":
            lines.append(f"    primary_key: {flow_list(pk.columns)}")
        else:
            named = flow_map([("name", scalar(pk.name, flow=True)), ("columns", flow_list(pk.columns))])
            lines.append(f"    primary_key: {named}")
    uniques = [uq for uq in sorted(table.uniques.values(), key=lambda u: u.name)
               if column_uniques.get(uq.columns[0]) is not uq]
    if uniques:
        lines.append("    unique:")
        lines += [f"      {key(uq.name)}: {flow_list(uq.columns)}" for uq in uniques]
    if table.checks:
        lines.append("    checks:")
        for check in sorted(table.checks.values(), key=lambda c: c.name):
            lines.append(f"      {key(check.name)}: {scalar(stable_expression(check.expression))}")
    picked = {fk.name for fk in column_fks.values()}
    table_fks = [fk for fk in sorted(table.foreign_keys.values(), key=lambda f: f.name) if fk.name not in picked]
    if table_fks:
        lines.append("    foreign_keys:")
        for fk in table_fks:
            lines += [f"      {key(fk.name)}:", f"        columns: {flow_list(fk.columns)}",
                      f"        references: {scalar(fk.ref_table + '(' + ', '.join(fk.ref_columns) + ')')}",
                      f"        on_delete: {fk.on_delete}"]
            if fk.on_update != "no action":
                lines.append(f"        on_update: {fk.on_update}")
            if fk.deferrable:
                lines.append("        deferrable: true")
            if fk.initially_deferred:
                lines.append("        initially_deferred: true")
    if table.indexes:
        lines.append("    indexes:")
        lines += _index_lines(table.indexes, "      ")
    if table.partition is not None:
        spec = table.partition
        pairs = [(spec.strategy, flow_list(spec.columns))]
        if spec.strategy == "range":
            if spec.interval is not None:
                pairs.append(("interval", spec.interval))
            pairs.append(("premake", str(spec.premake)))
        if not spec.default_partition:
            pairs.append(("default_partition", "false"))
        lines.append(f"    partition_by: {flow_map(pairs)}")
    own = [t for t in sorted(table.triggers.values(), key=lambda t: t.name) if (name, t.name) not in covered]
    if own:
        lines.append("    triggers:")
        for trigger in own:
            lines += [f"      {key(trigger.name)}:", f"        function: {scalar(trigger.function)}",
                      f"        timing: {trigger.timing}", f"        events: {flow_list(trigger.events)}"]
            if trigger.for_each != "row":
                lines.append(f"        for_each: {trigger.for_each}")
            if trigger.when is not None:
                lines.append(f"        when: {scalar(stable_expression(trigger.when))}")
    return lines


def _element_text(element: IndexElement) -> str:
    text = element.expression
    if element.descending:
        text += " desc"
    if element.nulls is not None:
        text += f" nulls {element.nulls}"
    return text


def _index_lines(indexes: Mapping[str, Index], indent: str) -> list[str]:
    lines: list[str] = []
    ordered = sorted(indexes.values(), key=lambda i: i.name)
    width = max(len(key(i.name)) for i in ordered) + 1
    for index in ordered:
        elements = index.elements
        first_expression = next((n for n, e in enumerate(elements) if not e.is_column), len(elements))
        columns_first = all(not e.is_column for e in elements[first_expression:])
        pairs: list[tuple[str, str]] = []
        if columns_first:
            if first_expression:
                pairs.append(("columns", flow_list(_element_text(e) for e in elements[:first_expression])))
            if first_expression < len(elements):
                pairs.append(("expressions", flow_list(_element_text(e) for e in elements[first_expression:])))
        else:
            pairs.append(("expressions", flow_list(_element_text(e) for e in elements)))
        opclasses = [(scalar(e.expression, flow=True), scalar(e.opclass, flow=True))
                     for e in elements if e.opclass]
        if opclasses:
            pairs.append(("opclasses", flow_map(opclasses)))
        if index.unique:
            pairs.append(("unique", "true"))
        if index.method != "btree":
            pairs.append(("using", index.method))
        if index.where is not None:
            pairs.append(("where", scalar(stable_expression(index.where), flow=True, sql=True)))
        if index.include:
            pairs.append(("include", flow_list(index.include)))
        label = f"{key(index.name)}:"
        lines.append(f"{indent}{label.ljust(width + 1)}{flow_map(pairs)}")
    return lines


def _view_lines(view: View) -> list[str]:
    lines = [f"  {key(view.name)}:"]
    if view.materialized:
        lines.append("    materialized: true")
    if view.comment is not None:
        lines.append(f"    comment: {scalar(view.comment)}")
    query = view.query + "\n" if "\n" in view.query else view.query
    lines.append(f"    query: {block_text(query, '    ')}")
    if view.indexes:
        lines.append("    indexes:")
        lines += _index_lines(view.indexes, "      ")
    return lines
