"""Lint that PostgreSQL agrees with: apply the rendered schema to a scratch database, report what fails.

Why: a green lint must mean the schema applies. Rules over the model catch what they know;
the server knows the rest (a default of the wrong type, an operator that does not exist, an
index method without an operator class for the column's type, a type nobody declared).

How: :mod:`.attribution` applies the rendered schema to a scratch database on the shadow
server (the embedded one, or ``--shadow-dsn``), reusing a cached template when the same
script applied cleanly there before, and turns every error into a finding at the YAML line
of its object. This module joins that verdict with the model's rules (:func:`validate`,
for ``lint`` and ``generate``) and stays light: ``--offline`` imports no database driver.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from veza_schema.errors import EXIT_FINDINGS, VezaSchemaError
from veza_schema.lint.engine import lint, select_rules
from veza_schema.lint.findings import Finding, LintReport, Severity
from veza_schema.lint.registry import LintContext
from veza_schema.model import Schema
from veza_schema.sql.facts import CatalogFacts


@dataclass(frozen=True)
class Verification:
    """What the shadow server said about the schema."""

    findings: tuple[Finding, ...]
    server: str  # "PostgreSQL 18.6"
    where: str  # "the embedded server", "--shadow-dsn"
    cached: bool  # the script's template was there: applied cleanly before
    seconds: float = 0.0
    not_run: int = 0  # statements left out because an object they need had failed
    facts: CatalogFacts | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """One line for the report: which server verified, and how."""
        server = f"{self.server} ({self.where})"
        if self.findings:
            skipped = (f"; {self.not_run} statement(s) needing an object that failed were not run"
                       if self.not_run else "")
            return f"verified: {server} refuses {len(self.findings)} statement(s){skipped}"
        how = ("the same script applied cleanly before (cached template)" if self.cached
               else "applied in a scratch database, kept as the template for the next run")
        return f"verified: {server} accepts the schema; {how}"


# -- verify ---------------------------------------------------------------------------------------
def verify(schema: Schema, server_dsn: str | None = None, where: str | None = None, *,
           source_key: str | None = None) -> Verification:
    """Apply ``schema`` on the shadow server (``server_dsn``, default the embedded server;
    ``docker://IMAGE[:TAG]`` a container started for this verification).

    ``source_key`` (:func:`source_key`) names what the script is made from: a template labelled
    with it is found without rendering the script at all.

    Raises:
        DatabaseError: the shadow server cannot be reached or cannot create a database (exit 3).
    """
    from veza_schema.db.shadow import admin_connection, describe_server, find_by_source, shadow_server

    started = time.perf_counter()
    where = where or describe_server(server_dsn)
    with shadow_server(server_dsn) as server:
        if source_key:  # the usual case, unchanged sources: one query, nothing rendered or imported besides
            with admin_connection(server) as admin:
                if find_by_source(admin, source_key):
                    version = admin.info.server_version
                    return Verification((), f"PostgreSQL {version // 10000}.{version % 10000}", where, True,
                                        time.perf_counter() - started)
        from veza_schema.lint.attribution import run_on_server

        verdict = run_on_server(schema, server, source_key)
    return Verification(verdict.findings, verdict.server, where, verdict.cached, time.perf_counter() - started,
                        verdict.not_run, verdict.facts)


def source_key(schema_dir: Path) -> str:
    """The hash of what the verified script is made from: schema_dir's YAML files, and veza-schema's
    own code and templates (the loader and the renderer are deterministic: same sources, same script).

    Why: rendering the script costs more than the rest of a cached verification; a template
    labelled with this key is found without rendering.
    """
    package = Path(__file__).resolve().parent.parent
    templates = package / "templates" if (package / "templates").is_dir() else package.parent / "templates"
    digest = hashlib.sha256(b"veza-schema sources 1\0")
    for root, patterns in ((package, ("*.py",)), (templates, ("*.j2",)), (schema_dir, ("*.yaml", "*.yml"))):
        recursive = root is not schema_dir  # the loader reads schema_dir's own files, not subdirectories
        files = sorted(p for pattern in patterns for p in (root.rglob(pattern) if recursive else root.glob(pattern)))
        for path in files:
            digest.update(str(path.relative_to(root)).encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


# -- lint with the server --------------------------------------------------------------------------
class SchemaRefused(VezaSchemaError):
    """``generate`` will not write: lint or PostgreSQL refuses the schema (exit 1, like a finding)."""

    exit_code = EXIT_FINDINGS


@dataclass(frozen=True)
class Validation:
    """A lint report, and the server's verification when it ran (None with ``offline``)."""

    report: LintReport
    verification: Verification | None


def validate(
    schema: Schema,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    use_waivers: bool = True,
    severity: Mapping[str, Severity] | None = None,
    offline: bool = False,
    shadow_dsn: str | None = None,
    previous: Schema | None | Callable[[], Schema | None] = None,
    schema_dir: Path | None = None,
    previous_columns: Callable[[], Mapping[str, frozenset[str]] | None] | None = None,
) -> Validation:
    """Lint ``schema`` and, unless ``offline`` (or no PG1xx rule is selected), verify it on a server.

    With the server, context rules read its catalog facts; offline, the built-in table.
    ``severity`` holds the project's overrides (:func:`veza_schema.lint.engine.lint`).
    ``previous`` is the schema the existing migrations produce (their snapshot), if any, or a
    function reading it when a rule asks (``previous_columns``: a cheaper reader of its column names).
    ``schema_dir``, where ``schema`` was loaded from,
    lets a cached verification skip rendering (:func:`source_key`).

    Raises:
        UsageError: an unknown code in ``select``/``ignore``.
        DatabaseError: the shadow server is unreachable (exit 3; ``offline`` skips it).
    """
    select, ignore = list(select or ()), list(ignore or ())
    rules = select_rules(select, ignore)
    verification = None
    if not offline and any(rule.family == "server" for rule in rules):
        verification = verify(schema, shadow_dsn, source_key=source_key(schema_dir) if schema_dir else None)
    context = LintContext(verification.facts if verification else None, previous, previous_columns)
    report = lint(schema, select, ignore, use_waivers, severity=severity, context=context,
                  server_findings=verification.findings if verification else ())
    note = verification.describe() if verification else (
        "not verified against PostgreSQL (--offline)" if offline else "not verified: no PG1xx rule selected")
    return Validation(replace(report, verification=note), verification)
