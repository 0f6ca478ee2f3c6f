"""Every rule has a failing and a passing case in tests/lint_cases/<CODE>/{fail,pass}/.

A case is a schema directory of YAML (loaded by the real loader, positions included) or,
for what the loader itself refuses, a ``case.py`` defining ``SCHEMA`` (a model built in
Python, as introspection could produce it). A ``previous/`` directory beside it is the schema
the migrations already produce. The server family (PG1xx) is PostgreSQL's verdict: its cases
are verified on the test server.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from veza_schema.lint import LINT_RULES, LintReport, lint
from veza_schema.lint.registry import LintContext
from veza_schema.lint.verify import validate
from veza_schema.model import Schema
from veza_schema.yaml.loader import load_schema

CASES = Path(__file__).parent / "lint_cases"
CODES = [rule.code for rule in LINT_RULES]
SERVER_CODES = {rule.code for rule in LINT_RULES if rule.family == "server"}


def load_case(directory: Path) -> tuple[Schema, bool]:
    """The case's model, and whether it came from YAML (so findings must carry positions)."""
    script = directory / "case.py"
    if script.exists():
        spec = importlib.util.spec_from_file_location(f"lint_case_{directory.parent.name}_{directory.name}", script)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.SCHEMA, False
    return load_schema(directory), True


def run_case(directory: Path, code: str, request: pytest.FixtureRequest, select: list[str] | None = None
             ) -> LintReport:
    """Lint a case as CI would: with its previous schema, and on the test server for PG1xx."""
    schema, _ = load_case(directory)
    previous = load_schema(directory / "previous") if (directory / "previous").is_dir() else None
    if code in SERVER_CODES:
        server = request.getfixturevalue("pg_server")
        return validate(schema, select=select, shadow_dsn=server.admin_dsn, previous=previous).report
    return lint(schema, select=select, context=LintContext(previous=previous))


def test_every_rule_has_both_cases() -> None:
    missing = [f"{code}/{kind}" for code in CODES for kind in ("fail", "pass") if not (CASES / code / kind).is_dir()]
    assert not missing, f"rules without a lint case: {missing}"
    stray = sorted(p.name for p in CASES.iterdir() if p.is_dir() and p.name not in CODES)
    assert not stray, f"lint cases for unknown codes: {stray}"


@pytest.mark.parametrize("code", CODES)
def test_fail_case_triggers_rule(code: str, request: pytest.FixtureRequest) -> None:
    _, from_yaml = load_case(CASES / code / "fail")
    # A model rule says a PG1xx case's problem first (the server's word is then not repeated): select it alone.
    only = [code] if code in SERVER_CODES else None
    hits = [f for f in run_case(CASES / code / "fail", code, request, only).active if f.code == code]
    assert hits, f"{code}/fail does not trigger {code}"
    if from_yaml:
        for finding in hits:
            assert finding.pos is not None and finding.pos.file.endswith(".yaml") and finding.pos.line > 0, finding


@pytest.mark.parametrize("code", CODES)
def test_pass_case_does_not_trigger_rule(code: str, request: pytest.FixtureRequest) -> None:
    report = run_case(CASES / code / "pass", code, request)
    hits = [f for f in report.findings if f.code == code]
    assert not hits, f"{code}/pass triggers {code}: {hits}"
    assert not report.active, f"{code}/pass should be clean for every rule: {report.active}"


@pytest.mark.parametrize("code", CODES)
def test_select_runs_only_that_rule(code: str, request: pytest.FixtureRequest) -> None:
    # An unused waiver can only be told when the waived rule runs too.
    extra = ["IMM002"] if code == "LNT002" else []
    report = run_case(CASES / code / "fail", code, request, [code, *extra])
    assert report.rules_run == tuple(sorted({code, *extra}))
    assert code in {f.code for f in report.findings}
    assert {f.code for f in report.findings} <= {code, *extra}
