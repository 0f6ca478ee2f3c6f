"""The hand-listed mutants of ``make mutate`` stay runnable as the code moves on.

``make mutate`` refuses to start when a mutant's fragment is not found exactly once in its module
(nine had gone stale after the security and planner rewrites, unnoticed until a run). This cheap
check runs with the suite, so a change that moves a fragment also updates its mutant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tests.mutation.mutants import MUTANTS, Mutant


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_each_mutant_fragment_occurs_once_in_its_module_and_changes_it(mutant: Mutant) -> None:
    source = (REPO_ROOT / mutant.path).read_text(encoding="utf-8")
    assert source.count(mutant.before) == 1, f"{mutant.id}: fragment not found exactly once in {mutant.path}"
    assert mutant.after != mutant.before


def test_each_mutant_names_test_files_that_exist() -> None:
    missing = [(m.id, test) for m in MUTANTS for test in m.tests if not Path(REPO_ROOT / test.split("::")[0]).exists()]
    assert not missing


def test_mutant_ids_are_unique() -> None:
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids))
