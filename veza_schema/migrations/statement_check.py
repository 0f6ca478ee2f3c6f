"""``apply``'s second look before anything runs: a generated file holds only what its header says.

Why: the loader checks every YAML text on its route into SQL (docs/security.md), and this check
is the defense in depth behind it, and against a generated file edited by hand in a pull request.
Each file is parsed with PostgreSQL's own grammar (the parse the data-loss guard reads too) and
refused (exit 3, nothing run) when it holds:

- a statement kind ``generate`` never writes for the changes its header lists (a ``DELETE``, a
  ``DROP TABLE`` under ``+ index``, a ``SET role``, a ``DO`` block that is not one of the
  generator's own, token for token);
- another number of statements than its header's ``-- Statements: N``;
- no generated header at all, unless its leading comments say ``-- veza: hand-written``.

A file marked hand-written runs as written: its author and reviewers own it (``status`` shows
the mark).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from veza_schema.errors import DatabaseStateError
from veza_schema.migrations.files import HAND_WRITTEN_MARKER, PlannedStep, read_header
from veza_schema.sql.parse import SqlSyntaxError, ast, enums, statement_nodes
from veza_schema.sql.parse_cache import on_disk
from veza_schema.sql.split import SOURCE as SPLIT_SOURCE
from veza_schema.sql.split import ParsedScript, Statement, parse_script

if TYPE_CHECKING:
    from veza_schema.sql.text import Sql

# The renderer (jinja2, the model) is imported by the functions that check a DO block, the only
# statements it is needed for: a file without one (the initial migration) is checked without it.

PARTITION_HELPER = "veza_ensure_partitions"

# What each change of a header may write, by object and verb ("+" creates, "-" drops, "~" alters,
# ">" renames); the undo of a change (a down file's "undo: + index ...") writes the opposite verb.
_C, _D, _A, _R = "create", "drop", "alter", "rename"
_REBUILD = ("RENAME TYPE", "CREATE TYPE", "COMMENT", "DROP TYPE", "ALTER TABLE ALTER COLUMN DEFAULT",
            "ALTER TABLE ALTER COLUMN TYPE")
_KINDS: dict[str, dict[str, frozenset[str]]] = {
    "extension": {_C: frozenset({"CREATE EXTENSION"}), _D: frozenset({"DROP EXTENSION"}),
                  _A: frozenset({"ALTER EXTENSION", "ALTER EXTENSION SET SCHEMA"})},
    # Roles are cluster-wide: created when missing (a DO block), never dropped by a migration.
    "role": {_C: frozenset({"DO create_role", "ALTER ROLE", "GRANT ROLE", "COMMENT"}), _D: frozenset(),
             _A: frozenset({"ALTER ROLE", "GRANT ROLE", "REVOKE ROLE", "COMMENT"})},
    "schema": {_C: frozenset({"CREATE SCHEMA", "COMMENT", "GRANT", "REVOKE"}), _D: frozenset({"DROP SCHEMA"})},
    "privileges": {_A: frozenset({"GRANT", "REVOKE"})},
    "default privileges": {_C: frozenset({"ALTER DEFAULT PRIVILEGES"}), _D: frozenset({"ALTER DEFAULT PRIVILEGES"}),
                           _A: frozenset({"ALTER DEFAULT PRIVILEGES"})},
    "sequence": {_C: frozenset({"CREATE SEQUENCE", "COMMENT", "GRANT", "REVOKE", "ALTER SEQUENCE"}),
                 _D: frozenset({"DROP SEQUENCE"}), _A: frozenset({"ALTER SEQUENCE"})},
    "policy": {_C: frozenset({"CREATE POLICY"}), _D: frozenset({"DROP POLICY"})},
    "exclusion constraint": {_C: frozenset({"ALTER TABLE ADD CONSTRAINT EXCLUDE"}),
                             _D: frozenset({"ALTER TABLE DROP CONSTRAINT"})},
    # Adding a value is "+ enum"; its undo, and a reorder ("~ enum"), rebuild the type and convert its columns.
    "enum": {
        _C: frozenset({"CREATE TYPE", "COMMENT", "ALTER TYPE ADD VALUE"}), _D: frozenset({"DROP TYPE", *_REBUILD}),
        _A: frozenset(_REBUILD),
    },
    "type": {_C: frozenset({"CREATE TYPE", "COMMENT"}), _D: frozenset({"DROP TYPE"}),
             _A: frozenset({"CREATE TYPE", "DROP TYPE", "COMMENT"})},
    "function": {
        _C: frozenset({"CREATE FUNCTION", "CREATE FUNCTION " + PARTITION_HELPER, "COMMENT", "GRANT", "REVOKE"}),
        _D: frozenset({"DROP FUNCTION", "DROP FUNCTION " + PARTITION_HELPER}),
        _A: frozenset({"CREATE FUNCTION"}), _R: frozenset({"RENAME FUNCTION"}),
    },
    "table": {
        _C: frozenset({"CREATE TABLE", "CREATE INDEX", "COMMENT", "SELECT " + PARTITION_HELPER,
                       "CREATE FUNCTION " + PARTITION_HELPER, "ALTER TABLE ADD CONSTRAINT FOREIGN KEY",
                       "CREATE TRIGGER", "DO add_constraint_if_missing", "DO partman_create_parent",
                       "ALTER TABLE ADD CONSTRAINT UNIQUE", "ALTER TABLE ALTER COLUMN STATISTICS",
                       "ALTER TABLE ROW LEVEL SECURITY", "GRANT", "REVOKE"}),
        _D: frozenset({"DROP TABLE", "DROP FUNCTION " + PARTITION_HELPER, "ALTER TABLE DROP CONSTRAINT",
                       "DO partman_forget"}),
        _A: frozenset({"SELECT " + PARTITION_HELPER, "DO drop_partitions_beyond", "ALTER TABLE SET LOGGED",
                       "ALTER TABLE ROW LEVEL SECURITY"}),
        _R: frozenset({"RENAME TABLE"}),
    },
    "column": {
        _C: frozenset({"ALTER TABLE ADD COLUMN", "COMMENT", "ALTER TABLE ALTER COLUMN STATISTICS"}),
        _D: frozenset({"ALTER TABLE DROP COLUMN"}),
        _A: frozenset({"ALTER TABLE ALTER COLUMN TYPE", "ALTER TABLE ALTER COLUMN DEFAULT",
                       "ALTER TABLE ALTER COLUMN NOT NULL", "ALTER TABLE ALTER COLUMN IDENTITY",
                       "ALTER TABLE ADD CONSTRAINT CHECK", "ALTER TABLE DROP CONSTRAINT",
                       "ALTER TABLE VALIDATE CONSTRAINT", "DO add_constraint_if_missing",
                       "DO validate_constraint_if_exists", "DO add_identity",
                       "ALTER TABLE ALTER COLUMN STATISTICS"}),
        _R: frozenset({"RENAME COLUMN"}),
    },
    "primary key": {
        _C: frozenset({"ALTER TABLE ADD CONSTRAINT PRIMARY KEY", "DO drop_invalid_index", "CREATE INDEX",
                       "DO assert_index_valid", "DO add_constraint_using_index"}),
        _D: frozenset({"ALTER TABLE DROP CONSTRAINT", "DROP INDEX"}),
    },
    "unique": {
        _C: frozenset({"ALTER TABLE ADD CONSTRAINT UNIQUE", "DO drop_invalid_index", "CREATE INDEX",
                       "DO assert_index_valid", "DO add_constraint_using_index"}),
        _D: frozenset({"ALTER TABLE DROP CONSTRAINT", "DROP INDEX"}),
    },
    "check": {_C: frozenset({"ALTER TABLE ADD CONSTRAINT CHECK", "ALTER TABLE VALIDATE CONSTRAINT"}),
              _D: frozenset({"ALTER TABLE DROP CONSTRAINT"})},
    "foreign key": {
        _C: frozenset({"ALTER TABLE ADD CONSTRAINT FOREIGN KEY", "ALTER TABLE VALIDATE CONSTRAINT",
                       "DO add_constraint_if_missing"}),
        _D: frozenset({"ALTER TABLE DROP CONSTRAINT"}),
    },
    "constraint": {_R: frozenset({"RENAME CONSTRAINT"})},
    "index": {_C: frozenset({"CREATE INDEX", "DO drop_invalid_index", "DO assert_index_valid"}),
              _D: frozenset({"DROP INDEX"}), _R: frozenset({"RENAME INDEX"})},
    "trigger": {_C: frozenset({"CREATE TRIGGER"}), _D: frozenset({"DROP TRIGGER"})},
    "view": {_C: frozenset({"CREATE VIEW", "CREATE INDEX", "COMMENT", "CREATE TRIGGER", "GRANT", "REVOKE"}),
             _D: frozenset({"DROP VIEW"}),
             _A: frozenset({"CREATE OR REPLACE VIEW"})},
    "materialized view": {_C: frozenset({"CREATE MATERIALIZED VIEW", "CREATE INDEX", "COMMENT", "GRANT", "REVOKE"}),
                          _D: frozenset({"DROP MATERIALIZED VIEW"})},
    "comment": {_A: frozenset({"COMMENT"})},
}
# Every generated file starts with these two.
_ALWAYS = frozenset({"SET lock_timeout", "SET statement_timeout"})
_VERBS = {"+": _C, "-": _D, "~": _A, ">": _R}
_UNDO = {_C: _D, _D: _C, _A: _A, _R: _R}
_OBJECTS = sorted(_KINDS, key=len, reverse=True)  # "materialized view" before "view"
_HINT = (f"if it was written or edited by hand on purpose, mark it with a `{HAND_WRITTEN_MARKER}` line in its "
         "leading comments (docs/security.md)")


class UnexpectedStatementError(DatabaseStateError):
    """A migration file holds what its header does not announce (exit 3, nothing run)."""


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def refuse_unexpected_statements(steps: Sequence[PlannedStep]) -> None:
    """Check every file of the plan before the first one runs.

    Raises:
        UnexpectedStatementError: with every finding, each as ``file:line: what``.
    """
    findings = [finding for step in steps for finding in check_step(step)]
    if findings:
        lines = [f"refusing to run: {len(findings)} problem(s) in the migration files; nothing was run:"]
        lines += [f"  {finding}" for finding in findings]
        lines.append(f"A generated file holds only what its header lists; {_HINT}.")
        raise UnexpectedStatementError("\n".join(lines))


def check_step(step: PlannedStep) -> list[Finding]:
    path = (step.migration.up_path if step.direction == "up" else step.migration.down_path) or Path("?")
    return check_file(step.sql, path)


def check_file(sql: str, path: Path) -> list[Finding]:
    """Everything in one file that ``generate`` would not have written under its header."""
    header = read_header(sql)
    if header.hand_written:
        return []
    if not header.generated:
        return [Finding(path, 1, "not written by `veza-schema generate` (no generated header) and not marked "
                                 "hand-written")]
    script = parse_script(sql)
    if script.node_types is None:
        return [Finding(path, 1, f"does not parse as PostgreSQL: {script.error}")]
    findings: list[Finding] = []
    if header.statements is not None and header.statements != len(script.statements):
        findings.append(Finding(path, 1, f"the header lists {header.statements} statement(s), the file holds "
                                         f"{len(script.statements)}"))
    allowed = set(_ALWAYS)
    for change in header.changes:
        allowed |= _allowed_by(change)
    known = _file_kinds(sql)
    if len(known) != len(script.statements):  # a damaged cache entry: judge every statement afresh
        known = (None,) * len(script.statements)
    for index, statement in enumerate(script.statements):
        kinds = known[index]
        for kind in _kinds_at(script, index) if kinds is None else kinds:
            if kind not in allowed:
                findings.append(Finding(path, statement.line, f"{_describe(kind)}, which `generate` never writes "
                                                              f"for the changes this file's header lists"))
    return findings


def _stored_kinds(stored: Any) -> tuple[tuple[str, ...] | None, ...]:
    """Kinds read back from the disk cache, their shape checked (a damaged entry raises ValueError)."""
    if {type(kinds) for kinds in stored} - {tuple, type(None)} or {type(k) for kinds in stored for k in kinds or ()} \
            - {str}:
        raise ValueError("not statement kinds")
    return tuple(stored)


@on_disk("statement_kinds", lambda kinds: kinds, _stored_kinds,
         sources=(Path(__file__), SPLIT_SOURCE))
def _file_kinds(sql: str) -> tuple[tuple[str, ...] | None, ...]:
    """Each statement's kinds in a file that parses, kept in the disk cache by the file's bytes (and this
    module's and the splitter's source), so a warm ``apply`` judges a file without pglast; None for a DO
    block, judged afresh every run against the generator's templates (which the cache key does not cover)."""
    script = parse_script(sql)
    if script.node_types is None:
        return ()
    return tuple(None if node_type == "DoStmt" else tuple(_kinds_at(script, index))
                 for index, node_type in enumerate(script.node_types))


def _kinds_at(script: ParsedScript, index: int) -> Iterator[str]:
    """Statement ``index``'s kinds, from its node type alone when that decides them (no tree is built)."""
    fixed = _BY_NODE_TYPE.get(script.node_types[index]) if script.node_types is not None else None
    if fixed is not None:
        yield fixed
        return
    tree = script.tree(index)
    if tree is None:  # cannot happen: the statement parsed within its file
        yield _UNPARSED
        return
    yield from statement_kinds(tree, script.statements[index])


def _allowed_by(change: str) -> frozenset[str]:
    """The statement kinds one header line (``+ index idx_x on t [note]``, ``undo: - table t``) allows."""
    undo = change.startswith("undo: ")
    text = change.removeprefix("undo: ")
    sign, _, rest = text.partition(" ")
    verb = _VERBS.get(sign)
    if verb is None:
        return frozenset()
    if undo:
        verb = _UNDO[verb]
    for word in _OBJECTS:
        if rest == word or rest.startswith(word + " "):
            return _KINDS[word].get(verb, frozenset())
    return frozenset()


_UNPARSED = "statement that does not parse on its own"


def _describe(kind: str) -> str:
    if kind == _UNPARSED:
        return f"a {kind}"
    if kind == "DO other":
        return "a DO block that is not one of the generator's own"
    if kind.startswith("DO "):
        return f"a DO block ({kind[3:]})"
    return f"a {kind} statement"


# -- what a statement is -------------------------------------------------------------------------
class _Words(NamedTuple):
    alter_table: dict[Any, str]  # ALTER TABLE command -> words
    constraints: dict[Any, str]  # constraint type -> words
    dropped: dict[Any, str]  # object type of a DROP -> words
    renamed: dict[Any, str]  # object type of a RENAME -> words


@cache
def _words() -> _Words:
    """pglast's enum values in words; built on first use, since pglast's enums are imported only when a
    statement's tree is needed."""
    at, con, obj = enums.AlterTableType, enums.ConstrType, enums.ObjectType
    alter_table = {
        at.AT_AddColumn: "ADD COLUMN", at.AT_DropColumn: "DROP COLUMN", at.AT_AlterColumnType: "ALTER COLUMN TYPE",
        at.AT_ColumnDefault: "ALTER COLUMN DEFAULT", at.AT_SetNotNull: "ALTER COLUMN NOT NULL",
        at.AT_DropNotNull: "ALTER COLUMN NOT NULL", at.AT_AddIdentity: "ALTER COLUMN IDENTITY",
        at.AT_SetIdentity: "ALTER COLUMN IDENTITY", at.AT_DropIdentity: "ALTER COLUMN IDENTITY",
        at.AT_AddConstraint: "ADD CONSTRAINT", at.AT_DropConstraint: "DROP CONSTRAINT",
        at.AT_ValidateConstraint: "VALIDATE CONSTRAINT", at.AT_SetStatistics: "ALTER COLUMN STATISTICS",
        at.AT_SetLogged: "SET LOGGED", at.AT_SetUnLogged: "SET LOGGED", at.AT_EnableRowSecurity: "ROW LEVEL SECURITY",
        at.AT_DisableRowSecurity: "ROW LEVEL SECURITY", at.AT_ForceRowSecurity: "ROW LEVEL SECURITY",
        at.AT_NoForceRowSecurity: "ROW LEVEL SECURITY",
    }
    constraints = {con.CONSTR_FOREIGN: "FOREIGN KEY", con.CONSTR_CHECK: "CHECK", con.CONSTR_UNIQUE: "UNIQUE",
                   con.CONSTR_PRIMARY: "PRIMARY KEY", con.CONSTR_EXCLUSION: "EXCLUDE"}
    dropped = {
        obj.OBJECT_TABLE: "TABLE", obj.OBJECT_INDEX: "INDEX", obj.OBJECT_VIEW: "VIEW",
        obj.OBJECT_MATVIEW: "MATERIALIZED VIEW", obj.OBJECT_TYPE: "TYPE", obj.OBJECT_FUNCTION: "FUNCTION",
        obj.OBJECT_TRIGGER: "TRIGGER", obj.OBJECT_EXTENSION: "EXTENSION", obj.OBJECT_SCHEMA: "SCHEMA",
        obj.OBJECT_SEQUENCE: "SEQUENCE", obj.OBJECT_POLICY: "POLICY",
    }
    renamed = {obj.OBJECT_TABLE: "TABLE", obj.OBJECT_COLUMN: "COLUMN", obj.OBJECT_TABCONSTRAINT: "CONSTRAINT",
               obj.OBJECT_INDEX: "INDEX", obj.OBJECT_TYPE: "TYPE", obj.OBJECT_FUNCTION: "FUNCTION"}
    return _Words(alter_table, constraints, dropped, renamed)


# The statements whose node type alone says their kind: most of a large file (tables, indexes,
# comments, triggers) is judged without building its parse tree.
_BY_NODE_TYPE = {
    "CreateExtensionStmt": "CREATE EXTENSION", "CreateEnumStmt": "CREATE TYPE", "CompositeTypeStmt": "CREATE TYPE",
    "CreateStmt": "CREATE TABLE", "IndexStmt": "CREATE INDEX", "CreateTrigStmt": "CREATE TRIGGER",
    "CommentStmt": "COMMENT", "CreateSeqStmt": "CREATE SEQUENCE", "AlterSeqStmt": "ALTER SEQUENCE",
    "AlterRoleStmt": "ALTER ROLE", "AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES",
    "AlterExtensionStmt": "ALTER EXTENSION", "CreatePolicyStmt": "CREATE POLICY",
}


def statement_kinds(tree: Any, statement: Statement) -> Iterator[str]:
    """The kinds of one parsed statement, as the table above names them (a kind per ALTER TABLE command)."""
    name = type(tree).__name__
    if name in _BY_NODE_TYPE:
        yield _BY_NODE_TYPE[name]
    elif isinstance(tree, ast.VariableSetStmt):
        simple = tree.kind == enums.VariableSetKind.VAR_SET_VALUE and len(tree.args or ()) == 1
        yield f"SET {tree.name}" if simple else f"SET {tree.name} (another form)"
    elif isinstance(tree, ast.AlterEnumStmt):
        yield "ALTER TYPE ADD VALUE" if tree.newVal is not None and tree.oldVal is None else "ALTER TYPE"
    elif isinstance(tree, ast.CreateFunctionStmt):
        bare = tree.funcname[-1].sval
        yield f"CREATE FUNCTION {PARTITION_HELPER}" if bare == PARTITION_HELPER else "CREATE FUNCTION"
    elif isinstance(tree, ast.DropStmt):
        kind = f"DROP {_words().dropped.get(tree.removeType, str(tree.removeType))}"
        names: list[Any] = [getattr(obj, "objname", None) for obj in tree.objects or ()]
        helper = tree.removeType == enums.ObjectType.OBJECT_FUNCTION and len(names) == 1 and bool(names[0]) \
            and names[0][-1].sval == PARTITION_HELPER
        yield f"{kind} {PARTITION_HELPER}" if helper else kind
    elif isinstance(tree, ast.AlterTableStmt) and tree.objtype == enums.ObjectType.OBJECT_TABLE:
        words = _words()
        for command in tree.cmds or ():
            kind = "ALTER TABLE " + words.alter_table.get(command.subtype, str(command.subtype))
            if command.subtype == enums.AlterTableType.AT_AddConstraint:
                kind += " " + words.constraints.get(command.def_.contype, str(command.def_.contype))
            yield kind
    elif isinstance(tree, ast.RenameStmt) and tree.renameType in _words().renamed:
        yield "RENAME " + _words().renamed[tree.renameType]
    elif isinstance(tree, ast.ViewStmt):
        yield "CREATE OR REPLACE VIEW" if tree.replace else "CREATE VIEW"
    elif isinstance(tree, ast.CreateTableAsStmt) and tree.objtype == enums.ObjectType.OBJECT_MATVIEW:
        yield "CREATE MATERIALIZED VIEW"
    elif isinstance(tree, ast.SelectStmt):
        yield f"SELECT {PARTITION_HELPER}" if _is_partition_call(tree) else "SELECT"
    elif isinstance(tree, ast.CreateSchemaStmt):
        yield "CREATE SCHEMA" if not tree.schemaElts else "CREATE SCHEMA (with elements)"
    elif isinstance(tree, ast.GrantRoleStmt):
        yield "GRANT ROLE" if tree.is_grant else "REVOKE ROLE"
    elif isinstance(tree, ast.GrantStmt):
        yield "GRANT" if tree.is_grant else "REVOKE"
    elif isinstance(tree, ast.AlterObjectSchemaStmt) and tree.objectType == enums.ObjectType.OBJECT_EXTENSION:
        yield "ALTER EXTENSION SET SCHEMA"
    elif isinstance(tree, ast.DoStmt):
        yield "DO " + (generated_do_block(statement.text) or "other")
    else:
        yield re.sub(r"(?<!^)(?=[A-Z])", " ", name.removesuffix("Stmt")).upper()  # DeleteStmt -> DELETE


def _is_partition_call(tree: Any) -> bool:
    """``SELECT veza_ensure_partitions('t', 'month', 3)`` and nothing else."""
    if any(getattr(tree, clause) for clause in ("fromClause", "whereClause", "withClause", "larg", "rarg",
                                                 "valuesLists", "intoClause")) or len(tree.targetList or ()) != 1:
        return False
    call = tree.targetList[0].val
    if not isinstance(call, ast.FuncCall) or [p.sval for p in call.funcname] != [PARTITION_HELPER]:
        return False
    args = call.args or ()
    return len(args) == 3 and all(isinstance(arg, ast.A_Const) for arg in args)


# -- the generator's DO blocks, token for token -----------------------------------------------------
_NAME, _TABLE, _OTHER = "Veza Probe Name", "Veza Probe Table", "veza_probe_clause"
_KEEP, _UPTO = 900001, 900009  # keep + 1 and upto as rendered


@dataclass(frozen=True)
class _Shape:
    """One DO template rendered with probe values; ``rebuild`` renders it again from captured ones."""

    tokens: tuple[tuple[str, str], ...]  # (token name, text) of the probe rendering
    rebuild: Callable[[dict[str, str]], Sql]


def _probe(template: str, **context: object) -> tuple[tuple[str, str], ...]:
    """The tokens of a DO template's body, rendered with the probe values."""
    from veza_schema.sql.render import environment

    path = template if "/" in template else f"changes/{template}.sql.j2"
    return _body_tokens(environment().get_template(path).render(**context)) or ()


def _body_tokens(text: str) -> tuple[tuple[str, str], ...] | None:
    """(token name, text) of the PL/pgSQL body of a ``DO`` statement, or None when it is not one."""
    from pglast.parser import ParseError, scan

    try:
        statements = statement_nodes(text)
        body: str = statements[0].stmt.args[0].arg.sval if len(statements) == 1 else ""
        tokens = scan(body)
    except (SqlSyntaxError, ParseError, AttributeError, IndexError, TypeError):
        return None
    return tuple((token.name, body[token.start:token.end + 1]) for token in tokens) if body else None


def _shapes() -> list[tuple[str, _Shape]]:
    from veza_schema.sql import render
    from veza_schema.sql.text import Sql, literal

    other = Sql(_OTHER)
    return [*{
        "add_constraint_if_missing": _Shape(
            _probe("add_constraint_if_missing", table=_TABLE, name=_NAME, constraint=other),
            lambda v: render.add_constraint_if_missing(v["table"], v["name"], _constraint_clause(v[_OTHER]))),
        "add_constraint_using_index": _Shape(
            _probe("add_constraint_using_index", table=_TABLE, name=_NAME, kind=other),
            lambda v: render.add_constraint_using_index(v["table"], v["name"], v[_OTHER])),
        "validate_constraint_if_exists": _Shape(
            _probe("validate_constraint_if_exists", table=_TABLE, name=_NAME),
            lambda v: render.validate_constraint_if_exists(v["table"], v["name"])),
        "drop_invalid_index": _Shape(_probe("drop_invalid_index", name=_NAME),
                                     lambda v: render.drop_invalid_index(v["name"])),
        "assert_index_valid": _Shape(_probe("assert_index_valid", name=_NAME),
                                     lambda v: render.assert_index_valid(v["name"])),
        "drop_partitions_beyond": _Shape(
            _probe("drop_partitions_beyond", table=_TABLE, interval=Sql(_OTHER), keep=_KEEP - 1, upto=_UPTO),
            lambda v: render.drop_partitions_beyond(v["table"], v[_OTHER], int(v["keep"]), int(v["upto"]))),
        "partman_forget": _Shape(_probe("objects/partman_forget.sql.j2", parent=literal(_PARENT)),
                                 lambda v: render.partman_forget(v["parent"].removeprefix("public."))),
    }.items(), *(("partman_create_parent", _partman_shape(interval)) for interval in render.INTERVALS),
        *(("add_identity", _identity_shape(kind, idempotent)) for kind in render.IDENTITIES
          for idempotent in (False, True))]


def _identity_shape(kind: str, idempotent: bool) -> _Shape:
    """Identity added to a column that may hold rows (one shape per kind and re-runnable form)."""
    from veza_schema.sql import render

    text = render.add_identity(_TABLE, _NAME, kind, idempotent=idempotent)
    return _Shape(_body_tokens(text) or (),
                  lambda v: render.add_identity(v["table"], v["name"], kind, idempotent=idempotent))


def _partman_shape(interval: str) -> _Shape:
    """pg_partman's registration of a table, one shape per interval (its words depend on it)."""
    from veza_schema.sql import render

    text = render.partman_create_parent(_TABLE, _NAME, interval, _UPTO)
    return _Shape(_body_tokens(text) or (),
                  lambda v: render.partman_create_parent(v["table"], v["name"], interval, int(v["upto"])))


_SHAPES: list[tuple[str, _Shape]] = []
_PARENT = f"public.{_TABLE}"  # pg_partman names a table with its schema
_QUOTED_PROBES = {f'"{_NAME}"': "name", f'"{_TABLE}"': "table"}
_LITERAL_PROBES = {f"'{_NAME}'": "name", f"'{_TABLE}'": "table", f"'\"{_NAME}\"'": "name",
                   f"'\"{_TABLE}\"'": "table", f"'{_OTHER}'": _OTHER, f"'{_PARENT}'": "parent"}


def generated_do_block(text: str) -> str | None:
    """The generator's template a ``DO`` statement is, or None: its words must match one template's
    exactly, names and values aside, and rendering that template again with the names and values
    found must give back the statement byte for byte."""
    if not _SHAPES:
        _SHAPES.extend(_shapes())
    actual = _body_tokens(text)
    if actual is None:
        return None
    if _is_role_block(text):
        return "create_role"
    for name, shape in _SHAPES:
        values = _capture(shape.tokens, actual)
        if values is None:
            continue
        try:
            rebuilt = shape.rebuild(values)
        except (ValueError, KeyError, TypeError, SqlSyntaxError):
            continue
        if rebuilt.strip().rstrip(";") == text.strip().rstrip(";"):
            return name
    return None


_ROLE_NAME = re.compile(r"WHERE rolname =\s+(E?'(?:[^']|'')*')")
_ROLE_FLAGS = re.compile(r"AND rol(canlogin|inherit|createdb|createrole|bypassrls) = (true|false)")
_ROLE_LIMIT = re.compile(r"AND rolconnlimit = (-?\d+)\)")
_ROLE_COMMENT = re.compile(r"IS DISTINCT FROM\s+(E?'(?:[^']|'')*') THEN")


def _is_role_block(text: str) -> bool:
    """The role DO block (objects/role.sql.j2): its values are read back (name, attributes, connection
    limit, comment) and the block rendered again from them must be the statement byte for byte."""
    from veza_schema.model import Role
    from veza_schema.sql import render

    name, limit = _ROLE_NAME.search(text), _ROLE_LIMIT.search(text)
    if name is None or limit is None:
        return False
    flags = dict(_ROLE_FLAGS.findall(text))
    if len(flags) != 5:
        return False
    comment = _ROLE_COMMENT.search(text)
    role = Role(_literal_text(name.group(1)), login=flags["canlogin"] == "true", inherit=flags["inherit"] == "true",
                createdb=flags["createdb"] == "true", createrole=flags["createrole"] == "true",
                bypassrls=flags["bypassrls"] == "true", connection_limit=int(limit.group(1)),
                comment=_literal_text(comment.group(1)) if comment else None)
    try:
        rebuilt = render.create_role_block(role)
    except (ValueError, TypeError):
        return False
    return rebuilt.strip().rstrip(";") == text.strip().rstrip(";")


def _literal_text(literal_sql: str) -> str:
    """The text of a literal as ``text.literal`` writes it (``E'...'`` when it holds a backslash)."""
    literal_sql = literal_sql.strip()
    if literal_sql.startswith("E"):
        return literal_sql[2:-1].replace("''", "'").replace("\\\\", "\\")
    return literal_sql[1:-1].replace("''", "'")


def _capture(probe: tuple[tuple[str, str], ...], actual: tuple[tuple[str, str], ...]) -> dict[str, str] | None:
    """The values in ``actual`` where the probe rendering holds its probes; None when the words differ."""
    values: dict[str, str] = {}
    i = j = 0
    while i < len(probe):
        kind, text = probe[i]
        if j >= len(actual):
            return None
        if text in _QUOTED_PROBES:  # a name written through ident: any identifier
            if actual[j][0] != "IDENT":
                return None
            values.setdefault(_QUOTED_PROBES[text], _unquote(actual[j][1]))
        elif text in _LITERAL_PROBES:
            if actual[j][0] != "SCONST" or not actual[j][1].startswith("'"):
                return None
            value = actual[j][1][1:-1].replace("''", "'")
            variable = _LITERAL_PROBES[text]
            values.setdefault(variable, _unquote(value) if text.startswith("'\"") else value)
        elif text == _OTHER:  # a clause or keyword: every token up to the probe's next word
            stop = probe[i + 1][1] if i + 1 < len(probe) else None
            start = j
            while j < len(actual) and actual[j][1] != stop:
                j += 1
            if j == start or j >= len(actual):
                return None
            values[_OTHER] = " ".join(t for _, t in actual[start:j])
            i += 1
            continue
        elif kind == "ICONST" and text in (str(_KEEP), str(_UPTO)):
            if actual[j][0] != "ICONST":
                return None
            values["keep" if text == str(_KEEP) else "upto"] = str(int(actual[j][1]) - (1 if text == str(_KEEP)
                                                                                       else 0))
        elif (kind, text.lower() if kind != "SCONST" else text) != \
                (actual[j][0], actual[j][1].lower() if actual[j][0] != "SCONST" else actual[j][1]):
            return None
        i += 1
        j += 1
    return values if j == len(actual) else None


def _unquote(identifier: str) -> str:
    if identifier.startswith('"') and identifier.endswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


def _constraint_clause(text: str) -> Sql:
    """A constraint clause from a DO block, accepted only in the two forms the generator writes there:
    a FOREIGN KEY, or the ``CHECK (col IS NOT NULL) NOT VALID`` that precedes SET NOT NULL."""
    from veza_schema.sql import render

    try:
        statements = statement_nodes(f"ALTER TABLE t ADD {text}")
    except SqlSyntaxError:
        raise ValueError("not a constraint clause") from None
    commands: Any = statements[0].stmt.cmds if len(statements) == 1 else ()
    if len(commands) != 1 or commands[0].subtype != enums.AlterTableType.AT_AddConstraint:
        raise ValueError("not a constraint clause")
    constraint = commands[0].def_
    if constraint.contype == enums.ConstrType.CONSTR_FOREIGN:
        return render.foreign_key_clause(_foreign_key(constraint), not_valid=bool(constraint.skip_validation))
    if constraint.contype == enums.ConstrType.CONSTR_CHECK and isinstance(constraint.raw_expr, ast.NullTest) \
            and constraint.raw_expr.nulltesttype == enums.NullTestType.IS_NOT_NULL \
            and isinstance(constraint.raw_expr.arg, ast.ColumnRef) and len(constraint.raw_expr.arg.fields) == 1 \
            and constraint.skip_validation:
        return render.not_null_check_clause(constraint.conname, constraint.raw_expr.arg.fields[0].sval)
    raise ValueError("not a constraint clause the generator writes in a DO block")


def _foreign_key(constraint: Any) -> Any:
    """The model foreign key a parsed FOREIGN KEY clause describes, for rendering it again."""
    from veza_schema.model import ForeignKey

    actions = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
    return ForeignKey(constraint.conname, tuple(k.sval for k in constraint.fk_attrs),
                      constraint.pktable.relname, tuple(k.sval for k in constraint.pk_attrs or ()),
                      actions[constraint.fk_del_action], actions[constraint.fk_upd_action],
                      bool(constraint.deferrable), bool(constraint.initdeferred))
