"""The hygiene plugin (tests/fixtures/hygiene.py) fails a run that changes the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


def project(tmp_path: Path, test_body: str) -> Path:
    """A one-commit git checkout holding one test module, with a file already modified before the run."""
    repo = tmp_path / "checkout"
    repo.mkdir()
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / "tracked.txt").write_text("v1\n")
    (repo / "dirty.txt").write_text("v1\n")
    (repo / "test_it.py").write_text(f"from pathlib import Path\nHERE = Path(__file__).parent\n\n\n"
                                     f"def test_it():\n    {test_body}\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    (repo / "dirty.txt").write_text("v2, edited before the run\n")
    return repo


def run_pytest(repo: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.fixtures.hygiene", "-p",
                           "no:cacheprovider", "test_it.py"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_run_that_leaves_the_checkout_as_it_found_it_passes(tmp_path: Path) -> None:
    repo = project(tmp_path, "(HERE / 'tracked.txt').read_text()")
    result = run_pytest(repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checkout changed" not in result.stdout


def test_a_new_file_in_the_checkout_fails_the_run_and_is_named(tmp_path: Path) -> None:
    repo = project(tmp_path, "(HERE / 'migrations').mkdir(); (HERE / 'migrations' / 'new.sql').write_text('x')")
    result = run_pytest(repo)
    assert result.returncode == 1
    assert "1 passed" in result.stdout
    assert "?? migrations/new.sql (new during the run)" in result.stdout


def test_a_tracked_file_modified_by_a_test_fails_the_run(tmp_path: Path) -> None:
    repo = project(tmp_path, "(HERE / 'tracked.txt').write_text('v2')")
    result = run_pytest(repo)
    assert result.returncode == 1
    assert "tracked.txt (changed during the run)" in result.stdout


def test_a_file_already_modified_before_the_run_and_modified_again_is_seen(tmp_path: Path) -> None:
    repo = project(tmp_path, "(HERE / 'dirty.txt').write_text('v3')")
    result = run_pytest(repo)
    assert result.returncode == 1
    assert "dirty.txt (changed during the run)" in result.stdout
