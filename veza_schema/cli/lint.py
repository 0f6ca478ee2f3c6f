"""``veza-schema lint``: check schema/ against the seed's rules, integrity and PostgreSQL pitfalls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from veza_schema.cli.common import DEFAULT_MIGRATIONS_DIR, DEFAULT_SCHEMA_DIR, MigrationsDirOption, SchemaDirOption

if TYPE_CHECKING:
    from veza_schema.lint.findings import Severity

LINT_FORMATS = ("text", "json", "sarif", "github")


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
) -> None:
    """Lint the schema YAML: naming, the seed's 10 immutable rules, integrity, PostgreSQL pitfalls.

    Exit 0 when no errors remain (warnings alone exit 0 unless --strict), 1 on errors,
    2 on a schema that does not load or bad options. Rules are listed in docs/rules.md.

    Examples:

        veza-schema lint

        veza-schema lint --format sarif --output lint.sarif

        veza-schema lint --select IMM,PG005 --ignore NAM --strict
    """
    import gc
    import sys

    from veza_schema.cli.common import check_choice
    from veza_schema.lint.engine import lint
    from veza_schema.lint.output import render
    from veza_schema.lint.rulebook import LINT_RULES
    from veza_schema.migrations.sumfile import require_current_sum
    from veza_schema.yaml.loader import load_schema

    check_choice(fmt, LINT_FORMATS, "--format")
    require_current_sum(migrations_dir)  # CI lints every change: an edited migration fails here too
    schema = load_schema(schema_dir)
    gc.freeze()  # the model lives until exit: keep the collector from rescanning it (~25% on big schemas)
    report = lint(schema, select=_codes(select), ignore=_codes(ignore), use_waivers=not no_waivers,
                  severity=_severities(severity))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(report, LINT_RULES, fmt), encoding="utf-8")
        sys.stderr.write(
            f"{report.errors} error(s), {report.warnings} warning(s), {len(report.waived)} waived; "
            f"report written to {output}\n"
        )
    elif fmt == "text":
        from rich.console import Console

        terminal = Console()
        sys.stdout.write(
            render(report, LINT_RULES, fmt, color=terminal.is_terminal and not terminal.no_color, width=terminal.width)
        )
    else:
        sys.stdout.write(render(report, LINT_RULES, fmt))
    raise typer.Exit(report.exit_code(strict))


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
