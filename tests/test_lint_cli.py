"""``veza-schema lint`` through the CLI, in process: exit codes, formats, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import invoke

CASES = Path(__file__).parent / "lint_cases"


def lint_cli(*args: str) -> tuple[int, str, str]:
    result = invoke("lint", *args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("case", "extra", "expected"),
    [
        ("IMM002/pass", [], 0),  # clean
        ("IMM002/fail", [], 1),  # an error
        ("PG010/fail", [], 0),  # a warning alone
        ("PG010/fail", ["--strict"], 1),  # ... fails with --strict
        ("IMM002/fail", ["--ignore", "IMM002"], 0),
        ("IMM002/fail", ["--select", "PG,NAM"], 0),
        ("IMM002/fail", ["--select", "NAM", "--select", "IMM"], 1),
        ("LNT001/pass", [], 0),  # waived finding: exit 0
        ("LNT001/pass", ["--no-waivers"], 1),  # ... listed and counted with --no-waivers
    ],
)
def test_exit_codes(case: str, extra: list[str], expected: int) -> None:
    code, out, err = lint_cli("--schema-dir", str(CASES / case), *extra)
    assert code == expected, out + err


def test_bad_input_exits_2_with_located_problems(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("module: m\ntables:\n  t:\n    columns:\n      id: {type: uuid, nulable: true}\n")
    code, out, err = lint_cli("--schema-dir", str(tmp_path))
    assert code == 2
    assert "m.yaml:5:" in err and "nulable" in err


@pytest.mark.parametrize("args", [["--format", "xml"], ["--select", "XYZ9"], ["--ignore", "IMM999"]])
def test_bad_options_exit_2(args: list[str]) -> None:
    code, out, err = lint_cli("--schema-dir", str(CASES / "IMM002" / "pass"), *args)
    assert code == 2, out + err


def test_json_and_output_file(tmp_path: Path) -> None:
    target = tmp_path / "report" / "lint.json"
    code, out, err = lint_cli("--schema-dir", str(CASES / "IMM002" / "fail"), "--format", "json", "--output",
                              str(target))
    assert code == 1 and out == ""
    document = json.loads(target.read_text())
    assert document["summary"]["errors"] >= 1
    assert document["findings"][0]["code"] == "IMM002"
    assert document["findings"][0]["file"].endswith("case.yaml")


def test_github_format_prints_only_annotations() -> None:
    code, out, _ = lint_cli("--schema-dir", str(CASES / "IMM002" / "fail"), "--format", "github")
    assert code == 1
    assert out.splitlines() and all(line.startswith("::error file=") for line in out.splitlines())


def test_text_format_shows_location_code_and_fix() -> None:
    code, out, _ = lint_cli("--schema-dir", str(CASES / "IMM002" / "fail"))
    assert code == 1
    assert "case.yaml:3:3 IMM002 error" in out
    assert "fix:" in out
    assert "1 error(s), 0 warning(s), 0 waived" in out


def test_help_has_an_example() -> None:
    result = invoke("lint", "--help")
    assert result.exit_code == 0
    assert "veza-schema lint --format sarif" in result.stdout


def test_shipped_schema_has_no_errors_and_no_waivers_lists_them() -> None:
    result = invoke("lint", "--format", "json")
    document = json.loads(result.stdout)
    errors = [f for f in document["findings"] if f["severity"] == "error" and not f["waived"]]
    assert result.exit_code == 0, errors
    assert document["summary"]["errors"] == 0
    waived = document["summary"]["waived"]
    assert waived > 0
    everything = invoke("lint", "--format", "json", "--no-waivers")
    listed = json.loads(everything.stdout)
    assert listed["waivers_applied"] is False
    assert sum(1 for f in listed["findings"] if f["waiver_reason"] is not None) == waived
    assert everything.exit_code == 1


def test_shipped_schema_sarif_validates() -> None:
    import jsonschema

    schema = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
    result = invoke("lint", "--format", "sarif", "--no-waivers")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema)
    assert document["runs"][0]["results"], "the waived findings are listed"
