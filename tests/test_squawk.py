"""Cross-check with an outside linter: squawk on every generated incremental migration.

The scenarios are those of the proof tests, generated offline (no database needed). Files
the runner wraps in a transaction are linted with ``--assume-in-transaction``; files
starting with ``-- no-transaction`` without it, as they run. Every finding must be listed
in ``docs/squawk-findings.md`` with the reason it is intended, and every listed finding
must still occur (so the document cannot rot).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.factories import BASE_YAML, SCENARIOS
from tests.helpers import REPO_ROOT
from veza_schema.migrations.files import is_no_transaction
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.migrations.incremental import generate_incremental
from veza_schema.yaml.loader import load_schema

FINDINGS_DOC = REPO_ROOT / "docs" / "squawk-findings.md"
_ROW = re.compile(r"^\|\s*`(?P<rule>[a-z0-9-]+)`\s*\|\s*(?P<where>[a-z, ]+)\|")


def squawk_binary() -> Path | None:
    candidate = Path(sys.executable).parent / "squawk"
    found = candidate if candidate.exists() else shutil.which("squawk")
    return Path(found) if found else None


def documented() -> set[tuple[str, str]]:
    """(rule, up|down) pairs from the table in docs/squawk-findings.md."""
    pairs = set()
    for line in FINDINGS_DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            for direction in match.group("where").split(","):
                pairs.add((match.group("rule"), direction.strip()))
    return pairs


def generated_files(root: Path) -> list[Path]:
    """The incremental migrations of every scenario (the initial ones are not incremental)."""
    files: list[Path] = []
    for scenario in SCENARIOS:
        base = root / scenario.id
        old_dir, new_dir, migrations = base / "old", base / "new", base / "migrations"
        old_dir.mkdir(parents=True)
        new_dir.mkdir()
        old_yaml = scenario.old(BASE_YAML)
        (old_dir / "app.yaml").write_text(old_yaml)
        (new_dir / "app.yaml").write_text(scenario.change(old_yaml))
        old, new = load_schema(old_dir), load_schema(new_dir)
        generate_initial(old, migrations, "initial", FileSettings())
        for written in generate_incremental(old, new, migrations, scenario.id, FileSettings()):
            files += [written.up_path, written.down_path]
    return files


def run_squawk(binary: Path, files: list[Path], in_transaction: bool) -> list[dict]:
    if not files:
        return []
    flag = "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction"
    proc = subprocess.run([str(binary), "--reporter", "json", "--pg-version", "15.0", flag, *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    findings = json.loads(proc.stdout or "[]")
    assert isinstance(findings, list)
    return findings


def test_squawk_reports_only_documented_findings(tmp_path: Path) -> None:
    binary = squawk_binary()
    assert binary is not None, "squawk is not installed: it is a dev dependency (squawk-cli)"
    files = generated_files(tmp_path)
    assert len(files) >= 2 * len(SCENARIOS)
    transactional = [f for f in files if not is_no_transaction(f.read_text(encoding="utf-8"))]
    outside = [f for f in files if f not in transactional]
    findings = run_squawk(binary, transactional, True) + run_squawk(binary, outside, False)
    seen: dict[tuple[str, str], list[str]] = {}
    for finding in findings:
        direction = "down" if finding["file"].endswith(".down.sql") else "up"
        where = f"{Path(finding['file']).name}:{finding['line']}: {finding['message']}"
        seen.setdefault((finding["rule_name"], direction), []).append(where)
    allowed = documented()
    unexpected = {key: where for key, where in seen.items() if key not in allowed}
    assert not unexpected, f"squawk findings not documented in {FINDINGS_DOC.name}: {unexpected}"
    stale = allowed - set(seen)
    assert not stale, f"documented in {FINDINGS_DOC.name} but no longer reported: {sorted(stale)}"
