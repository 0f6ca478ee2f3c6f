"""The code's shape: layers point inward, no import cycles, each fact in one place, every change kind handled."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import grimp
import pytest
from importlinter import cli as importlinter_cli

from tests.factories import BASE, one_change_of_each_kind
from tests.helpers import REPO_ROOT
from veza_schema.diff.changes import AlterColumnGenerated, Change, ReorderColumns, describe, reverse
from veza_schema.diff.plan import UnsafeChangeError, build_plan
from veza_schema.drift.report import subject
from veza_schema.policy.classify import classify

PACKAGE = REPO_ROOT / "veza_schema"


def test_import_linter_contracts_hold() -> None:
    assert importlinter_cli.lint_imports(config_filename=str(REPO_ROOT / "pyproject.toml")) == 0


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules_including_imports_inside_functions() -> None:
    graph = grimp.build_graph("veza_schema")  # every import statement, nested ones too
    assert _cycles(graph) == []


def test_at_most_eight_modules_at_the_top_of_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top


def test_long_modules_say_which_one_job_they_do() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "builtin_catalog.py":  # generated data
            continue
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > 650:
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert "One job:" in docstring, f"{path.relative_to(REPO_ROOT)} has {lines} lines"


# Built-in function names that used to be listed by hand in several modules.
_VOLATILITY_WITNESSES = ("clock_timestamp", "txid_current", "gen_random_bytes", "setseed")


def test_built_in_function_volatility_is_listed_in_one_module() -> None:
    holders = sorted(str(p.relative_to(REPO_ROOT)) for p in PACKAGE.rglob("*.py")
                     if any(name in p.read_text(encoding="utf-8") for name in _VOLATILITY_WITNESSES))
    assert holders == ["veza_schema/sql/builtin_catalog.py"]


def test_templates_are_shipped_from_the_top_level_folder() -> None:
    assert (REPO_ROOT / "templates").is_dir()
    assert not (PACKAGE / "templates").exists()
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"templates" = "veza_schema/templates"' in pyproject


CHANGES = one_change_of_each_kind()


def test_the_factory_has_every_kind_of_change() -> None:
    assert {type(c) for c in CHANGES} == set(typing.get_args(Change))


# Changes the planner refuses whatever the flags (no in-place form): it must say so, never plan them wrongly.
NO_IN_PLACE_FORM = (AlterColumnGenerated, ReorderColumns)


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: type(c).__name__)
def test_every_change_kind_is_handled_by_every_consumer(change: Change) -> None:
    assert describe(change)[:2] in ("+ ", "- ", "~ ", "> ")
    assert reverse(reverse(change)) == change
    assert subject(change).name
    report = classify([change], BASE, BASE)
    assert len(report.decisions) == 1 and report.decisions[0].change is change
    if isinstance(change, NO_IN_PLACE_FORM):
        with pytest.raises(UnsafeChangeError):
            build_plan([change], BASE, BASE, allow_forbidden=True)
    else:
        assert build_plan([change], BASE, BASE, allow_forbidden=True).steps


def test_tests_are_named_after_what_they_test() -> None:
    phase_words = ("foundation", "phase", "issue")
    names = [p.name for p in Path(__file__).parent.glob("test_*.py")]
    assert not [n for n in names if any(word in n for word in phase_words)]
