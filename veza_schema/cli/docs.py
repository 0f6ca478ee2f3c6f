"""``veza-schema docs``: Markdown reference pages for readers, generated from the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from veza_schema.cli.common import DEFAULT_SCHEMA_DIR, SchemaDirOption, console

DEFAULT_DOCS_DIR = Path("docs/schema")


def register(app: typer.Typer) -> None:
    app.command("docs")(docs_command)


def docs_command(
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    out: Annotated[Path, typer.Option("--out", help="Directory of the generated pages.")] = DEFAULT_DOCS_DIR,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the pages on disk are "
                                                        "not what would be generated (for CI).")] = False,
) -> None:
    """Write one Markdown page per module plus index.md, with Mermaid ER diagrams.

    Pages no longer generated (a removed module) are deleted. With --check nothing is
    written and the exit code is 1 when the committed pages are stale. Example:

        veza-schema docs --check
    """
    from veza_schema.docs.generator import stale_pages, write_docs
    from veza_schema.yaml.loader import load_schema

    schema = load_schema(schema_dir)
    stale = stale_pages(schema, out)
    output = console()
    if check:
        if not stale:
            output.print(f"{out} is up to date.", markup=False)
            return
        output.print(f"{out} is stale: {len(stale)} page(s) differ from `veza-schema docs`:", markup=False)
        for page in stale:
            output.print(f"  {page.path}: {page.reason}", markup=False)
        output.print(f"Run `veza-schema docs --schema-dir {schema_dir} --out {out}` and commit the result.",
                     markup=False)
        raise typer.Exit(1)
    written = write_docs(schema, out)
    changed = sum(1 for page in stale if page.reason != "not generated")
    removed = sum(1 for page in stale if page.reason == "not generated")
    output.print(f"Wrote {len(written)} page(s) to {out}: {changed} changed, {removed} stale page(s) removed.",
                 markup=False)
