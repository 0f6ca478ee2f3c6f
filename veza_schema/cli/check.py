"""``veza-schema check``: classify every schema change against a base under the seed's change policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from veza_schema.cli.common import DEFAULT_MIGRATIONS_DIR, DEFAULT_SCHEMA_DIR, MigrationsDirOption, SchemaDirOption

CHECK_FORMATS = ("text", "json", "sarif", "github")


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)


def check_command(
    base: Annotated[str | None, typer.Option(
        "--base", help="What the schema is compared with: a git ref, a directory of YAML, or 'migrations' (the "
                       "applied migrations' snapshot). Default: the merge base with origin/main if it exists, "
                       "else HEAD.", show_default=False)] = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    migrations_dir: MigrationsDirOption = DEFAULT_MIGRATIONS_DIR,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, sarif or github.")] = "text",
    rfc_pattern: Annotated[str | None, typer.Option(
        "--rfc-pattern", help="Regular expression every RFC reference must match. [default: ^RFC-\\d{4,}$]",
        show_default=False)] = None,
    rfc: Annotated[str | None, typer.Option(
        "--rfc", help="An RFC for RFC-required changes that declare none (e.g. drops, which leave no YAML to "
                      "carry one).", show_default=False)] = None,
    allow_forbidden: Annotated[bool, typer.Option(
        "--allow-forbidden", help="Accept forbidden changes under --rfc (reported, not failing).")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the report to this file instead of stdout.", show_default=False)] = None,
) -> None:
    """Classify each change against the base: allowed, RFC-required or forbidden (docs/change-policy.md).

    Exit 0 when nothing is forbidden and every RFC-required change names a valid RFC
    (`rfc: RFC-0042` on the object or its table), 1 otherwise, 2 on bad input.

    Examples:

        veza-schema check

        veza-schema check --base origin/main --format github

        veza-schema check --base migrations --rfc-pattern '^RFC-[0-9]{4}$'
    """
    import re
    import sys

    from veza_schema.cli.common import check_choice
    from veza_schema.diff.differ import diff_schemas
    from veza_schema.errors import UsageError
    from veza_schema.policy import DEFAULT_RFC_PATTERN, classify
    from veza_schema.policy.base import resolve_base
    from veza_schema.policy.report import render
    from veza_schema.yaml.loader import load_schema

    check_choice(fmt, CHECK_FORMATS, "--format")
    pattern = DEFAULT_RFC_PATTERN if rfc_pattern is None else rfc_pattern
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--rfc-pattern {pattern!r}: not a regular expression ({exc})") from exc
    from veza_schema.policy import check_rfc_option

    check_rfc_option(rfc, allow_forbidden, pattern)
    desired = load_schema(schema_dir)
    resolved = resolve_base(base, schema_dir, migrations_dir)
    report = classify(diff_schemas(resolved.schema, desired), resolved.schema, desired, prior=resolved.prior,
                      rfc_pattern=pattern, extra_rfc=rfc, allow_forbidden=allow_forbidden,
                      relocate=resolved.relocate)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(report, fmt, resolved.label), encoding="utf-8")
        sys.stderr.write(f"{len(report.decisions)} change(s), {len(report.blocking)} blocking; report written to "
                         f"{output}\n")
    elif fmt == "text":
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True, emoji=False)
        console.print(render(report, fmt, resolved.label, color=console.is_terminal and not console.no_color,
                             width=console.width), end="", markup=False, highlight=False)
    else:
        sys.stdout.write(render(report, fmt, resolved.label))
    raise typer.Exit(report.exit_code)
