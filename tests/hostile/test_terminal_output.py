"""YAML text reaches people's terminals and CI logs only as visible text.

Findings, policy decisions and error messages quote YAML (defaults, CHECKs, types). A pull request
can put terminal control sequences there: ESC ``[2J`` clears a reviewer's screen, CR rewrites the
line that reports an error, U+202E reorders what is read. Every report meant for people shows them
as escapes (``\\x1b``), and rich's ``:emoji:`` codes stay plain text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import invoke
from veza_schema.errors import printable

ESC = "\x1b"

# A nullable column with a default (IMM006) quotes the default; an always-true CHECK (INT012) quotes the CHECK.
HOSTILE = """module: app
tables:
  items:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      note: {type: text, nullable: true, default: "'\\\\e[2Jcleared\\\\r'"}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
    checks:
      chk_items_note_any: "note <> '\\\\u202e:fire:' OR true"
"""


def hostile_project(root: Path, yaml_text: str = HOSTILE) -> Path:
    (root / "schema").mkdir()
    (root / "migrations").mkdir()
    (root / "schema" / "app.yaml").write_text(yaml_text.replace("\\\\", "\\"), encoding="utf-8")
    return root


def test_printable_escapes_what_a_terminal_acts_on_and_keeps_text() -> None:
    assert printable("a\x1b[2Jb\rc\x9bd\u202ee\x7f") == "a\\x1b[2Jb\\x0dc\\x9bd\\u202ee\\x7f"
    assert printable("line\n\tindented é ♪ 🔥") == "line\n\tindented é ♪ 🔥"


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_lint_reports_show_control_characters_as_escapes(fmt: str, tmp_path: Path) -> None:
    project = hostile_project(tmp_path)
    result = invoke("lint", "--offline", "--format", fmt, cwd=project)
    assert result.exit_code == 1, result.output
    assert "IMM006" in result.stdout and "INT012" in result.stdout
    assert ESC not in result.output and "\r" not in result.output and "\u202e" not in result.output
    assert "\\x1b[2Jcleared\\x0d" in result.stdout and "\\u202e" in result.stdout


def test_emoji_codes_in_yaml_stay_text_in_the_text_report(tmp_path: Path) -> None:
    result = invoke("lint", "--offline", cwd=hostile_project(tmp_path))
    assert ":fire:" in result.stdout and "\N{FIRE}" not in result.stdout


def test_an_error_message_quoting_yaml_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    broken = HOSTILE.replace("{type: text, nullable: true", "{type: \"\\\\e[31mtext\", nullable: true")
    result = invoke("lint", "--offline", cwd=hostile_project(tmp_path, broken))
    assert result.exit_code == 2, result.output
    assert ESC not in result.output and "\\x1b[31mtext" in result.output
