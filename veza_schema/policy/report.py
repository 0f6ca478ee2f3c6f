"""``check`` output in the lint formats: text lists every change; json/sarif/github reuse lint's renderers.

Why reuse :mod:`veza_schema.lint.output`: CI already consumes lint's SARIF and GitHub
annotations, so policy results arrive through the same pipes. Decisions become findings:
a blocking one (forbidden, or RFC-required without a valid RFC) is an error; an approved
RFC-required change (or a forbidden one accepted with ``--allow-forbidden``) is a warning,
so reviewers see it annotated; allowed changes are listed in text and json only.
"""

from __future__ import annotations

import io
import json
from typing import Any

from veza_schema.errors import printable
from veza_schema.lint import output
from veza_schema.lint.findings import Finding, LintReport, Severity
from veza_schema.policy.classify import Decision, PolicyReport
from veza_schema.policy.rules import POLICY_REGISTRY, POLICY_RULES

FORMATS = ("text", "json", "sarif", "github")


def _message(decision: Decision) -> str:
    text = f"{decision.klass}: {decision.summary.lstrip('+-~> ')}: {decision.reason}"
    if decision.accepted:
        text += f" (accepted under {decision.rfc} with --allow-forbidden)"
    elif decision.rfc_error:
        text += f"; {decision.rfc_error}"
    elif decision.klass == "rfc-required" and decision.rfc:
        text += f" (approved by {decision.rfc})"
    return text


def to_findings(report: PolicyReport) -> list[Finding]:
    """Blocking decisions as errors, approved non-allowed ones as warnings (allowed ones: none)."""
    findings = []
    for decision in report.decisions:
        if decision.klass == "allowed":
            continue
        severity: Severity = "error" if decision.blocking else "warning"
        fix = decision.policy.rule.fix if decision.blocking else ""
        findings.append(Finding(decision.code, severity, _message(decision), decision.pos, decision.object, fix))
    findings.sort(key=lambda f: f.sort_key)
    return findings


def to_lint_report(report: PolicyReport) -> LintReport:
    return LintReport(tuple(to_findings(report)), tuple(sorted(POLICY_RULES)), waivers_applied=False)


def decision_to_json(decision: Decision) -> dict[str, Any]:
    return {
        "code": decision.code,
        "name": decision.policy.rule.name,
        "class": decision.klass,
        "change": decision.summary,
        "reason": decision.reason,
        "object": decision.object,
        "file": decision.pos.file if decision.pos else None,
        "line": decision.pos.line if decision.pos else None,
        "column": decision.pos.column if decision.pos else None,
        "rfc": decision.rfc,
        "rfc_problem": decision.rfc_error,
        "accepted": decision.accepted,
        "blocking": decision.blocking,
    }


def summary_counts(report: PolicyReport) -> dict[str, int]:
    return {
        "changes": len(report.decisions),
        "allowed": len(report.of_class("allowed")),
        "rfc_required": len(report.of_class("rfc-required")),
        "forbidden": len(report.of_class("forbidden")),
        "missing_rfc": len(report.missing_rfc),
        "blocking": len(report.blocking),
    }


def render_json(report: PolicyReport, base_label: str) -> str:
    """Lint's versioned JSON (docs/lint-output.md) plus ``base``, ``policy`` counts and every change."""
    document = json.loads(output.render_json(to_lint_report(report), POLICY_REGISTRY))
    document["base"] = base_label
    document["rfc_pattern"] = report.rfc_pattern
    document["policy"] = summary_counts(report)
    document["changes"] = [decision_to_json(d) for d in report.decisions]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


_STYLE = {"forbidden": "bold red", "rfc-required": "yellow", "allowed": "green"}


def render_text(report: PolicyReport, base_label: str, color: bool = False, width: int = 100) -> str:
    """Every change: ``file:line:col class CODE name``, the change, its reason, and what to do."""
    from rich.console import Console
    from rich.markup import escape as markup_escape

    def escape(text: str) -> str:  # YAML text shown to people: no terminal control, no markup
        return markup_escape(printable(text))

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False,
                      soft_wrap=True, emoji=False)
    console.print(f"Base: {escape(base_label)}")
    if not report.decisions:
        console.print("[bold green]✓[/] no schema changes against the base")
        return buffer.getvalue()
    for decision in report.decisions:
        where = str(decision.pos) if decision.pos else "<schema>"
        style = "bold red" if decision.blocking else _STYLE[decision.klass]
        console.print(f"[dim]{escape(where)}[/] [{style}]{decision.klass}[/] [bold]{decision.code}[/] "
                      f"{decision.policy.rule.name}: {escape(decision.summary)}")
        console.print(f"      reason: {escape(decision.reason)}")
        if decision.accepted:
            console.print(f"      [yellow]accepted under {escape(decision.rfc or '')} (--allow-forbidden)[/]")
        elif decision.rfc_error:
            console.print(f"      [bold red]RFC:[/] {escape(decision.rfc_error)}")
        elif decision.rfc and decision.klass != "allowed":
            console.print(f"      RFC: {escape(decision.rfc)}")
        if decision.blocking:
            console.print(f"      [cyan]fix:[/] {escape(decision.policy.rule.fix)}")
    counts = summary_counts(report)
    mark = "[bold red]✗[/]" if report.blocking else "[bold green]✓[/]"
    console.print()
    console.print(f"{mark} {counts['changes']} change(s): {counts['forbidden']} forbidden, {counts['rfc_required']} "
                  f"RFC-required ({counts['missing_rfc']} without a valid RFC), {counts['allowed']} allowed")
    return buffer.getvalue()


def render(report: PolicyReport, fmt: str, base_label: str, color: bool = False, width: int = 100) -> str:
    if fmt == "text":
        return render_text(report, base_label, color=color, width=width)
    if fmt == "json":
        return render_json(report, base_label)
    return output.render(to_lint_report(report), POLICY_REGISTRY, fmt)
