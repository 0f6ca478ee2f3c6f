"""Benchmark ``veza-schema lint``: wall time and peak memory, printed (not a timed test).

Measures the shipped Veza schema end to end through the CLI in a subprocess (medians of wall
time, and of the child's CPU time, steadier on a shared machine): with PostgreSQL's
verification on the embedded server (the default; the first run after a change builds the
template, later runs find it) and with ``--offline``; in process split into load and lint;
synthetic schemas of 1,000 and 10,000 tables written to a temporary directory (``--offline``,
and verified at 1,000); plus ``veza-schema --help``. Targets: Veza verified (cached) < 1 s,
Veza ``--offline`` < 0.5 s (and no slower than squawk: bench_peers.py), 10,000 tables offline
< 5 s and < 80 MB peak RSS (issue 14; the rules' share ~1 s), linear growth, ``--help`` < 0.15 s.

Run: ``python bench/bench_lint.py [--sizes 1000,10000] [--repeat 3]`` (``make bench``). It
uses the project's embedded server (``.veza/pgdata``, started if needed) as ``lint`` does.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TABLES_PER_MODULE = 100


@dataclass
class Figure:
    label: str
    tables: int
    seconds: float
    peak_mib: float
    note: str = ""


def run_cli(args: list[str], repeat: int, env: dict[str, str] | None = None,
            before_each: Callable[[], None] | None = None) -> tuple[float, float, int]:
    """Median wall time and peak RSS (MiB, from wait4) of the real CLI; and its exit code.

    The child's CPU time (user + system, median; a loading worker's included) is kept in
    ``CPU_SECONDS`` under the same arguments: on a shared machine it moves less than wall time.
    ``env``: variables set for the runs; ``before_each``: called before each run (empties a cache).
    """
    walls, cpus, peak, code = [], [], 0.0, 0
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    for _ in range(repeat):
        if before_each is not None:
            before_each()
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "veza_schema", *args], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = max(peak, usage.ru_maxrss / 1024)  # KiB on Linux
        code = proc.returncode
    CPU_SECONDS[tuple(args)] = statistics.median(cpus)
    return statistics.median(walls), peak, code


CPU_SECONDS: dict[tuple[str, ...], float] = {}


def drop_templates() -> None:
    """Forget every cached template on the embedded server, so the next verified run builds one."""
    import psycopg

    from veza_schema.db.shadow import TEMPLATE_PREFIX, shadow_server

    with shadow_server(None) as server, psycopg.connect(server, autocommit=True) as conn:
        names = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                             (TEMPLATE_PREFIX,)).fetchall()
        for (name,) in names:
            conn.execute(f'DROP DATABASE "{name}"')  # our own prefix, from the catalog


def in_process(schema_dir: Path, load_repeat: int, lint_repeat: int) -> tuple[float, float, float, int, int]:
    """Best load and lint times, lint's own peak allocation (MiB, tracemalloc), tables, errors.

    As in the CLI, the loaded model is frozen out of the garbage collector before linting;
    each lint run starts with empty SQL parse caches.
    """
    from veza_schema.lint import lint
    from veza_schema.lint.rules.predicates import _facts
    from veza_schema.sql.parse import expression_node, parse_sql, query_node, view_filters
    from veza_schema.yaml.loader import load_schema

    caches = (parse_sql, expression_node, query_node, view_filters, _facts)
    best_load = float("inf")
    schema = None
    for _ in range(load_repeat):
        schema = None
        gc.unfreeze()
        gc.collect()
        start = time.perf_counter()
        schema = load_schema(schema_dir)
        best_load = min(best_load, time.perf_counter() - start)
    assert schema is not None
    gc.freeze()
    best_lint = float("inf")
    errors = 0
    for _ in range(lint_repeat):
        for cache in caches:
            cache.cache_clear()
        start = time.perf_counter()
        report = lint(schema)
        best_lint = min(best_lint, time.perf_counter() - start)
        errors = report.errors
    for cache in caches:
        cache.cache_clear()
    tracemalloc.start()
    lint(schema)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tables = len(schema.tables)
    del schema
    gc.unfreeze()
    gc.collect()
    return best_load, best_lint, peak / 2**20, tables, errors


# -- synthetic schemas -------------------------------------------------------------------
def _table(i: int, module: int) -> str:
    """A realistic table: FKs with indexes, a unique, checks, jsonb with GIN, a partial index."""
    name = f"m{module}_entity_{i}"
    parent = f"m{module}_entity_{i - 1}" if i % TABLES_PER_MODULE else "users"
    score = f"score_{i % 97}"
    return f"""
  {name}:
    tags: [user_facing]
    comment: Synthetic table {i}
    columns:
      id: {{type: uuid, primary_key: true, default: gen_random_uuid()}}
      user_id: {{type: uuid, references: users.id, on_delete: cascade}}
      parent_id: {{type: uuid, nullable: true, references: {parent}.id, on_delete: set null}}
      title: {{type: varchar(200)}}
      slug: {{type: varchar(200)}}
      status: {{type: m{module}_status, default: "'draft'"}}
      {score}: {{type: integer, default: 0}}
      price: {{type: "numeric(10,2)", default: 0}}
      metadata: {{type: jsonb, default: "'{{}}'::jsonb"}}
      published_at: {{type: timestamptz, nullable: true}}
      created_at: {{type: timestamptz, default: now()}}
      updated_at: {{type: timestamptz, default: now()}}
      deleted_at: {{type: timestamptz, nullable: true}}
    unique:
      uq_{name}_user_id_slug: [user_id, slug]
    checks:
      chk_{name}_price_positive: price >= 0
      chk_{name}_{score}_range: "{score} BETWEEN 0 AND {i % 1000 + 100}"
      chk_{name}_metadata_object: "jsonb_typeof(metadata) = 'object'"
    indexes:
      idx_{name}_parent_id_btree: {{columns: [parent_id], where: parent_id IS NOT NULL}}
      idx_{name}_status_published_at_btree: {{columns: [status, published_at desc], where: deleted_at IS NULL}}
      idx_{name}_metadata_gin: {{columns: [metadata], using: gin}}
      idx_{name}_title_btree: {{expressions: [lower(title)]}}
"""


def write_synthetic(root: Path, tables: int) -> None:
    modules = max(1, tables // TABLES_PER_MODULE)
    (root / "core.yaml").write_text("""module: core
extensions: [pgcrypto]
tables:
  users:
    tags: [user_facing]
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      email: {type: varchar(255), unique: true}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
      deleted_at: {type: timestamptz, nullable: true}
""")
    written = 1
    for module in range(modules):
        count = min(TABLES_PER_MODULE, tables - written) if module == modules - 1 else TABLES_PER_MODULE
        count = max(count, 1)
        body = [f"module: m{module}\nenums:\n  m{module}_status: [draft, published, archived]\ntables:"]
        for j in range(count):
            body.append(_table(module * TABLES_PER_MODULE + j, module))
        (root / f"m{module}.yaml").write_text("".join(body))
        written += count


def cold_and_warm(root: Path, size: int, repeat: int) -> list[Figure]:
    """``lint --offline`` with an empty cache directory (each run), read by every core and by one
    process (``VEZA_JOBS=1``), then warm (the cache the cold runs filled)."""
    cache = root.parent / f"{root.name}-cache"
    args = ["lint", "--offline", "--schema-dir", str(root)]
    figures = []
    for label, jobs in (("cold, every core", ""), ("cold, one process", "1")):
        env = {"VEZA_CACHE_DIR": str(cache), **({"VEZA_JOBS": jobs} if jobs else {})}
        wall, rss, code = run_cli(args, repeat, env, lambda: shutil.rmtree(cache, ignore_errors=True))
        figures.append(Figure(f"synthetic {size}: lint --offline, {label}", size, wall, rss,
                              f"exit {code}, cpu {CPU_SECONDS[tuple(args)]:.1f} s (workers included)"))
    wall, rss, code = run_cli(args, repeat, {"VEZA_CACHE_DIR": str(cache)})
    figures.append(Figure(f"synthetic {size}: lint --offline, warm", size, wall, rss,
                          f"exit {code}, cpu {CPU_SECONDS[tuple(args)]:.1f} s"))
    shutil.rmtree(cache, ignore_errors=True)
    return figures


# -- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="synthetic schema sizes (tables)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (the median is kept)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    figures: list[Figure] = []

    help_time, help_rss, _ = run_cli(["--help"], max(args.repeat, 5))
    figures.append(Figure("veza-schema --help (CLI)", 0, help_time, help_rss,
                          f"cpu {CPU_SECONDS[('--help',)]:.3f} s; target < 0.15 s"))

    from veza_schema.db.servers import EmbeddedServer

    EmbeddedServer().start()  # lint starts it on demand; a running server is the usual case
    veza = REPO / "schema"
    if any(veza.glob("*.yaml")):
        drop_templates()
        cold, cold_rss, code = run_cli(["lint", "--schema-dir", str(veza)], 1)
        wall, rss, code = run_cli(["lint", "--schema-dir", str(veza)], args.repeat)
        offline, offline_rss, offline_code = run_cli(["lint", "--offline", "--schema-dir", str(veza)], args.repeat)
        load, lint_time, peak, tables, errors = in_process(veza, args.repeat, args.repeat)
        verified_cpu = CPU_SECONDS[("lint", "--schema-dir", str(veza))]
        figures.append(Figure("Veza schema: lint verified, cached (CLI)", tables, wall, rss,
                              f"exit {code}, {errors} errors, cpu {verified_cpu:.3f} s; target < 1 s"))
        figures.append(Figure("Veza schema: lint verified, first run (CLI)", tables, cold, cold_rss,
                              "builds the template"))
        offline_cpu = CPU_SECONDS[("lint", "--offline", "--schema-dir", str(veza))]
        figures.append(Figure("Veza schema: lint --offline (CLI)", tables, offline, offline_rss,
                              f"exit {offline_code}, cpu {offline_cpu:.3f} s; target < 0.5 s and <= squawk "
                              "(bench_peers.py: interleaved pairs)"))
        figures.append(Figure("Veza schema: load (in process)", tables, load, 0.0))
        figures.append(Figure("Veza schema: lint (in process)", tables, lint_time, peak, "peak = tracemalloc"))

    per_table: list[tuple[int, float]] = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        with tempfile.TemporaryDirectory(prefix=f"veza-bench-{size}-") as tmp:
            root = Path(tmp)
            write_synthetic(root, size)
            if size <= 1000:
                drop_templates()
                cold, cold_rss, _ = run_cli(["lint", "--schema-dir", str(root)], 1)
                warm, warm_rss, _ = run_cli(["lint", "--schema-dir", str(root)], args.repeat)
                figures.append(Figure(f"synthetic {size}: lint verified, first run", size, cold, cold_rss))
                figures.append(Figure(f"synthetic {size}: lint verified, cached", size, warm, warm_rss))
            wall, rss, code = run_cli(["lint", "--offline", "--schema-dir", str(root)],
                                      1 if size >= 5000 else args.repeat)
            if size >= 5000:
                figures.extend(cold_and_warm(root, size, args.repeat))
            load, lint_time, peak, tables, errors = in_process(root, 1 if size >= 5000 else args.repeat,
                                                                args.repeat)
            target = "; target < 5 s, < 80 MB" if size >= 10000 else ""
            figures.append(Figure(f"synthetic {size}: lint --offline (CLI)", tables, wall, rss,
                                  f"exit {code}, {errors} errors{target}"))
            figures.append(Figure(f"synthetic {size}: load (in process)", tables, load, 0.0))
            figures.append(Figure(f"synthetic {size}: lint (in process)", tables, lint_time, peak,
                                  "peak = tracemalloc"))
            per_table.append((tables, lint_time))

    print(f"{'measure':<42} {'tables':>7} {'wall s':>8} {'peak MiB':>9}  note")
    print("-" * 100)
    for f in figures:
        peak_text = f"{f.peak_mib:9.1f}" if f.peak_mib else f"{'':>9}"
        print(f"{f.label:<42} {f.tables:>7} {f.seconds:8.3f} {peak_text}  {f.note}")
    if len(per_table) >= 2:
        print()
        print("lint time per table (in process): " + ", ".join(
            f"{n} tables: {t / n * 1e6:.0f} us" for n, t in per_table))
        (n1, t1), (n2, t2) = per_table[0], per_table[-1]
        print(f"growth {n1} -> {n2} tables: x{n2 / n1:.1f} tables, x{t2 / t1:.1f} lint time "
              f"({'linear' if t2 / t1 < 1.5 * n2 / n1 else 'SUPERLINEAR'})")
    print("CLI peak MiB = max RSS of the subprocess (wait4); in-process peak = lint's own allocations (tracemalloc).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
