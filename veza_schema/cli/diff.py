"""diff (drift of a live database, or review of two schema/ versions) and inspect (database -> YAML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veza_schema.cli.common import (
    DEFAULT_SCHEMA_DIR,
    DsnOption,
    SchemaDirOption,
    ShadowDsnOption,
    check_choice,
    console,
)

if TYPE_CHECKING:
    from veza_schema.drift.compare import DriftReport
    from veza_schema.drift.review import Review

DRIFT_FORMATS = ("text", "json", "sql")
REVIEW_FORMATS = ("text", "json", "sql", "github")

ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Glob (fnmatch) of object names that are never drift; repeatable. Columns "
                                   "match as table.column.", show_default=False),
]
IgnoreUnmodeledOption = Annotated[
    list[str] | None,
    typer.Option("--ignore-unmodeled", metavar="KIND",
                 help="Accept differences in catalog facts the YAML cannot express, of this kind (rule, "
                      "inheritance, storage_parameter, owner... or all; see docs/diff.md); repeatable.",
                 show_default=False),
]


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.command("inspect")(inspect)


def diff(
    dsn: DsnOption = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    output_format: Annotated[str, typer.Option("--format", help="text, json or sql (github too with "
                                                                "--from/--to).")] = "text",
    exclude: ExcludeOption = None,
    offline: Annotated[bool, typer.Option("--offline", help="No shadow database: compare expression texts "
                                                            "after sqlglot normalization.")] = False,
    shadow_dsn: ShadowDsnOption = None,
    from_ref: Annotated[str | None, typer.Option("--from", help="Review mode: the old schema/ (git ref or "
                                                 "directory); no database.", show_default=False)] = None,
    to_ref: Annotated[str | None, typer.Option("--to", help="Review mode: the new schema/ (git ref or "
                                               "directory). Default: --schema-dir.", show_default=False)] = None,
    ignore_unmodeled: IgnoreUnmodeledOption = None,
) -> None:
    """Show what the database lacks, has in excess or has differently against schema/.

    Exit 0: no drift; 1: drift, including a difference in a catalog fact the YAML cannot express
    (a rule, a storage parameter...: "unmodeled", accepted kind by kind with --ignore-unmodeled);
    2: bad input; 3: database error. With --from/--to, show what a change to schema/ means in SQL
    instead, without a database (exit 0). Examples:

        veza-schema diff --dsn postgresql://veza@db.internal/veza --format sql

        veza-schema diff --from origin/main --to HEAD --format github
    """
    from veza_schema.errors import UsageError

    if from_ref is not None or to_ref is not None:
        if from_ref is None:
            raise UsageError("--to needs --from")
        check_choice(output_format, REVIEW_FORMATS, "--format")
        _review(from_ref, to_ref or str(schema_dir), schema_dir, output_format, exclude or [])
        return
    check_choice(output_format, DRIFT_FORMATS, "--format")
    from veza_schema.drift.compare import check_unmodeled_kinds

    try:
        check_unmodeled_kinds(ignore_unmodeled or [])
    except ValueError as exc:
        raise UsageError(f"--ignore-unmodeled: {exc}") from exc
    report = _drift(dsn, schema_dir, offline, shadow_dsn, exclude or [], ignore_unmodeled or [])
    _print_drift(report, schema_dir, output_format, shadow_dsn)
    raise typer.Exit(1 if report.drift else 0)


def _drift(dsn: str | None, schema_dir: Path, offline: bool, shadow_dsn: str | None,
           exclude: list[str], ignore_unmodeled: list[str]) -> DriftReport:
    from veza_schema.db.dsn import connect, resolve_dsn
    from veza_schema.drift.compare import detect_drift
    from veza_schema.drift.shadow_cache import cache_directory
    from veza_schema.yaml.loader import load_schema

    desired = load_schema(schema_dir)
    target = resolve_dsn(dsn)
    conn = connect(target)
    try:
        return detect_drift(conn, desired, offline=offline, shadow_dsn=shadow_dsn, exclude=exclude,
                            database=target.display, ignore_unmodeled=ignore_unmodeled,
                            shadow_cache=cache_directory())
    finally:
        conn.close()


def _print_drift(report: DriftReport, schema_dir: Path, output_format: str, shadow_dsn: str | None) -> None:
    from rich.markup import escape

    from veza_schema.diff.changes import describe
    from veza_schema.drift.reconcile import reconcile
    from veza_schema.drift.report import changes_tree, count_items, drift_document

    out = console()
    if output_format == "json":
        print(json.dumps(drift_document(report), indent=2, ensure_ascii=False))
        return
    if output_format == "sql":
        from veza_schema.sql.text import comment_line  # free text on a -- line: line breaks removed

        plan = reconcile(report.changes, report.current, report.desired, report.source)
        print("-- " + comment_line(f"veza-schema diff: SQL reconciling {report.database} with {schema_dir}/ "
                                   f"({len(report.changes)} change(s), {report.mode} comparison)"))
        for change, reason in plan.refused:
            print("-- " + comment_line(f"not reconciled: {describe(change)}: {reason}"))
        for change, reason in plan.unsafe:
            print("-- " + comment_line(f"WARNING: included, but not online-safe (review before running): "
                                       f"{describe(change)}: {reason}"))
        for entry in report.unmodeled:
            print("-- " + comment_line("not reconciled (the YAML cannot express it; fix it by hand or "
                                       f"--ignore-unmodeled {entry.fact.kind}): {' '.join(str(entry).split())}"))
        if not plan.statements:
            print("-- no drift" if not report.drift else "-- nothing to run")
        for statement in plan.statements:
            print(statement.rstrip("\n"))
        return
    how = ("offline: expression texts compared after sqlglot normalization, no shadow database"
           if report.mode == "offline" else f"through a shadow database on {report.shadow}")
    out.print(f"Database: {report.database}", markup=False)
    out.print(f"Compared with {schema_dir}/ ({how}).", markup=False)
    for warning in report.warnings:
        out.print(f"[dim]note: {warning}[/]", highlight=False)
    if report.ignored_unmodeled:
        out.print(f"[dim]note: unmodeled differences accepted: {', '.join(report.ignored_unmodeled)}[/]",
                  highlight=False)
    if not report.drift:
        out.print("[green]No drift.[/]")
        return
    if report.changes:
        views = set(report.current.views) | set(report.desired.views)
        out.print(changes_tree("[bold]Drift[/] [dim](+ missing from the database, - only in the database, "
                               "~ different)[/]", report.changes, report.modules, views), soft_wrap=False)
    if report.unmodeled:
        out.print("[bold]Unmodeled drift[/] [dim](catalog facts the YAML cannot express; fix by hand, or accept "
                  "a kind with --ignore-unmodeled KIND)[/]")
        for entry in report.unmodeled:
            out.print(f"  [magenta]! {escape(str(entry))}[/]", highlight=False)
    counts = count_items(report.changes)
    out.print(f"[yellow]{sum(counts.values()) + len(report.unmodeled)} difference(s)[/]: {counts['missing']} "
              f"missing, {counts['extra']} extra, {counts['different']} different, {len(report.unmodeled)} "
              "unmodeled. `--format sql` prints the SQL that reconciles what the YAML expresses.")


def _review(from_ref: str, to_ref: str, schema_dir: Path, output_format: str, exclude: list[str]) -> None:
    from veza_schema.drift.review import github_markdown, review, review_document

    result = review(from_ref, to_ref, schema_dir, exclude)
    if output_format == "json":
        print(json.dumps(review_document(result), indent=2, ensure_ascii=False))
    elif output_format == "github":
        print(github_markdown(result), end="")
    elif output_format == "sql":
        _print_review_sql(result)
    else:
        _print_review_text(result)


def _print_review_sql(result: Review) -> None:
    from veza_schema.errors import UsageError

    if result.sql is None:
        raise UsageError(result.sql_error or "no SQL")
    from veza_schema.sql.text import comment_line  # free text on a -- line: line breaks removed

    print("-- " + comment_line(f"veza-schema diff: {result.from_label} -> {result.to_label} "
                               f"({len(result.changes)} change(s))"))
    for refused in result.refused:
        print("-- " + comment_line(f"refused by the planner: {refused}"))
    for statement in result.sql:
        print(statement.rstrip("\n"))


def _print_review_text(result: Review) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    out = console()
    if not result.changes:
        out.print(f"No schema changes from {result.from_label} to {result.to_label}.", markup=False)
        return
    tree = Tree(f"[bold]Schema changes[/] {escape(result.from_label)} -> {escape(result.to_label)}")
    styles = {"+": "green", "-": "red", "~": "yellow", ">": "cyan"}
    for module, groups in result.grouped().items():
        branch = tree.add(f"[bold]module {escape(module)}[/]")
        for title, found in groups.items():
            leaf = branch.add(escape(title))
            for item in found:
                leaf.add(f"[{styles.get(item.sign, 'white')}]{escape(item.sign + ' ' + item.description)}[/]")
    out.print(tree, soft_wrap=False)
    for refused in result.refused:
        out.print(f"[yellow]refused by the planner:[/] {escape(refused)}")
    if result.sql is None:
        out.print(f"[yellow]SQL not available:[/] {escape(result.sql_error or '')}")
        return
    out.print(f"SQL the migration would contain ({len(result.sql)} statement(s)):")
    out.print("\n".join(s.rstrip("\n") for s in result.sql), markup=False, highlight=False)


def inspect(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the module YAML files to.")],
    dsn: DsnOption = None,
    module_map: Annotated[Path | None, typer.Option("--module-map", "--modules",
                                                    help="YAML file mapping each module name to a list of its "
                                                         "tables (or other objects).", show_default=False)] = None,
    prefix_modules: Annotated[bool, typer.Option("--prefix-modules", help="Module of a table: its name's first "
                                                                          "word before '_'.")] = False,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob (fnmatch) of object names to leave "
                                                      "out; repeatable.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the YAML files already in --out.")] = False,
    ignore_unmodeled: IgnoreUnmodeledOption = None,
) -> None:
    """Write schema/-style YAML, one file per module, from a live database (every schema of it).

    Tables are grouped by --module-map, else by name prefix with --prefix-modules, else by
    foreign-key connectivity; objects of other schemas go to a module of their schema. The
    files load, lint (rules the database breaks are waived "from inspect: ..."), and apply
    back to the same database. Every catalog fact the YAML cannot express is printed; exit 1
    when there is one (accept kinds with --ignore-unmodeled), 2 when an object cannot be
    written at all (named). Each file starts with the `# yaml-language-server` line of schema/'s
    files, naming docs/yaml-format.schema.json under the project root for editors. Example:

        veza-schema inspect --dsn postgresql://veza@db.internal/veza --out schema
    """
    from veza_schema.db.dsn import connect, resolve_dsn
    from veza_schema.drift.adopt import InspectError, inspect_database, object_counts
    from veza_schema.drift.compare import check_unmodeled_kinds
    from veza_schema.errors import InternalError, UsageError, VezaSchemaError
    from veza_schema.project import Project
    from veza_schema.yaml.loader import display_path
    from veza_schema.yaml.writer import editor_schema, modeline, read_module_mapping

    try:
        check_unmodeled_kinds(ignore_unmodeled or [])
    except ValueError as exc:
        raise UsageError(f"--ignore-unmodeled: {exc}") from exc
    mapping = None
    if module_map is not None:
        try:
            mapping = read_module_mapping(module_map.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--module-map {module_map}: {exc}") from exc
    existing = sorted(out_dir.glob("*.yaml")) + sorted(out_dir.glob("*.yml")) if out_dir.is_dir() else []
    if existing and not force:
        raise UsageError(f"{out_dir} already holds {len(existing)} YAML file(s); use --force to replace them")
    target = resolve_dsn(dsn)
    conn = connect(target)
    try:
        result = inspect_database(conn, mapping=mapping, by_prefix=prefix_modules, exclude=exclude or [])
    except InspectError as exc:
        raise (UsageError if exc.usage else InternalError)(f"inspect: {exc}") from exc
    finally:
        conn.close()
    report = console()
    if result.unrepresentable:
        for fact in result.unrepresentable:
            report.print(f"cannot be written: {fact}", highlight=False, markup=False)
        raise VezaSchemaError(f"inspect: {len(result.unrepresentable)} object(s) cannot be written in the YAML "
                              "(named above); nothing was written")
    if result.not_carried:
        for line in result.not_carried:
            report.print(f"not carried by the YAML (a bug, please report): {line}", markup=False, highlight=False)
        raise InternalError("inspect: the written YAML does not carry the whole database (see above); "
                            "nothing was written")
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in existing:
        stale.unlink()
    project = ctx.find_root().obj
    json_schema = editor_schema(out_dir, project.root if isinstance(project, Project) else None)
    first_line = modeline(json_schema, out_dir)
    for module, text in result.texts.items():
        (out_dir / f"{module}.yaml").write_text(first_line + text, encoding="utf-8")
    ignored = set(ignore_unmodeled or [])
    shown = [fact for fact in result.unmodeled if "all" not in ignored and fact.kind not in ignored]
    for fact in shown:
        report.print(f"not in the YAML ({fact.kind}): {fact}", markup=False, highlight=False)
    counts = object_counts(result.schema)
    listing = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
    report.print(f"Wrote {len(result.texts)} module file(s) to {out_dir}: {listing or 'an empty schema'} "
                 f"({result.queries} catalog queries).", markup=False, highlight=False)
    if result.texts and not json_schema.is_file():
        named = display_path(json_schema)
        report.print(f"Editors check the files against {named} (their first line): write it with "
                     f"`veza-schema json-schema --output {named}`.", markup=False, highlight=False)
    if result.waived:
        report.print(f"{result.waived} lint rule(s) the database breaks are waived on their objects "
                     "(reason 'from inspect: ...'): review them.", markup=False, highlight=False)
    if shown:
        report.print(f"{len(shown)} catalog fact(s) are not in the YAML (listed above): applying these files "
                     "elsewhere would not recreate them. `diff` reports them as unmodeled drift; accept a kind "
                     "with --ignore-unmodeled KIND.", markup=False, highlight=False)
        raise typer.Exit(1)
