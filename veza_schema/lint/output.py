"""Report formats: ``text`` (people), ``json`` (scripts), ``sarif`` (code scanning), ``github`` (annotations).

The JSON shape is versioned and documented in ``docs/lint-output.md``; bump
:data:`JSON_VERSION` on any incompatible change.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any

from veza_schema import __version__
from veza_schema.errors import printable
from veza_schema.lint.findings import Finding, LintReport
from veza_schema.lint.registry import Registry, Rule

JSON_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "veza-schema"
FORMATS = ("text", "json", "sarif", "github")


def _location(finding: Finding) -> str:
    return str(finding.pos) if finding.pos else "<schema>"


Segment = tuple[str, str]  # (text, rich style); "" is unstyled


def _text_lines(report: LintReport, registry: Registry) -> Iterator[list[Segment]]:
    """The text report as lines of styled segments; YAML text goes through :func:`printable`."""
    shown = [f for f in report.findings if not f.waived]
    current: str | None = None
    for finding in shown:
        file = finding.pos.file if finding.pos else "<schema>"
        if file != current:
            if current is not None:
                yield []
            yield [(printable(file), "bold underline")]
            current = file
        style = "red" if finding.severity == "error" else "yellow"
        rule = registry.get(finding.code)
        name = rule.name if rule else ""
        yield [("  ", ""), (printable(_location(finding)), "dim"), (" ", ""), (finding.code, f"bold {style}"),
               (" ", ""), (finding.severity, style), (f" {printable(finding.message)} ", ""), (f"({name})", "dim")]
        if finding.waiver_reason is not None:
            reason = printable(finding.waiver_reason or "(no reason)")
            yield [("      ", ""), (f"waived in the schema: {reason}", "dim")]
        if finding.fix:
            yield [("      ", ""), ("fix:", "cyan"), (f" {printable(finding.fix)}", "")]
    if shown:
        yield []
    waived = len(report.waived)
    summary = f"{report.errors} error(s), {report.warnings} warning(s), {waived} waived"
    if waived:
        summary += " (--no-waivers lists them)"
    if not report.waivers_applied:
        summary += "; waivers ignored (--no-waivers)"
    mark = ("✗", "bold red") if report.errors else (("!", "bold yellow") if report.warnings else ("✓", "bold green"))
    yield [mark, (f" {summary}; {len(report.rules_run)} rules run", "")]
    if report.verification:
        yield [(printable(report.verification), "dim")]


def render_text(report: LintReport, registry: Registry, color: bool = False, width: int = 100) -> str:
    """Findings grouped by file, each as ``file:line:col CODE severity message`` plus its fix hint.

    Without colour the lines are joined as they are (no line is ever wrapped): rich, and its import,
    are needed only to colour a terminal.
    """
    if not color:
        return "".join("".join(text for text, _ in line).expandtabs(8) + "\n" for line in _text_lines(report, registry))
    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, highlight=False, soft_wrap=True, emoji=False)
    for line in _text_lines(report, registry):
        console.print(Text.assemble(*line))
    return buffer.getvalue()


def finding_to_json(finding: Finding, registry: Registry) -> dict[str, Any]:
    rule = registry.get(finding.code)
    return {
        "code": finding.code,
        "name": rule.name if rule else None,
        "severity": finding.severity,
        "message": finding.message,
        "file": finding.pos.file if finding.pos else None,
        "line": finding.pos.line if finding.pos else None,
        "column": finding.pos.column if finding.pos else None,
        "object": finding.object,
        "fix": finding.fix or None,
        "waived": finding.waived,
        "waiver_reason": finding.waiver_reason,
    }


def render_json(report: LintReport, registry: Registry) -> str:
    """The documented, versioned shape (docs/lint-output.md)."""
    files = sorted({f.pos.file for f in report.findings if f.pos})
    document = {
        "version": JSON_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "waivers_applied": report.waivers_applied,
        "verification": report.verification,
        "rules_run": list(report.rules_run),
        "summary": {
            "errors": report.errors,
            "warnings": report.warnings,
            "waived": len(report.waived),
            "findings": len(report.findings),
            "files": len(files),
        },
        "findings": [finding_to_json(f, registry) for f in report.findings],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _sarif_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.why}\n\nFix: {rule.fix}", "markdown": f"{rule.why}\n\n**Fix:** {rule.fix}"},
        "defaultConfiguration": {"level": rule.severity},
        "properties": {"tags": [rule.family], "family": rule.family},
    }


def _uri(file: str) -> str:
    return PurePath(file).as_posix().replace(" ", "%20")


def render_sarif(report: LintReport, registry: Registry) -> str:
    """SARIF 2.1.0: one run, every rule that ran, waived findings as in-source suppressions."""
    rules = [r for r in registry if r.code in set(report.rules_run)]
    rule_index = {r.code: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for finding in report.findings:
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "level": finding.severity,
            "message": {"text": finding.message + (f" Fix: {finding.fix}" if finding.fix else "")},
            "partialFingerprints": {"vezaObject/v1": f"{finding.code}:{finding.object}"},
        }
        if finding.code in rule_index:
            result["ruleIndex"] = rule_index[finding.code]
        location: dict[str, Any] = {
            "logicalLocations": [{"fullyQualifiedName": finding.object, "kind": "object"}]
        }
        if finding.pos:
            location["physicalLocation"] = {
                "artifactLocation": {"uri": _uri(finding.pos.file), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": max(finding.pos.line, 1), "startColumn": max(finding.pos.column, 1)},
            }
        result["locations"] = [location]
        if finding.waived:
            result["suppressions"] = [
                {"kind": "inSource", "state": "accepted", "justification": finding.waiver_reason or ""}
            ]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_sarif_rule(r) for r in rules],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "properties": {"verification": report.verification},
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The repository root."}}},
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    return printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: LintReport, registry: Registry) -> str:
    """GitHub Actions workflow commands: ``::error file=...,line=...,col=...,title=...::message``."""
    lines = []
    for finding in report.findings:
        if finding.waived:
            continue
        props = []
        if finding.pos:
            props += [
                f"file={_escape_property(finding.pos.file)}",
                f"line={finding.pos.line}",
                f"col={finding.pos.column}",
            ]
        known = registry.get(finding.code)
        name = known.name if known else finding.code
        props.append(f"title={_escape_property(f'{finding.code} {name}')}")
        message = finding.message + (f" Fix: {finding.fix}" if finding.fix else "")
        lines.append(f"::{finding.severity} {','.join(props)}::{_escape_data(message)}")
    return "".join(line + "\n" for line in lines)


RENDERERS: dict[str, Callable[[LintReport, Registry], str]] = {
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}


def render(report: LintReport, registry: Registry, fmt: str, color: bool = False, width: int = 100) -> str:
    """``report`` in format ``fmt``; ``registry`` names and documents the codes it holds."""
    if fmt == "text":
        return render_text(report, registry, color=color, width=width)
    return RENDERERS[fmt](report, registry)
