"""The shipped CI integrations, run for real on a temporary git repository: the pre-commit hooks
(through pre-commit itself) and the composite GitHub Action (its steps, with the GITHUB_* files).

Offline: pre-commit would install a ``language: python`` hook from its repository with pip, so the
test runs each hook of ``.pre-commit-hooks.yaml`` as a ``repo: local`` hook with ``language: system``
(every other field as shipped); the action's ``uses:`` step (setup-python) is left out, its
``run:`` steps run with bash as the runner would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO_ROOT, cli_env

APP = """\
module: app
tables:
  items:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      title: {type: text}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
    indexes:
      idx_items_title_btree: {columns: [title]}
"""
PYPROJECT = """\
[tool.veza-schema]
schema-dir = "schema"

[tool.veza-schema.lint]
severity = { naming = "error" }
"""
BIN = str(Path(sys.executable).parent)


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                            capture_output=True, text=True, check=True)
    return result.stdout


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = cli_env()
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PRE_COMMIT_HOME": str(tmp_path / "cache"),
                "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"), **extra})
    (tmp_path / "gitconfig").write_text("[user]\n\tname = t\n\temail = t@example.com\n[init]\n\tdefaultBranch = main\n")
    return env


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project repository with one commit: schema/, migrations/ (generated), its settings."""
    root = tmp_path / "project"
    (root / "schema").mkdir(parents=True)
    (root / "schema" / "app.yaml").write_text(APP)
    (root / "pyproject.toml").write_text(PYPROJECT)
    git(root, "init", "-q", "-b", "main")
    generated = subprocess.run([sys.executable, "-m", "veza_schema", "generate"], cwd=root, env=cli_env(),
                               capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial schema")
    return root


def add_column(repo: Path, line: str) -> None:
    path = repo / "schema" / "app.yaml"
    path.write_text(path.read_text().replace("      title: {type: text}\n", f"      title: {{type: text}}\n{line}\n"))


# -- pre-commit -------------------------------------------------------------------------------------------

def shipped_hooks() -> list[dict[str, Any]]:
    return yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_the_hook_manifest_declares_lint_and_check_on_the_schema_directory() -> None:
    hooks = {hook["id"]: hook for hook in shipped_hooks()}
    assert set(hooks) == {"veza-schema-lint", "veza-schema-check"}
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert re.search(hook["files"], "schema/app.yaml")
        assert not re.search(hook["files"], "docs/schema/index.md")
    assert hooks["veza-schema-lint"]["entry"] == "veza-schema lint"
    assert hooks["veza-schema-check"]["entry"] == "veza-schema check"


def pre_commit(repo: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``pre-commit run`` on the staged files, the shipped hooks as local system hooks."""
    local = [{**hook, "language": "system"} for hook in shipped_hooks()]
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}))
    git(repo, "add", ".pre-commit-config.yaml")
    return subprocess.run([sys.executable, "-m", "pre_commit", "run"], cwd=repo, env=environment(tmp_path),
                          capture_output=True, text=True, timeout=300)


def hook_results(output: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^veza-schema (lint|check)\.+(?:\(.*\))?(\w+)$", output,
                                                         re.MULTILINE)}


def test_hooks_pass_on_an_allowed_change(repo: Path, tmp_path: Path) -> None:
    add_column(repo, "      note: {type: text, nullable: true}")
    git(repo, "add", "-A")
    result = pre_commit(repo, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hook_results(result.stdout) == {"lint": "Passed", "check": "Passed"}


def test_the_lint_hook_fails_on_a_naming_error_of_the_project(repo: Path, tmp_path: Path) -> None:
    path = repo / "schema" / "app.yaml"
    path.write_text(path.read_text().replace("idx_items_title_btree", "items_by_title"))
    git(repo, "add", "-A")
    result = pre_commit(repo, tmp_path)
    assert result.returncode == 1
    assert hook_results(result.stdout)["lint"] == "Failed"
    assert "NAM002 error" in result.stdout


def test_the_check_hook_fails_on_a_forbidden_change(repo: Path, tmp_path: Path) -> None:
    path = repo / "schema" / "app.yaml"
    path.write_text(path.read_text().replace("      title: {type: text}\n", "").replace(
        "    indexes:\n      idx_items_title_btree: {columns: [title]}\n", ""))
    git(repo, "add", "-A")
    result = pre_commit(repo, tmp_path)
    assert result.returncode == 1
    assert hook_results(result.stdout) == {"lint": "Passed", "check": "Failed"}
    assert "POL" in result.stdout


def test_hooks_skip_a_commit_that_does_not_touch_the_schema(repo: Path, tmp_path: Path) -> None:
    (repo / "README.md").write_text("docs\n")
    git(repo, "add", "-A")
    result = pre_commit(repo, tmp_path)
    assert result.returncode == 0, result.stdout
    assert hook_results(result.stdout) == {"lint": "Skipped", "check": "Skipped"}


# -- the GitHub Action -------------------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(expression: str, inputs: dict[str, str]) -> str | bool:
    """The expressions action.yml may use in ``env``, ``with``, ``if`` and ``working-directory``:
    ``inputs.NAME`` and ``inputs.NAME == 'literal'`` (anything else fails the test: keep the action simple)."""
    compared = re.fullmatch(r"inputs\.([\w-]+)\s*==\s*'([^']*)'", expression)
    if compared:
        return inputs[compared.group(1)] == compared.group(2)
    plain = re.fullmatch(r"inputs\.([\w-]+)", expression)
    assert plain, f"expression not supported by the local runner: {expression}"
    return inputs[plain.group(1)]


def substitute(text: str, inputs: dict[str, str]) -> str:
    return EXPRESSION.sub(lambda m: str(evaluate(m.group(1), inputs)), text)


def run_action(repo: Path, tmp_path: Path, given: dict[str, str], env: dict[str, str]) -> tuple[int, str, dict]:
    """Run action.yml's steps as the runner does; returns (exit code of the first failing step or 0,
    stdout of all steps, the step outputs). ``install`` is "false": the suite's venv has the tool."""
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(given)
    files = {name: tmp_path / name.lower() for name in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV")}
    for path in files.values():
        path.write_text("")
    base_env = environment(tmp_path, GITHUB_ACTIONS="true", GITHUB_ACTION_PATH=str(REPO_ROOT),
                           GITHUB_WORKSPACE=str(repo), RUNNER_OS="Linux", RUNNER_TEMP=str(tmp_path / "runner-temp"),
                           **{k: str(v) for k, v in files.items()}, **env)
    stdout, outputs = "", {}
    for step in action["runs"]["steps"]:
        if str(step.get("uses", "")).startswith("actions/cache/"):
            continue  # no cache service here: a miss, as on a repository's first run
        condition = step.get("if")
        if condition is not None and not evaluate(EXPRESSION.fullmatch(condition).group(1), inputs):  # type: ignore[union-attr]
            continue
        assert "run" in step, f"step {step.get('name')} uses an action but is not conditional on `install`"
        files["GITHUB_OUTPUT"].write_text("")  # the runner gives each step its own
        step_env = {**base_env, **{k: substitute(str(v), inputs) for k, v in step.get("env", {}).items()}}
        cwd = repo / substitute(step.get("working-directory", "."), inputs)
        result = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c",
                                 substitute(step["run"], inputs)], cwd=cwd, env=step_env, capture_output=True,
                                text=True, timeout=300)
        stdout += result.stdout
        if step.get("id"):
            outputs[step["id"]] = dict(line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines()
                                       if "=" in line)
        if result.returncode != 0:
            return result.returncode, stdout + result.stderr, outputs
    return 0, stdout, outputs


@pytest.fixture
def pull_request(repo: Path, tmp_path: Path) -> Path:
    """The repository as a pull request's checkout: origin (a bare clone) has main, HEAD is a branch on it."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


def test_the_action_annotates_and_summarises_an_allowed_change(pull_request: Path, tmp_path: Path) -> None:
    add_column(pull_request, "      note: {type: text, nullable: true}")
    git(pull_request, "commit", "-q", "-am", "add note")
    code, stdout, outputs = run_action(pull_request, tmp_path, {"install": "false"}, {"GITHUB_BASE_REF": "main"})
    assert code == 0, stdout
    assert outputs["veza"] == {"lint": "0", "check": "0", "diff": "0"}
    assert "::group::veza-schema check --base origin/main" in stdout
    summary = (tmp_path / "github_step_summary").read_text()
    assert summary.startswith("### veza-schema: `origin/main` → `HEAD`")
    assert "| `+` | table items | column items.note" in summary
    assert "ALTER TABLE items ADD COLUMN note text" in summary


def test_the_action_fails_with_annotations_and_still_writes_the_summary(pull_request: Path, tmp_path: Path) -> None:
    path = pull_request / "schema" / "app.yaml"
    path.write_text(path.read_text().replace("idx_items_title_btree", "items_by_title").replace(
        "      created_at: {type: timestamptz, default: now()}\n", ""))
    git(pull_request, "commit", "-q", "-am", "rename an index, drop a column")
    code, stdout, outputs = run_action(pull_request, tmp_path, {"install": "false", "base": "main"}, {})
    assert code == 1, stdout
    assert outputs["veza"] == {"lint": "1", "check": "1", "diff": "0"}
    assert re.search(r"^::error file=schema/app\.yaml,line=\d+,.*NAM002", stdout, re.MULTILINE), stdout
    assert re.search(r"^::error file=schema/app\.yaml,.*POL\d+", stdout, re.MULTILINE), stdout
    summary = (tmp_path / "github_step_summary").read_text()
    assert "### veza-schema: `main` → `HEAD`" in summary and "lint exited 1, check exited 1" in summary


def test_the_action_needs_a_base_outside_a_pull_request(repo: Path, tmp_path: Path) -> None:
    code, stdout, _ = run_action(repo, tmp_path, {"install": "false"}, {})
    assert code == 2
    assert "::error::veza-schema: no base to compare with" in stdout


def action_steps() -> list[dict[str, Any]]:
    return list(yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))["runs"]["steps"])


def cache_step(kind: str) -> dict[str, Any]:
    return next(step for step in action_steps() if step.get("uses") == f"actions/cache/{kind}@v4")


def test_the_action_keeps_its_cache_in_the_directory_actions_cache_saves(pull_request: Path, tmp_path: Path) -> None:
    for kind in ("restore", "save"):
        assert cache_step(kind)["with"]["path"] == "${{ runner.temp }}/veza-schema-cache"
    code, stdout, _ = run_action(pull_request, tmp_path, {"install": "false"}, {"GITHUB_BASE_REF": "main"})
    assert code == 0, stdout
    assert list((tmp_path / "runner-temp" / "veza-schema-cache").glob("load-*.pickle")), \
        "the lint step did not write the cache the next run restores"


def test_the_action_without_its_cache_writes_none_there(pull_request: Path, tmp_path: Path) -> None:
    code, stdout, outputs = run_action(pull_request, tmp_path, {"install": "false", "cache": "false"},
                                       {"GITHUB_BASE_REF": "main"})
    assert code == 0, stdout
    assert "cache-key" not in outputs
    assert not (tmp_path / "runner-temp" / "veza-schema-cache").exists()


def test_the_actions_cache_key_follows_the_schema_files_and_the_version(pull_request: Path, tmp_path: Path) -> None:
    from veza_schema import __version__

    def key() -> str:
        code, stdout, outputs = run_action(pull_request, tmp_path, {"install": "false"}, {"GITHUB_BASE_REF": "main"})
        assert code == 0, stdout
        return str(outputs["cache-key"]["key"])

    first = key()
    assert first.startswith(f"veza-schema-Linux-{__version__}-")
    assert cache_step("restore")["with"]["restore-keys"] == "veza-schema-${{ runner.os }}-"
    assert cache_step("restore")["with"]["key"] == cache_step("save")["with"]["key"] == \
        "${{ steps.cache-key.outputs.key }}"
    assert key() == first  # nothing changed: the saved copy is found, none saved again
    add_column(pull_request, "      note: {type: text, nullable: true}")
    git(pull_request, "commit", "-q", "-am", "add note")
    assert key() != first


def test_the_action_saves_its_cache_right_after_its_own_step_even_on_findings() -> None:
    """Saved at the job's end (actions/cache's post step), the copy would hold whatever later steps of a
    pull request's job wrote there; and a run with findings still computed valid entries."""
    names = [step.get("id") or step.get("uses") for step in action_steps()]
    assert names.index("actions/cache/save@v4") == names.index("veza") + 1
    assert cache_step("save")["if"].startswith("${{ !cancelled() && inputs.cache == 'true'")


def test_the_actions_install_step_installs_this_revision() -> None:
    steps = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))["runs"]["steps"]
    install = next(step for step in steps if step["name"] == "Install veza-schema")
    assert install["if"] == "${{ inputs.install == 'true' }}"
    assert '"$GITHUB_ACTION_PATH"' in install["run"]
    assert subprocess.run(["bash", "-n", "-c", install["run"]]).returncode == 0


# -- shell completion --------------------------------------------------------------------------------------

def complete(*words: str) -> list[str]:
    """What bash completion offers for the last word (Typer's completion protocol)."""
    env = {**cli_env(), "_VEZA_SCHEMA_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(["veza-schema", *words]),
           "COMP_CWORD": str(len(words))}
    result = subprocess.run([sys.executable, "-m", "veza_schema"], env=env, capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_shell_completion_offers_commands_and_options() -> None:
    assert complete("li") == ["lint"]
    assert complete("lint", "--sev") == ["--severity"]
    assert "--shadow-dsn" in complete("diff", "--sh")


def test_the_completion_script_can_be_shown_and_installed() -> None:
    # Typer detects the shell it runs under: run it from bash.
    result = subprocess.run(["bash", "-c", f"'{sys.executable}' -m veza_schema --show-completion"], env=cli_env(),
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0 and "_VEZA_SCHEMA_COMPLETE=complete_bash" in result.stdout
    assert "--install-completion" in subprocess.run([sys.executable, "-m", "veza_schema", "--help"], env=cli_env(),
                                                    capture_output=True, text=True, cwd=REPO_ROOT).stdout
