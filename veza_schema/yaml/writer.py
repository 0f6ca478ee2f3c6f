"""The model -> ``schema/``-style YAML text, one file per module (``veza-schema inspect``).

One job: writing the YAML format; its length is one writer per kind of object the format declares,
plus the grouping of objects into modules.

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
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import yaml

from veza_schema.model import (
    HOME_SCHEMA,
    PUBLIC_ROLE,
    CompositeType,
    DefaultPrivilege,
    EnumType,
    Extension,
    ForeignKey,
    Function,
    Index,
    IndexElement,
    Namespace,
    Role,
    Schema,
    SequenceObject,
    Table,
    Trigger,
    View,
    default_grants,
    qualify,
    schema_of,
    split_name,
)
from veza_schema.types import short_type
from veza_schema.yaml.loader import function_body
from veza_schema.yaml.names import format_key, format_name, make_object_name, nextval_default, parse_qualified

OTHER_MODULE = "other"
# Where a project commits `veza-schema json-schema`'s output, under its root (docs/yaml-format.md).
EDITOR_SCHEMA = ("docs", "yaml-format.schema.json")
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
    """A name as a YAML key: bare when it can be, else its quoted-name form (``'"Order Items"'``)."""
    return scalar(format_name(name))


def decl(object_key: str) -> str:
    """The name a module declares an object under: its key without the module's schema."""
    return key(split_name(object_key)[1])


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


def editor_schema(out_dir: Path, project_root: Path | None) -> Path:
    """Where the JSON Schema the module files in ``out_dir`` name is kept: ``docs/`` under the project
    root; without a project, beside ``out_dir`` (a new project's ``schema/`` and ``docs/``)."""
    return (project_root or out_dir.resolve().parent).joinpath(*EDITOR_SCHEMA)


def modeline(json_schema: Path, out_dir: Path) -> str:
    """The first line of a module file in ``out_dir`` naming ``json_schema`` for editors, relative to the
    file as each file of ``schema/`` starts (``# yaml-language-server: $schema=../docs/...``).

    yaml-language-server takes the text after ``$schema=`` up to the first blank, so whitespace,
    control characters and ``%`` are percent-encoded: one comment line whatever the path holds."""
    try:
        target = Path(os.path.relpath(json_schema, out_dir.resolve())).as_posix()
    except ValueError:  # another drive
        target = json_schema.as_uri()
    encoded = "".join(char if char.isprintable() and not char.isspace() and char != "%" else quote(char)
                      for char in target)
    return f"# yaml-language-server: $schema={encoded}\n"


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
ROLES_MODULE = "roles"


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


def module_name(text: str, taken: set[str] | None = None) -> str:
    """A valid, unused module name made from an object or schema name: ``Order Items`` -> ``order_items``."""
    base = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not base or not base[0].isalpha():
        base = f"m_{base}".rstrip("_")
    name, counter = base, 2
    while taken is not None and name in taken:
        name, counter = f"{base}_{counter}", counter + 1
    return name


# A table referenced by this many other tables is a hub: its own module, not the glue of one giant group.
HUB_REFERENCES = 3


def fk_groups(schema: Schema, tables: Iterable[str]) -> dict[str, str]:
    """Tables grouped by foreign-key connectivity: table -> group name (one of its tables).

    Tables referenced by :data:`HUB_REFERENCES` or more others (``users``) are hubs, each its own
    group; the other tables form groups of the tables they are connected with (hubs left out),
    named after the member most referenced; a table alone that references only hubs joins the hub
    it references most (or first by name).
    """
    names = sorted(tables)
    members = set(names)
    referenced_by: dict[str, set[str]] = defaultdict(set)
    links: dict[str, set[str]] = defaultdict(set)
    for name in names:
        for fk in schema.tables[name].foreign_keys.values():
            if fk.ref_table in members and fk.ref_table != name:
                referenced_by[fk.ref_table].add(name)
                links[name].add(fk.ref_table)
                links[fk.ref_table].add(name)
    hubs = {name for name in names if len(referenced_by[name]) >= HUB_REFERENCES}
    group: dict[str, str] = {hub: hub for hub in hubs}
    seen: set[str] = set(hubs)
    for start in names:
        if start in seen:
            continue
        component, stack = [], [start]
        seen.add(start)
        while stack:
            current = stack.pop()
            component.append(current)
            for other in sorted(links[current]):
                if other not in seen and other not in hubs:
                    seen.add(other)
                    stack.append(other)
        if len(component) == 1:
            targets = sorted((hub for hub in links[start] if hub in hubs),
                             key=lambda hub: (-len(referenced_by[hub]), hub))
            if targets and all(other in hubs for other in links[start]):
                group[start] = targets[0]
                continue
        leader = min(component, key=lambda t: (-len(referenced_by[t]), t))
        for member in component:
            group[member] = leader
    return group


def assign_modules(schema: Schema, mapping: Mapping[str, str] | None = None, by_prefix: bool = False
                   ) -> Assignment:
    """Tables by the mapping, else by name prefix (``by_prefix``), else by foreign-key connectivity.

    Objects of another schema than ``public`` go to a module named after their schema (a module
    holds the objects of one schema). Views go to the module of the first table their query
    reads, enums and composite types to the module of the first table using them, functions to
    the module of the first table whose trigger calls them, sequences to their owning table's,
    extensions to ``other``, roles and default privileges to ``roles``; a mapping may place any
    of them explicitly.
    """
    mapping = mapping or {}
    modules: dict[str, str] = {}
    home_tables = [name for name in sorted(schema.tables) if schema_of(name) == HOME_SCHEMA]
    unmapped = [name for name in home_tables if name not in mapping]
    groups = fk_groups(schema, unmapped) if not by_prefix else {}
    for name in home_tables:
        if name in mapping:
            modules[name] = mapping[name]
        elif by_prefix:
            modules[name] = prefix_module(name)
        else:
            modules[name] = groups.get(name, name)
    taken = {module_name(schema_name) for schema_name in schema.namespaces}
    renamed: dict[str, str] = {}
    for name in home_tables:
        if name not in mapping:
            raw = modules[name]
            if raw not in renamed:
                renamed[raw] = module_name(raw, taken)
                taken.add(renamed[raw])
            modules[name] = renamed[raw]

    def schema_module(key: str) -> str:
        schema_name = schema_of(key)
        return OTHER_MODULE if schema_name == HOME_SCHEMA else module_name(schema_name)

    for name in sorted(schema.tables):
        if name not in modules:
            modules[name] = mapping.get(name) or schema_module(name)
    for name in sorted(schema.views):
        reads = [word for word in _qualified_words(schema.views[name].query)
                 if word in schema.tables and schema_of(word) == schema_of(name)]
        if name in mapping:
            modules[name] = mapping[name]
        elif reads:
            modules[name] = modules[reads[0]]
        elif by_prefix and schema_of(name) == HOME_SCHEMA:
            modules[name] = prefix_module(name)
        else:
            modules[name] = schema_module(name)
    for kinds in (schema.enums, schema.composite_types):
        for name in sorted(kinds):
            if name in mapping:
                modules[name] = mapping[name]
                continue
            users = sorted(t.name for t in schema.tables.values()
                           if schema_of(t.name) == schema_of(name) and any(_base(c.type) == name for c in t.columns))
            modules[name] = modules[users[0]] if users else schema_module(name)
    for key_name, function in sorted(schema.functions.items()):
        if key_name in mapping or function.name in mapping:
            modules[key_name] = mapping.get(key_name) or mapping[function.name]
            continue
        callers = sorted(t.table for t in schema.triggers
                         if t.function == function.name and schema_of(t.table) == schema_of(function.name))
        modules[key_name] = modules[callers[0]] if callers else schema_module(function.name)
    for name, sequence in sorted(schema.sequences.items()):
        owner = sequence.owner_table
        if name in mapping:
            modules[name] = mapping[name]
        elif owner is not None and schema_of(owner) == schema_of(name) and owner in modules:
            modules[name] = modules[owner]
        else:
            modules[name] = schema_module(name)
    for name in schema.extensions:
        modules[name] = mapping.get(name, OTHER_MODULE)
    for name in schema.namespaces:
        modules[f"schema:{name}"] = mapping.get(name) or module_name(name)
    return Assignment(modules)


_QUALIFIED_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?")


def _qualified_words(query: str) -> list[str]:
    return _QUALIFIED_WORD.findall(query)


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
    Triggers on views never join a template (templates apply to tables).
    """
    groups: dict[tuple[str, str, str, tuple[str, ...], str, str | None], list[Trigger]] = defaultdict(list)
    for trigger in schema.triggers:
        bare = split_name(trigger.table)[1]
        if trigger.table not in schema.tables or bare not in trigger.name:
            continue
        pattern = trigger.name.replace(bare, "{table}", 1)
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
    base = match.group(1) if match else module_name(split_name(function)[1])
    name = base
    counter = 2
    while name in used:
        name = f"{base}_{counter}"
        counter += 1
    return name


# -- serial columns -------------------------------------------------------------------------------
_SERIAL_NAMES = {"smallint": "smallserial", "integer": "serial", "bigint": "bigserial"}


def serial_sequences(schema: Schema) -> dict[tuple[str, str], SequenceObject]:
    """(table, column) -> the sequence a ``serial`` column would have made, where the database holds exactly that.

    The loader turns ``type: serial`` into a NOT NULL integer column drawing from
    ``{table}_{column}_seq`` (named as PostgreSQL names it), a sequence of the column's type with
    default options, owned by the column; anything else is written as it is.
    """
    found: dict[tuple[str, str], SequenceObject] = {}
    for name, sequence in schema.sequences.items():
        table_name, column_name = sequence.owner_table, sequence.owner_column
        if table_name is None or column_name is None or table_name not in schema.tables:
            continue
        column = schema.tables[table_name].column(column_name)
        expected = qualify(schema_of(table_name), make_object_name(split_name(table_name)[1], column_name, "seq"))
        if column is None or name != expected or column.nullable or column.identity or column.generated:
            continue
        if column.type != sequence.type or sequence.type not in _SERIAL_NAMES:
            continue
        plain = SequenceObject(name, sequence.type, owned_by=sequence.owned_by)
        if sequence != plain or sequence.comment is not None or sequence.grants:
            continue
        if column.default != nextval_default(name):
            continue
        found[(table_name, column_name)] = sequence
    return found


# -- emission -------------------------------------------------------------------------------------
@dataclass
class _ModuleParts:
    namespace: Namespace | None = None
    schema: str | None = None
    roles: list[Role] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    enums: list[EnumType] = field(default_factory=list)
    types: list[CompositeType] = field(default_factory=list)
    sequences: list[SequenceObject] = field(default_factory=list)
    functions: list[tuple[str, Function]] = field(default_factory=list)
    templates: list[_Template] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    default_privileges: list[DefaultPrivilege] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # model keys of what it holds, for the one-schema check


class ModuleSchemaError(ValueError):
    """A module would hold objects of several PostgreSQL schemas (a module file declares one)."""


Waivers = Mapping[str, Mapping[str, str]]
"""Object path (``tables.users``, ``views.v``, ``enums.e``, ``types.t``, ``functions.f``) -> code -> reason."""


def write_modules(schema: Schema, assignment: Assignment, waivers: Waivers | None = None) -> dict[str, str]:
    """Module name -> the YAML text of its file, in the style of ``schema/``.

    ``waivers`` are written on the tables, views, enums, types and functions they name (``inspect``
    waives the rules the database breaks, saying so in the reason).

    Raises:
        ModuleSchemaError: the assignment puts objects of two schemas in one module.

    Example:
        >>> texts = write_modules(schema, assign_modules(schema, by_prefix=True))  # doctest: +SKIP
        >>> print(texts["auth"])  # doctest: +SKIP
        module: auth
        ...
    """
    parts: dict[str, _ModuleParts] = defaultdict(_ModuleParts)
    templates, covered = find_templates(schema)
    serials = serial_sequences(schema)

    def put(key: str, module: str) -> _ModuleParts:
        part = parts[module]
        part.keys.append(key)
        return part

    for name, namespace in sorted(schema.namespaces.items()):
        module = assignment.of(f"schema:{name}")
        parts[module].namespace = namespace
        parts[module].keys.append(f"{name}.")
    if schema.roles or schema.default_privileges:
        parts[ROLES_MODULE].roles = [schema.roles[n] for n in sorted(schema.roles)]
        parts[ROLES_MODULE].default_privileges = [schema.default_privileges[k]
                                                  for k in sorted(schema.default_privileges)]
    for name, extension in schema.extensions.items():
        parts[assignment.of(name)].extensions.append(extension)
    for name in sorted(schema.enums):
        put(name, assignment.of(name)).enums.append(schema.enums[name])
    for name in sorted(schema.composite_types):
        put(name, assignment.of(name)).types.append(schema.composite_types[name])
    serial_names = {sequence.name for sequence in serials.values()}
    for name in sorted(schema.sequences):
        if name not in serial_names:
            put(name, assignment.of(name)).sequences.append(schema.sequences[name])
    for key_name in sorted(schema.functions):
        put(schema.functions[key_name].name, assignment.of(key_name)).functions.append(
            (key_name, schema.functions[key_name]))
    function_keys = {f.name: k for k, f in schema.functions.items()}
    for template in templates:
        owner = function_keys.get(template.function)
        module = assignment.of(owner) if owner else assignment.of(template.tables[0])
        put(template.tables[0], module).templates.append(template)
    for name in sorted(schema.tables):
        put(name, assignment.of(name)).tables.append(schema.tables[name])
    for name in sorted(schema.views):
        put(name, assignment.of(name)).views.append(schema.views[name])
    for module, part in parts.items():
        schemas = {key[:-1] if key.endswith(".") else schema_of(key) for key in part.keys}
        if len(schemas) > 1:
            raise ModuleSchemaError(f"module {module} would hold objects of the schemas {', '.join(sorted(schemas))}; "
                                    "a module file declares one schema: map them to different modules")
        part.schema = next(iter(schemas)) if schemas else None
        if part.namespace is None and part.schema not in (None, HOME_SCHEMA):
            part.namespace = Namespace(part.schema)
            if any(other.namespace is not None and other.namespace.name == part.schema and other is not part
                   for other in parts.values()):
                part.namespace = None
    return {module: _module_text(module, parts[module], covered, serials, waivers or {})
            for module in sorted(parts)}


def _waive(waivers: Waivers, path: str, indent: str) -> list[str]:
    """``waive:`` lines for the object at ``path`` (empty when it has none)."""
    codes = waivers.get(path)
    if not codes:
        return []
    return [f"{indent}waive:"] + [f"{indent}  {key(code)}: {scalar(reason)}" for code, reason in sorted(codes.items())]


def _module_text(module: str, parts: _ModuleParts, covered: set[tuple[str, str]],
                 serials: Mapping[tuple[str, str], SequenceObject], waivers: Waivers) -> str:
    out: list[str] = [f"module: {module}"]
    schema_name = parts.namespace.name if parts.namespace is not None else parts.schema
    if parts.namespace is not None:
        namespace = parts.namespace
        if namespace.comment is None and not namespace.grants:
            out.append(f"schema: {scalar(format_name(namespace.name))}")
        else:
            out.append("schema:")
            out.append(f"  name: {scalar(format_name(namespace.name))}")
            if namespace.comment is not None:
                out.append(f"  comment: {scalar(namespace.comment)}")
            if namespace.grants:
                out.append(f"  grants: {_grants_map(namespace.grants)}")
    elif schema_name not in (None, HOME_SCHEMA):
        out.append(f"schema: {scalar(format_name(schema_name))}")
    if parts.extensions:
        if all(e.version is None and e.schema is None for e in parts.extensions):
            out.append(f"extensions: {flow_list(format_name(e.name) for e in parts.extensions)}")
        else:
            out.append("extensions:")
            for ext in parts.extensions:
                pairs = [("name", scalar(format_name(ext.name), flow=True))]
                if ext.version is not None:
                    pairs.append(("version", json.dumps(ext.version)))
                if ext.schema is not None:
                    pairs.append(("schema", scalar(format_name(ext.schema), flow=True)))
                out.append(f"  - {flow_map(pairs)}")
    if parts.roles:
        out += ["", "roles:"]
        out += [_role_line(role) for role in parts.roles]
    if parts.enums:
        out += ["", "enums:"]
        for enum in parts.enums:
            waive = _waive(waivers, f"enums.{enum.name}", "    ")
            if enum.comment is None and not waive:
                out.append(f"  {decl(enum.name)}: {flow_list(enum.values)}")
            else:
                out += [f"  {decl(enum.name)}:", f"    values: {flow_list(enum.values)}"]
                if enum.comment is not None:
                    out.append(f"    comment: {scalar(enum.comment)}")
                out += waive
    if parts.types:
        out += ["", "types:"]
        for ctype in parts.types:
            out.append(f"  {decl(ctype.name)}:")
            if ctype.comment is not None:
                out.append(f"    comment: {scalar(ctype.comment)}")
            out.append("    attributes:")
            out += [f"      {key(a.name)}: {scalar(short_type(a.type))}" for a in ctype.attributes]
            out += _waive(waivers, f"types.{ctype.name}", "    ")
    if parts.sequences:
        out += ["", "sequences:"]
        out += [_sequence_line(sequence) for sequence in parts.sequences]
    if parts.functions:
        out += ["", "functions:"]
        for index, (_, function) in enumerate(parts.functions):
            if index:
                out.append("")
            out += _function_lines(function, waivers)
    if parts.templates:
        out += ["", "trigger_templates:"]
        for template in parts.templates:
            out += _template_lines(template)
    if parts.tables:
        out += ["", "tables:"]
        for index, table in enumerate(parts.tables):
            if index:
                out.append("")
            out += _table_lines(table, covered, serials, waivers)
    if parts.views:
        out += ["", "views:"]
        for index, view in enumerate(parts.views):
            if index:
                out.append("")
            out += _view_lines(view, waivers)
    if parts.default_privileges:
        out += ["", "default_privileges:"]
        for entry in parts.default_privileges:
            pairs = [("for_role", scalar(format_name(entry.for_role), flow=True))]
            if entry.schema is not None:
                pairs.append(("schema", scalar(format_name(entry.schema), flow=True)))
            pairs += [("on", entry.on), ("grants", _grants_map(entry.grants))]
            out.append(f"  - {flow_map(pairs)}")
    return "\n".join(out) + "\n"


def ref(name: str) -> str:
    """A reference to an object key, as a flow-safe YAML scalar (``audit.events``, ``'"Order Items"'``)."""
    return scalar(format_key(name), flow=True)


def _grants_map(grants: Mapping[str, tuple[str, ...]]) -> str:
    return flow_map([(scalar(format_name(role), flow=True), flow_list(privileges))
                     for role, privileges in sorted(grants.items())])


def _role_line(role: Role) -> str:
    pairs: list[tuple[str, str]] = []
    defaults = Role(role.name)
    for attribute in ("login", "inherit", "createdb", "createrole", "bypassrls"):
        value = getattr(role, attribute)
        if value != getattr(defaults, attribute):
            pairs.append((attribute, "true" if value else "false"))
    if role.connection_limit != -1:
        pairs.append(("connection_limit", str(role.connection_limit)))
    if role.member_of:
        pairs.append(("member_of", flow_list(format_name(m) for m in role.member_of)))
    if role.comment is not None:
        pairs.append(("comment", scalar(role.comment, flow=True)))
    return f"  {key(role.name)}: {flow_map(pairs)}"


def _sequence_line(sequence: SequenceObject) -> str:
    pairs: list[tuple[str, str]] = []
    if sequence.type != "bigint":
        pairs.append(("type", sequence.type))
    start_default = (sequence.min_value or 1) if sequence.increment > 0 else (sequence.max_value or -1)
    if sequence.start != start_default:
        pairs.append(("start", str(sequence.start)))
    if sequence.increment != 1:
        pairs.append(("increment", str(sequence.increment)))
    if sequence.min_value is not None:
        pairs.append(("min_value", str(sequence.min_value)))
    if sequence.max_value is not None:
        pairs.append(("max_value", str(sequence.max_value)))
    if sequence.cache != 1:
        pairs.append(("cache", str(sequence.cache)))
    if sequence.cycle:
        pairs.append(("cycle", "true"))
    if sequence.owned_by is not None:
        table, _, column = sequence.owned_by.rpartition(".")
        pairs.append(("owned_by", scalar(f"{format_key(table)}.{format_name(column)}", flow=True)))
    if sequence.comment is not None:
        pairs.append(("comment", scalar(sequence.comment, flow=True)))
    if sequence.grants:
        pairs.append(("grants", _grants_map(sequence.grants)))
    return f"  {decl(sequence.name)}: {flow_map(pairs)}"


def _function_lines(function: Function, waivers: Waivers) -> list[str]:
    lines = [f"  {decl(function.name)}:", f"    returns: {scalar(function.returns)}",
             f"    language: {scalar(function.language)}"]
    if function.arguments:
        lines.append(f"    arguments: {scalar(function.arguments)}")
    if function.volatility != "volatile":
        lines.append(f"    volatility: {function.volatility}")
    if function.strict:
        lines.append("    strict: true")
    if function.security_definer:
        lines.append("    security_definer: true")
    if function.leakproof:
        lines.append("    leakproof: true")
    if function.parallel != "unsafe":
        lines.append(f"    parallel: {function.parallel}")
    if function.cost is not None:
        lines.append(f"    cost: {function.cost:g}")
    if function.rows is not None:
        lines.append(f"    rows: {function.rows:g}")
    if function.settings:
        lines.append("    settings: " + flow_map([(scalar(name, flow=True), scalar(value, flow=True, sql=True))
                                                  for name, value in function.settings]))
    if dict(function.grants) != dict(default_grants("function")):
        lines.append(f"    grants: {_grants_map(function.grants)}")
    if function.comment is not None:
        lines.append(f"    comment: {scalar(function.comment)}")
    lines += _waive(waivers, f"functions.{function.name}", "    ")
    if function.body == function_body(function.body):
        lines.append(f"    body: {block_text(function.body[1:], '    ')}")
    else:  # exactly as PostgreSQL keeps it
        lines += ["    exact_body: true", f"    body: {json.dumps(function.body, ensure_ascii=False)}"]
    return lines


def _template_lines(template: _Template) -> list[str]:
    lines = [f"  {key(template.name)}:", f"    name: {scalar(template.pattern)}",
             f"    function: {ref(template.function)}", f"    timing: {template.timing}",
             f"    events: {flow_list(template.events)}"]
    if template.for_each != "row":
        lines.append(f"    for_each: {template.for_each}")
    if template.when is not None:
        lines.append(f"    when: {scalar(stable_expression(template.when))}")
    if template.has_column is not None:
        lines.append(f"    applies_to: {flow_map([('has_column', scalar(template.has_column, flow=True))])}")
    else:
        lines.append(f"    applies_to: {flow_map([('tables', flow_list(format_key(t) for t in template.tables))])}")
    return lines


def column_level_foreign_keys(table: Table) -> dict[str, ForeignKey]:
    """Column name -> FK the loader would name the same way from a column-level ``references``.

    The loader names column-level FKs ``fk_{table}_{target}``, or ``fk_{table}_{target}_{column}``
    when several columns reference the same target (table names without their schema); an FK named
    otherwise, deferrable, or on several columns stays a table-level ``foreign_keys`` entry.
    """
    bare = split_name(table.name)[1]
    candidates: dict[str, list[ForeignKey]] = defaultdict(list)
    for fk in table.foreign_keys.values():
        if len(fk.columns) == 1 and not fk.deferrable and not fk.initially_deferred:
            candidates[fk.ref_table].append(fk)
    chosen: dict[str, ForeignKey] = {}
    for target, fks in sorted(candidates.items()):
        target_bare = split_name(target)[1]
        suffixed = [fk for fk in fks if fk.name == f"fk_{bare}_{target_bare}_{fk.columns[0]}"]
        plain = [fk for fk in fks if fk.name == f"fk_{bare}_{target_bare}"]
        picked = suffixed if len(suffixed) >= 2 else plain[:1]
        columns = [fk.columns[0] for fk in picked]
        if len(set(columns)) < len(columns) or any(c in chosen for c in columns):
            continue  # one `references` per column
        chosen.update(zip(columns, picked, strict=True))
    return chosen


def _deferral(pairs: list[tuple[str, str]], deferrable: bool, deferred: bool) -> None:
    if deferrable:
        pairs.append(("deferrable", "true"))
    if deferred:
        pairs.append(("initially_deferred", "true"))


def _table_lines(table: Table, covered: set[tuple[str, str]],
                 serials: Mapping[tuple[str, str], SequenceObject], waivers: Waivers) -> list[str]:
    name = table.name
    bare = split_name(name)[1]
    lines = [f"  {key(bare)}:"]
    if table.comment is not None:
        lines.append(f"    comment: {scalar(table.comment)}")
    if table.unlogged:
        lines.append("    unlogged: true")
    if table.row_security:
        lines.append("    row_security: true")
    if table.force_row_security:
        lines.append("    force_row_security: true")
    pk = table.primary_key
    column_pk = pk.columns[0] if pk is not None and len(pk.columns) == 1 and pk.name == f"pk_{bare}" \
        and not pk.deferrable else None
    column_uniques = {uq.columns[0]: uq for uq in table.uniques.values()
                      if len(uq.columns) == 1 and uq.name == f"uq_{bare}_{uq.columns[0]}" and not uq.deferrable
                      and not uq.nulls_not_distinct}
    column_fks = column_level_foreign_keys(table)
    if not table.columns:
        lines.append("    columns: {}")
    else:
        lines.append("    columns:")
    width = max(len(key(c.name)) for c in table.columns) + 1 if table.columns else 0
    for column in table.columns:
        serial = serials.get((name, column.name))
        type_text = _SERIAL_NAMES[column.type] if serial is not None else short_type(column.type)
        pairs: list[tuple[str, str]] = [("type", scalar(type_text, flow=True))]
        if column.name == column_pk:
            pairs.append(("primary_key", "true"))
        if column.name in column_uniques:
            pairs.append(("unique", "true"))
        if column.nullable:
            pairs.append(("nullable", "true"))
        if column.default is not None and serial is None:
            pairs.append(("default", scalar(stable_expression(column.default), flow=True, sql=True)))
        if column.identity is not None:
            pairs.append(("identity", scalar(column.identity, flow=True)))
        if column.generated is not None:
            pairs.append(("generated", scalar(stable_expression(column.generated), flow=True)))
        if column.collation is not None:
            parts = parse_qualified(column.collation) or (column.collation,)
            pairs.append(("collation", scalar(".".join(format_name(part) for part in parts), flow=True)))
        if column.statistics is not None:
            pairs.append(("statistics", str(column.statistics)))
        fk = column_fks.get(column.name)
        if fk is not None:
            target = f"{format_key(fk.ref_table)}.{format_name(fk.ref_columns[0])}"
            pairs.append(("references", scalar(target, flow=True)))
            pairs.append(("on_delete", scalar(fk.on_delete, flow=True)))
            if fk.on_update != "no action":
                pairs.append(("on_update", scalar(fk.on_update, flow=True)))
        if column.comment is not None:
            pairs.append(("comment", scalar(column.comment, flow=True)))
        label = f"{key(column.name)}:"
        lines.append(f"      {label.ljust(width + 1)}{flow_map(pairs)}")
    if pk is not None and column_pk is None:
        if pk.name == f"pk_{bare}" and not pk.deferrable:
            lines.append(f"    primary_key: {_names(pk.columns)}")
        else:
            pairs = [("name", scalar(format_name(pk.name), flow=True)), ("columns", _names(pk.columns))]
            _deferral(pairs, pk.deferrable, pk.initially_deferred)
            lines.append(f"    primary_key: {flow_map(pairs)}")
    uniques = [uq for uq in sorted(table.uniques.values(), key=lambda u: u.name)
               if column_uniques.get(uq.columns[0]) is not uq]
    if uniques:
        lines.append("    unique:")
        for uq in uniques:
            if uq.deferrable or uq.nulls_not_distinct:
                pairs = [("columns", _names(uq.columns))]
                _deferral(pairs, uq.deferrable, uq.initially_deferred)
                if uq.nulls_not_distinct:
                    pairs.append(("nulls_not_distinct", "true"))
                lines.append(f"      {key(uq.name)}: {flow_map(pairs)}")
            else:
                lines.append(f"      {key(uq.name)}: {_names(uq.columns)}")
    if table.checks:
        lines.append("    checks:")
        for check in sorted(table.checks.values(), key=lambda c: c.name):
            lines.append(f"      {key(check.name)}: {scalar(stable_expression(check.expression))}")
    if table.exclusions:
        lines.append("    exclusions:")
        for ex in sorted(table.exclusions.values(), key=lambda e: e.name):
            pairs = [("using", ex.method), ("elements", flow_list(ex.elements))]
            if ex.where is not None:
                pairs.append(("where", scalar(stable_expression(ex.where), flow=True, sql=True)))
            if ex.include:
                pairs.append(("include", _names(ex.include)))
            _deferral(pairs, ex.deferrable, ex.initially_deferred)
            lines.append(f"      {key(ex.name)}: {flow_map(pairs)}")
    picked = {fk.name for fk in column_fks.values()}
    table_fks = [fk for fk in sorted(table.foreign_keys.values(), key=lambda f: f.name) if fk.name not in picked]
    if table_fks:
        lines.append("    foreign_keys:")
        for fk in table_fks:
            target = format_key(fk.ref_table) + "(" + ", ".join(format_name(c) for c in fk.ref_columns) + ")"
            lines += [f"      {key(fk.name)}:", f"        columns: {_names(fk.columns)}",
                      f"        references: {scalar(target)}",
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
        pairs = [(spec.strategy, _names(spec.columns))]
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
        lines += _trigger_lines(own)
    if table.policies:
        lines.append("    policies:")
        for policy in sorted(table.policies.values(), key=lambda p: p.name):
            lines.append(f"      {key(policy.name)}:")
            if policy.command != "all":
                lines.append(f"        command: {policy.command}")
            if not policy.permissive:
                lines.append("        permissive: false")
            if policy.roles != (PUBLIC_ROLE,):
                lines.append(f"        roles: {_names(policy.roles)}")
            if policy.using is not None:
                lines.append(f"        using: {scalar(stable_expression(policy.using), sql=True)}")
            if policy.with_check is not None:
                lines.append(f"        with_check: {scalar(stable_expression(policy.with_check), sql=True)}")
    if table.grants:
        lines.append(f"    grants: {_grants_map(table.grants)}")
    return lines + _waive(waivers, f"tables.{name}", "    ")


def _names(names: Iterable[str]) -> str:
    return flow_list(format_name(n) for n in names)


def _trigger_lines(triggers: Iterable[Trigger]) -> list[str]:
    lines: list[str] = []
    for trigger in triggers:
        lines += [f"      {key(trigger.name)}:", f"        function: {ref(trigger.function)}",
                  f"        timing: {trigger.timing}", f"        events: {flow_list(trigger.events)}"]
        if trigger.for_each != "row":
            lines.append(f"        for_each: {trigger.for_each}")
        if trigger.when is not None:
            lines.append(f"        when: {scalar(stable_expression(trigger.when))}")
    return lines


def _element_text(element: IndexElement) -> str:
    text = format_name(element.expression) if element.is_column else element.expression
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
        opclasses = [(scalar(_element_text(replace(e, descending=False, nulls=None)), flow=True),
                      scalar(e.opclass, flow=True)) for e in elements if e.opclass]
        if opclasses:
            pairs.append(("opclasses", flow_map(opclasses)))
        if index.unique:
            pairs.append(("unique", "true"))
        if index.method != "btree":
            pairs.append(("using", index.method))
        if index.where is not None:
            pairs.append(("where", scalar(stable_expression(index.where), flow=True, sql=True)))
        if index.include:
            pairs.append(("include", _names(index.include)))
        label = f"{key(index.name)}:"
        lines.append(f"{indent}{label.ljust(width + 1)}{flow_map(pairs)}")
    return lines


def _view_lines(view: View, waivers: Waivers) -> list[str]:
    lines = [f"  {key(split_name(view.name)[1])}:"]
    if view.materialized:
        lines.append("    materialized: true")
    if view.comment is not None:
        lines.append(f"    comment: {scalar(view.comment)}")
    query = view.query + "\n" if "\n" in view.query else view.query
    lines.append(f"    query: {block_text(query, '    ')}")
    if view.indexes:
        lines.append("    indexes:")
        lines += _index_lines(view.indexes, "      ")
    if view.triggers:
        lines.append("    triggers:")
        lines += _trigger_lines(sorted(view.triggers.values(), key=lambda t: t.name))
    if view.grants:
        lines.append(f"    grants: {_grants_map(view.grants)}")
    return lines + _waive(waivers, f"views.{view.name}", "    ")
