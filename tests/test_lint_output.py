"""Output formats: SARIF validates against SARIF 2.1.0, JSON against its documented shape,
github lines follow the workflow-command syntax, text shows file:line:col, code and fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from veza_schema.lint import LINT_RULES, lint
from veza_schema.lint.findings import Finding, LintReport
from veza_schema.lint.output import render
from veza_schema.model import SourcePos
from veza_schema.yaml.loader import load_schema

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).parent / "lint_cases"
SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


def documented_json_schema() -> dict:
    """The JSON Schema embedded in docs/lint-output.md (so the doc is the contract)."""
    text = (ROOT / "docs" / "lint-output.md").read_text()
    match = re.search(r"```json lint-output-schema\n(.*?)```", text, re.DOTALL)
    assert match, "docs/lint-output.md lost its lint-output-schema block"
    return json.loads(match.group(1))


def mixed_report() -> LintReport:
    """Errors, warnings and a waived finding, from YAML cases (positions included)."""
    findings: list[Finding] = []
    for code in ("IMM002", "PG010", "NAM002"):
        findings += lint(load_schema(CASES / code / "fail")).findings
    waived = lint(load_schema(CASES / "LNT001" / "fail")).findings  # waived IMM002 + LNT001
    findings += waived
    odd = Finding("PG001", "error", 'weird, "quoted": 100% \nnewline', SourcePos("dir with space/a,b:c.yaml", 3, 5),
                  "tables.t", "fix, with: colon")
    no_pos = Finding("INT001", "error", "no position", None, "tables.x", "")
    return LintReport((*findings, odd, no_pos), ("IMM002", "INT001", "LNT001", "NAM002", "PG001", "PG010"))


@pytest.fixture(scope="module")
def report() -> LintReport:
    return mixed_report()


def test_sarif_validates_against_sarif_2_1_0(report: LintReport) -> None:
    document = json.loads(render(report, LINT_RULES, "sarif"))
    jsonschema.validate(document, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
    run = document["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rule_ids == sorted(rule_ids, key=lambda c: ("NAM IMM INT PG LNT".split().index(c.rstrip("0123456789")),
                                                       c))
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert suppressed and suppressed[0]["suppressions"][0]["justification"] == ""
    located = [r for r in run["results"] if "physicalLocation" in r["locations"][0]]
    assert located[0]["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_sarif_schema_rejects_a_broken_log() -> None:
    """The local schema copy really validates (guards against an accidentally permissive file)."""
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}, SARIF_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [
            {"message": {"text": "m"}, "suppressions": [{"kind": "inSource", "status": "accepted"}]}]}]},
            SARIF_SCHEMA)


def test_json_matches_documented_shape(report: LintReport) -> None:
    document = json.loads(render(report, LINT_RULES, "json"))
    jsonschema.validate(document, documented_json_schema())
    assert document["version"] == 1
    assert document["summary"]["errors"] == report.errors
    assert document["summary"]["waived"] == len(report.waived) >= 1
    assert len(document["findings"]) == len(report.findings)


_GITHUB = re.compile(r"^::(error|warning) (?:file=[^,:\n]+,line=\d+,col=\d+,)?title=[^,:\n]+::[^\r\n]+$")


def test_github_lines_follow_workflow_command_syntax(report: LintReport) -> None:
    lines = render(report, LINT_RULES, "github").splitlines()
    assert len(lines) == len(report.active)
    for line in lines:
        assert _GITHUB.match(line), line
    odd = next(line for line in lines if "PG001" in line)
    assert "file=dir with space/a%2Cb%3Ac.yaml,line=3,col=5" in odd
    assert "100%25 %0Anewline" in odd


def test_text_groups_by_file_with_position_code_and_fix(report: LintReport) -> None:
    text = render(report, LINT_RULES, "text")
    imm002 = next(f for f in report.active if f.code == "IMM002")
    assert f"{imm002.pos} IMM002 error" in text
    assert "fix: Add `created_at" in text
    assert text.count(f"\n{imm002.pos.file}\n") + text.startswith(imm002.pos.file) == 1  # type: ignore[union-attr]
    assert f"{report.errors} error(s), {report.warnings} warning(s), {len(report.waived)} waived" in text


def test_plain_text_is_what_rich_prints_without_colour(report: LintReport) -> None:
    """The uncoloured report skips rich (and its import); it must stay rich's output, character for character."""
    import io
    from dataclasses import replace

    from rich.console import Console
    from rich.text import Text

    from veza_schema.lint.output import _text_lines

    tabbed = replace(report, findings=(*report.findings, Finding("PG001", "warning", "a\ttab and [bold]markup[/]",
                                                                    None, "tables.t", "fix\twith a tab")),
                     verification="verified: PostgreSQL 18")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, no_color=True, width=100, highlight=False, soft_wrap=True,
                      emoji=False)
    for line in _text_lines(tabbed, LINT_RULES):
        console.print(Text.assemble(*line))
    assert render(tabbed, LINT_RULES, "text") == buffer.getvalue()
