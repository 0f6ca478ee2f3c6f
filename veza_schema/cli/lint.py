"""``veza-schema lint``: check schema/ against the seed's rules, integrity and PostgreSQL pitfalls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veza_schema.cli.common import (
    DEFAULT_MIGRATIONS_DIR,
    DEFAULT_SCHEMA_DIR,
    MigrationsDirOption,
    SchemaDirOption,
    ShadowDsnOption,
)

if TYPE_CHECKING:
    from veza_schema.lint.findings import Severity
    from veza_schema.lint.verify import Validation
    from veza_schema.model import Schema
    from veza_schema.project import Project

LINT_FORMATS = ("text", "json", "sarif", "github")

OfflineOption = Annotated[
    bool,
    typer.Option("--offline", help="Do not apply the schema to PostgreSQL: the model's rules only (says so in "
                                   "the report)."),
]


RULES_FORMATS = ("text", "json", "markdown")


def register(app: typer.Typer) -> None:
    app.command("lint")(lint_command)
    app.command("rules")(rules_command)


def _codes(values: list[str] | None) -> list[str]:
    """``--select IMM001,IMM002 --select PG`` -> ``[IMM001, IMM002, PG]``."""
    return [code.strip() for value in values or [] for code in value.split(",") if code.strip()]


def _severities(values: list[str] | None) -> dict[str, Severity]:
    """``--severity NAM=error,PG005=warning`` -> ``{NAM: error, PG005: warning}`` (family names too)."""
    from veza_schema.errors import UsageError
    from veza_schema.project import FAMILY_PREFIXES, SEVERITIES

    chosen: dict[str, Severity] = {}
    for item in _codes(values):
        code, _, level = item.partition("=")
        level = level.strip().lower()
        if level not in SEVERITIES:
            raise UsageError(f"--severity {item!r}: expected CODE=error or CODE=warning")
        chosen[FAMILY_PREFIXES.get(code.strip().lower(), code.strip().upper())] = level  # type: ignore[assignment]
    return chosen


def lint_command(
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, sarif or github.")] = "text",
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            help="Only these rule codes or prefixes (comma-separated, repeatable): IMM,PG005.",
            show_default=False,
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="Skip these rule codes or prefixes (comma-separated, repeatable).",
            show_default=False,
        ),
    ] = None,
    severity: Annotated[
        list[str] | None,
        typer.Option(
            "--severity",
            help="Override severities: CODE=error or CODE=warning, by rule code, prefix or family name "
                 "(comma-separated, repeatable): NAM=error.",
            show_default=False,
        ),
    ] = None,
    no_waivers: Annotated[
        bool,
        typer.Option("--no-waivers", help="Ignore the schema's waivers: list every finding, waived ones included."),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the run too (exit 1).")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report to this file instead of stdout.", show_default=False),
    ] = None,
    offline: OfflineOption = False,
    shadow_dsn: ShadowDsnOption = None,
) -> None:
    """Lint the schema YAML: naming, the seed's 10 immutable rules, integrity, PostgreSQL pitfalls,
    and what PostgreSQL itself refuses when the schema is applied (PG1xx).

    The schema is applied, in a scratch database that is thrown away, on the embedded server
    (or --shadow-dsn, a DSN or docker://IMAGE); each error PostgreSQL raises is a finding at
    the YAML line of its object.
    A script that applied cleanly once is remembered on that server (a template database), so
    later runs of the same schema cost one query. --offline skips the server.

    Exit 0 when no errors remain (warnings alone exit 0 unless --strict), 1 on errors,
    2 on a schema that does not load or bad options, 3 when the server cannot be reached.
    Rules are listed in docs/rules.md.

    Examples:

        veza-schema lint

        veza-schema lint --format sarif --output lint.sarif

        veza-schema lint --select IMM,PG005 --ignore NAM --strict

        veza-schema lint --offline

        veza-schema lint --shadow-dsn docker://postgres:15
    """
    import gc
    import sys

    from veza_schema.cli.common import check_choice
    from veza_schema.lint.output import render
    from veza_schema.lint.rulebook import LINT_RULES
    from veza_schema.migrations.sumfile import require_current_sum
    from veza_schema.yaml.loader import load_schema

    check_choice(fmt, LINT_FORMATS, "--format")
    require_current_sum(migrations_dir)  # CI lints every change: an edited migration fails here too
    schema = load_schema(schema_dir)
    gc.freeze()  # the model lives until exit: keep the collector from rescanning it (~25% on big schemas)
    report = validate_schema(schema, schema_dir, migrations_dir, select=_codes(select), ignore=_codes(ignore),
                             use_waivers=not no_waivers, severity=_severities(severity), offline=offline,
                             shadow_dsn=shadow_dsn).report
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(report, LINT_RULES, fmt), encoding="utf-8")
        sys.stderr.write(
            f"{report.errors} error(s), {report.warnings} warning(s), {len(report.waived)} waived; "
            f"report written to {output}\n"
        )
    elif fmt == "text":
        from veza_schema.cli.common import terminal_colors

        colors, width = terminal_colors()
        sys.stdout.write(render(report, LINT_RULES, fmt, color=colors, width=width))
    else:
        sys.stdout.write(render(report, LINT_RULES, fmt))
    raise typer.Exit(report.exit_code(strict))


def validate_schema(schema: Schema, schema_dir: Path, migrations_dir: Path, *, select: list[str] | None = None,
                    ignore: list[str] | None = None, use_waivers: bool = True,
                    severity: dict[str, Severity] | None = None, offline: bool = False,
                    shadow_dsn: str | None = None) -> Validation:
    """Lint and verify ``schema`` as ``lint`` does (``generate`` runs the same before writing).

    The migrations' snapshot, when there is one, tells the rules which tables already exist.
    """
    from veza_schema.errors import DatabaseError
    from veza_schema.lint.verify import validate
    from veza_schema.migrations.snapshot import read_snapshot, read_snapshot_columns

    try:
        return validate(schema, select=select, ignore=ignore, use_waivers=use_waivers, severity=severity,
                        offline=offline,
                        shadow_dsn=shadow_dsn, previous=lambda: read_snapshot(migrations_dir), schema_dir=schema_dir,
                        previous_columns=lambda: read_snapshot_columns(migrations_dir))
    except DatabaseError as error:
        raise DatabaseError(f"{error} (the schema is verified on PostgreSQL: --offline lints without a server)",
                            error.sqlstate) from error


def project_lint_settings(project: Project | None) -> tuple[list[str] | None, list[str] | None, dict[str, Severity]]:
    """The project's ``lint.select``, ``lint.ignore`` and ``lint.severity`` (settings or VEZA_LINT_*).

    Why: ``generate`` has no lint flags, yet must give the verdict ``lint`` gives in this project;
    otherwise a rule the project made an error would pass ``generate`` and fail CI's ``lint``.
    """
    if project is None:
        return None, None, {}

    def given(key: str) -> object:
        value = project.values.get(key)
        return None if value is None else value.value

    select, ignore, severity = given("lint.select"), given("lint.ignore"), given("lint.severity")
    return (list(select) if isinstance(select, list | tuple) else None,
            list(ignore) if isinstance(ignore, list | tuple) else None,
            dict(severity) if isinstance(severity, dict) else {})


def verify_before_writing(schema: Schema, migrations_dir: Path, *, no_verify: bool, shadow_dsn: str | None,
                          schema_dir: Path, project: Project | None = None) -> None:
    """``generate``'s gate: lint and PostgreSQL's verification, as ``lint`` runs them; refuse on an error.

    Raises:
        SchemaRefused: an error remains (exit 1); ``--no-verify`` writes anyway (and the header says so).
    """
    import sys
    from dataclasses import replace

    from veza_schema.cli.common import console, error_console
    from veza_schema.lint.output import render
    from veza_schema.lint.rulebook import LINT_RULES
    from veza_schema.lint.verify import SchemaRefused

    if no_verify:
        error_console().print(f"[yellow]warning:[/] --no-verify: {schema_dir}/ is neither linted nor verified on "
                              "PostgreSQL; the migration's header says so", markup=True)
        return
    select, ignore, severity = project_lint_settings(project)
    report = validate_schema(schema, schema_dir, migrations_dir, select=select, ignore=ignore, severity=severity,
                             shadow_dsn=shadow_dsn).report
    if report.errors:
        errors = tuple(f for f in report.active if f.severity == "error")
        sys.stdout.write(render(replace(report, findings=errors), LINT_RULES, "text"))
        raise SchemaRefused(f"generate refuses {schema_dir}/: {report.errors} error(s) above (`veza-schema lint` "
                            "lists them with the warnings); fix them, or write anyway with --no-verify")
    console().print(f"[dim]{report.verification}[/]", markup=True)


def rules_command(
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json or markdown.")] = "text",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout.", show_default=False),
    ] = None,
) -> None:
    """List every rule: lint's families and the change policy's POL rules (reported by `check`).

    Examples:

        veza-schema rules

        veza-schema rules --format markdown --output docs/rules.md
    """
    import json
    import sys

    from veza_schema.cli.common import check_choice
    from veza_schema.lint.docs import render_rules_markdown
    from veza_schema.lint.rulebook import LINT_RULES
    from veza_schema.policy.rules import POLICY_REGISTRY

    check_choice(fmt, RULES_FORMATS, "--format")
    registry = LINT_RULES + POLICY_REGISTRY
    if fmt == "markdown":
        text = render_rules_markdown(registry)
    elif fmt == "json":
        text = json.dumps([{"code": r.code, "name": r.name, "severity": r.severity, "family": r.family,
                            "summary": r.summary, "why": r.why, "fix": r.fix} for r in registry], indent=2) + "\n"
    else:
        text = "".join(f"{r.code:<7} {r.severity:<8} {r.name}: {r.summary}\n" for r in registry)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {output} ({len(registry)} rules)\n")
