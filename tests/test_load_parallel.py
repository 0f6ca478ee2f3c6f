"""A large schema is read by forked processes too: the model, the problems and both caches are one process's."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.factories import write_synthetic_schema
from tests.helpers import REPO_ROOT, invoke
from tests.test_load_cache import everything, module
from veza_schema.errors import SchemaLoadError
from veza_schema.model import Schema
from veza_schema.sql import parse_cache
from veza_schema.yaml import load_cache, loader, workers
from veza_schema.yaml.loader import load_schema


@pytest.fixture(autouse=True)
def caches_off_after() -> Iterator[None]:
    yield
    load_cache.disable()
    parse_cache.save_and_disable()


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every schema, however small, read by two processes; the list of the workers started."""
    monkeypatch.setattr(loader, "PARALLEL_FROM_BYTES", 0)
    started: list[object] = []
    start = workers.start

    def counted(job: Callable[[workers.Send], None]) -> workers.Worker:
        started.append(job)
        return start(job)

    monkeypatch.setattr(workers, "start", counted)
    return started


def forget_every_answer() -> None:
    """Empty every in-memory cache of the package: the disk caches then learn what a fresh process learns."""
    for name, loaded in list(sys.modules.items()):
        if name.startswith("veza_schema."):
            for value in vars(loaded).values():
                if getattr(value, "__module__", None) == name and callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()


def load_with(processes: int, directory: Path) -> Schema:
    previous = os.environ.get(workers.JOBS_ENV)
    os.environ[workers.JOBS_ENV] = str(processes)
    try:
        return load_schema(directory)
    finally:
        if previous is None:
            del os.environ[workers.JOBS_ENV]
        else:
            os.environ[workers.JOBS_ENV] = previous


def problems_with(processes: int, directory: Path) -> list[str]:
    with pytest.raises(SchemaLoadError) as raised:
        load_with(processes, directory)
    return [str(problem) for problem in raised.value.problems]


@pytest.mark.parametrize("schema", ["shipped", "synthetic"])
def test_two_processes_load_the_same_model_with_every_position(schema: str, tmp_path: Path,
                                                               forks: list[object]) -> None:
    directory = REPO_ROOT / "schema" if schema == "shipped" else \
        write_synthetic_schema(tmp_path / "schema", 60, modules=6)
    alone = load_with(1, directory)
    assert not forks
    together = load_with(2, directory)
    assert len(forks) == 1
    assert everything(together) == everything(alone)


def test_lint_prints_the_same_read_on_two_cores(tmp_path: Path, forks: list[object]) -> None:
    schema = write_synthetic_schema(tmp_path / "schema", 60, modules=6)
    (schema / "z.yaml").write_text(module("z", "zeta") + "      ts: {type: timestamp, nullable: true}\n")
    for output in ("text", "json", "sarif"):
        printed = [invoke("lint", "--offline", "--format", output, "--schema-dir", str(schema),
                          env={workers.JOBS_ENV: str(jobs), "VEZA_CACHE_DIR": str(tmp_path / f"{output}{jobs}")})
                   for jobs in (1, 2)]
        assert printed[0].exit_code == 1
        assert "IMM009" in printed[0].stdout
        assert (printed[1].exit_code, printed[1].stdout, printed[1].stderr) == \
            (printed[0].exit_code, printed[0].stdout, printed[0].stderr)
    assert len(forks) == 3


def test_problems_are_the_same_and_in_the_same_order(tmp_path: Path, forks: list[object]) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.yaml").write_text(module("a", "alpha"))
    (schema / "b.yaml").write_text(module("b", "alpha"))  # a name a.yaml declares too
    (schema / "c.yaml").write_text(module("c", "gamma") + "    colour: red\n")  # a file with its own problem
    (schema / "d.yaml").write_text("module: d\ntables: [\n")  # not YAML
    (schema / "e.yaml").write_text("")  # empty
    (schema / "f.yaml").write_text(module("f", "phi"))
    expected = problems_with(1, schema)
    assert [problem.split(":")[0].rsplit("/", 1)[-1] for problem in expected] == ["b.yaml", "c.yaml", "d.yaml"]
    assert problems_with(2, schema) == expected
    assert len(forks) == 1


def test_a_worker_keeps_its_files_entries_and_parse_answers(tmp_path: Path, forks: list[object]) -> None:
    schema = write_synthetic_schema(tmp_path / "schema", 40, modules=4)
    files = len(list(schema.glob("*.yaml")))
    answers = {}
    for processes in (1, 2):
        cache_dir = tmp_path / f"cache{processes}"
        parse_cache.enable(cache_dir, "1.0")
        load_cache.enable(cache_dir, "1.0")
        forget_every_answer()
        load_with(processes, schema)
        parse_cache.save_and_disable()
        load_cache.disable()
        assert len(list(cache_dir.glob("load-*.pickle"))) == files
        (answers[processes],) = [parse_cache._read(path)[0] for path in cache_dir.glob("parse-*.marshal")]
    assert len(forks) == 1
    assert answers[2] == answers[1]
    warm = load_cache.enable(tmp_path / "cache2", "1.0")
    assert warm is not None
    load_with(1, schema)
    assert (warm.hits, warm.misses) == (files, 0)


def test_only_files_the_load_cache_does_not_hold_are_shared_out(tmp_path: Path, forks: list[object]) -> None:
    schema = write_synthetic_schema(tmp_path / "schema", 40, modules=4)
    files = len(list(schema.glob("*.yaml")))
    cache = load_cache.enable(tmp_path / "cache", "1.0")
    assert cache is not None
    load_with(2, schema)
    assert (cache.hits, cache.misses) == (0, files)
    for name in ("m1.yaml", "m3.yaml"):
        (schema / name).write_text((schema / name).read_text().replace("comment:", "comment: changed"))
    changed = load_with(2, schema)
    assert len(forks) == 2
    assert (cache.hits, cache.misses) == (files - 2, files + 2)
    load_cache.disable()
    assert everything(changed) == everything(load_with(1, schema))


def test_files_a_worker_did_not_deliver_are_read_by_the_parent(tmp_path: Path, forks: list[object],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    schema = write_synthetic_schema(tmp_path / "schema", 40, modules=4)
    alone = load_with(1, schema)

    def failing(*_: object) -> None:
        raise RuntimeError("a worker that dies")

    monkeypatch.setattr(loader, "_read_share", failing)
    assert everything(load_with(2, schema)) == everything(alone)
    assert len(forks) == 1


def test_an_internal_error_stops_the_load_at_the_same_file(tmp_path: Path, forks: list[object],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    schema = write_synthetic_schema(tmp_path / "schema", 40, modules=4)
    read = loader._ModuleReader.read

    def buggy(self: loader._ModuleReader, node: object) -> None:
        if self.stem in ("m2", "m3"):  # m3 in this process's share, m2 (read first) in the worker's
            raise RuntimeError(f"a bug reading {self.stem}")
        read(self, node)  # type: ignore[arg-type]

    monkeypatch.setattr(loader._ModuleReader, "read", buggy)
    for processes in (1, 2):
        with pytest.raises(RuntimeError, match="a bug reading m2"):
            load_with(processes, schema)
    assert len(forks) == 1


def test_a_small_schema_is_read_by_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(workers, "start", started.append)
    load_with(2, REPO_ROOT / "schema")
    assert not started


def test_shares_split_files_by_size_and_keep_each_once() -> None:
    split = workers.shares([50, 10, 40, 30, 20, 5], 2)
    assert sorted(index for share in split for index in share) == list(range(6))
    assert [sum([50, 10, 40, 30, 20, 5][i] for i in share) for share in split] == [80, 75]
    assert all(share == sorted(share) for share in split)


@pytest.mark.parametrize(("configured", "expected"), [("1", 1), ("3", 3), ("999", workers.MAX_PROCESSES)])
def test_veza_jobs_sets_how_many_processes_read(configured: str, expected: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workers.JOBS_ENV, configured)
    assert workers.processes() == expected


def test_a_worker_hands_back_its_records_in_order() -> None:
    def job(send: workers.Send) -> None:
        for number in (0, 1, 2):
            send(number, bytes([number]) * number)

    assert list(workers.collect(workers.start(job))) == [(0, b""), (1, b"\x01"), (2, b"\x02\x02")]


def test_a_worker_that_fails_hands_back_nothing() -> None:
    def job(send: workers.Send) -> None:
        send(1, b"kept?")
        raise RuntimeError("half done")

    assert list(workers.collect(workers.start(job))) == []


def test_stop_ends_a_worker_still_running() -> None:
    worker = workers.start(lambda send: time.sleep(60))
    workers.stop(worker)
    with pytest.raises(ChildProcessError):
        os.waitpid(worker.pid, os.WNOHANG)
    assert worker.output.closed
