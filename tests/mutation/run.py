"""Run hand-listed mutants against the tests that should kill them; print the score and the survivors.

Usage: ``python -m tests.mutation.run [--only ID ...] [--module PATH] [--jobs N] [--report FILE] [--list]``
(``make mutate`` runs them all).

Why hand-listed rather than mutmut: each mutant is a bug a person could plausibly write
(an off-by-one in a rollback range, a history row moved out of its transaction, a quote
dropped), not a thousand mechanical operator swaps that take hours on two cores and
mostly produce equivalent code; each names the tests expected to kill it, so a run takes
minutes per mutant instead of the whole suite.

How: the working tree (tracked and untracked-but-not-ignored files) is copied once into a
temporary directory; for each mutant the one exact source fragment is replaced there (a
fragment that is missing or ambiguous is an error of the list, not a survivor), the named
tests run with ``-x`` in that copy (its own ``veza_schema`` comes first on ``sys.path``),
and the file is restored. A mutant is killed when the tests fail or time out. The checkout
itself is never written.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.mutants import MUTANTS, Mutant

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "killed", "survived", "timeout", "invalid", "error" (the list is wrong, not the mutant)
    seconds: float
    evidence: str  # the first failing test, or why the mutant is invalid


def copy_checkout(destination: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def apply_mutant(root: Path, mutant: Mutant) -> str | None:
    """Write the mutant into ``root``; returns the original text, or None when the fragment is not unique."""
    path = root / mutant.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.before) != 1:
        return None
    path.write_text(original.replace(mutant.before, mutant.after), encoding="utf-8")
    return original


def run_tests(root: Path, mutant: Mutant, timeout: float) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests]
    try:
        proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"no result within {timeout:g}s"
    if proc.returncode == 0:
        return "survived", ""
    if proc.returncode == 2:  # a collection error: the mutant broke an import
        first = next((line for line in proc.stdout.splitlines() if "Error" in line), proc.stdout[-200:])
        return "killed", f"collection error: {first.strip()}"
    if proc.returncode in (3, 4, 5):  # internal error, usage error (a test path that does not exist), no tests
        return "error", f"pytest exit {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-300:]}"
    failed = re.search(r"^FAILED (\S+)", proc.stdout, re.MULTILINE)
    return "killed", failed.group(1) if failed else proc.stdout.strip().splitlines()[-1]


def run_one(mutant: Mutant, timeout: float) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"veza-mutant-{mutant.id}-") as tmp:
        root = Path(tmp)
        copy_checkout(root)
        if apply_mutant(root, mutant) is None:
            return Outcome(mutant, "invalid", 0.0, f"fragment not found exactly once in {mutant.path}")
        status, evidence = run_tests(root, mutant, timeout)
    return Outcome(mutant, status, time.monotonic() - started, evidence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="mutant ids to run")
    parser.add_argument("--module", default=None, help="run only the mutants of this source path")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (each runs its tests)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant before it counts as killed")
    parser.add_argument("--report", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if (args.only is None or m.id in args.only)
              and (args.module is None or m.path == args.module)]
    if args.list:
        for m in chosen:
            print(f"{m.id:32} {m.path:40} {m.why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="veza-mutation-check-") as tmp:
        copy_checkout(Path(tmp))  # every fragment must exist before hours are spent
        invalid = [m for m in chosen if (Path(tmp) / m.path).read_text(encoding="utf-8").count(m.before) != 1]
    for m in invalid:
        print(f"invalid mutant {m.id}: its fragment is not exactly once in {m.path}", file=sys.stderr)
    if invalid:
        return 2
    outcomes: list[Outcome] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for outcome in pool.map(lambda m: run_one(m, args.timeout), chosen):
            outcomes.append(outcome)
            print(f"{outcome.status:9} {outcome.seconds:7.1f}s  {outcome.mutant.id:32} {outcome.evidence}",
                  flush=True)
    killed = [o for o in outcomes if o.status in ("killed", "timeout")]
    survivors = [o for o in outcomes if o.status == "survived"]
    errors = [o for o in outcomes if o.status == "error"]
    lines = [f"mutation score: {len(killed)}/{len(outcomes)} killed "
             f"({100 * len(killed) / max(1, len(outcomes)):.0f}%)"]
    by_module: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_module.setdefault(o.mutant.path, []).append(o)
    for path, group in sorted(by_module.items()):
        dead = sum(o.status in ("killed", "timeout") for o in group)
        lines.append(f"  {path:42} {dead}/{len(group)}")
    for o in survivors:
        lines.append(f"survivor {o.mutant.id} ({o.mutant.path}): {o.mutant.why}")
    for o in errors:
        lines.append(f"error {o.mutant.id}: {o.evidence}")
    print("\n".join(lines))
    if args.report:
        table = [f"| {o.mutant.id} | {o.mutant.path} | {o.status} | {o.evidence} |" for o in outcomes]
        args.report.write_text("\n".join(["| mutant | module | status | evidence |", "|---|---|---|---|", *table,
                                          "", *lines]) + "\n")
    return 0 if not survivors and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
