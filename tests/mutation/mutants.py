"""The mutants: realistic bugs in the modules issue 18 names, each with the tests that must kill it.

A mutant replaces one exact fragment of one file (it must occur exactly once). ``tests``
are pytest arguments (files or node ids) run with ``-x`` in a copy of the checkout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]
    why: str  # the bug it stands for


RUNNER = "veza_schema/migrations/runner.py"
SUMFILE = "veza_schema/migrations/sumfile.py"

ATOMICITY = "tests/test_atomicity.py"

LOCK = "veza_schema/migrations/lock.py"
HISTORY = "veza_schema/migrations/history.py"
DIFFER = "veza_schema/diff/differ.py"
PLAN = "veza_schema/diff/plan.py"
TYPECHANGE = "veza_schema/diff/typechange.py"
LOADER = "veza_schema/yaml/loader.py"
CLASSIFY = "veza_schema/policy/classify.py"
POLICY = "veza_schema/policy/__init__.py"
TEXT = "veza_schema/sql/text.py"
PARSE = "veza_schema/sql/parse.py"

RUNNER_TESTS = ("tests/test_runner.py", ATOMICITY, "tests/test_cli_apply.py")
LOCK_TESTS = ("tests/test_proofs_lock.py", "tests/test_runner.py")
DIFF_TESTS = ("tests/test_differ.py", "tests/test_plan.py", "tests/test_migration_proofs.py",
              "tests/test_properties_schema.py")
PLAN_TESTS = ("tests/test_plan.py", "tests/test_migration_proofs.py", "tests/test_properties_locks.py",
              "tests/test_properties_schema.py")
LOADER_TESTS = ("tests/test_loader_defaults.py", "tests/test_loader_nullability.py", "tests/test_cli_errors.py",
                "tests/test_cli_apply.py", "tests/test_properties_schema.py")
POLICY_TESTS = ("tests/test_policy.py",)
TEXT_TESTS = ("tests/test_render.py", "tests/test_cli_apply.py", "tests/test_properties_schema.py")


def m(id: str, path: str, before: str, after: str, tests: tuple[str, ...], why: str) -> Mutant:
    return Mutant(id, path, before, after, tests, why)


MUTANTS: list[Mutant] = [
    # -- the three weak spots issue 18 names: each killed by one named test -------------------------------
    m("history_outside_transaction", RUNNER,
      """            elapsed = int((time.monotonic() - started) * 1e9)
            if step.direction == "up":
                history.record(conn, migration.version, migration.description, migration.checksum, True, elapsed)
            else:
                history.forget(conn, migration.version)
            held.require(""",
      """        elapsed = int((time.monotonic() - started) * 1e9)
        if step.direction == "up":
            history.record(conn, migration.version, migration.description, migration.checksum, True, elapsed)
        else:
            history.forget(conn, migration.version)
        held.require(""",
      (f"{ATOMICITY}::test_history_row_failing_rolls_back_the_files_ddl_on_apply",
       f"{ATOMICITY}::test_history_row_failing_rolls_back_the_down_files_ddl_on_rollback"),
      "the history row written after the file's transaction instead of inside it"),
    m("snapshot_not_in_sum", SUMFILE, '_COVERED_SUFFIXES = (".sql", ".json")', '_COVERED_SUFFIXES = (".sql",)',
      (f"{ATOMICITY}::test_hand_edited_snapshot_is_refused_by_apply_generate_lint_and_status",),
      "veza.snapshot.json left out of veza.sum: a hand edit goes unnoticed"),
    m("rollback_oldest_first", RUNNER, "    for state in reversed(chosen):", "    for state in chosen:",
      (f"{ATOMICITY}::test_rollback_of_several_dependent_files_runs_newest_first",),
      "down files run oldest first"),

    # -- runner ------------------------------------------------------------------------------------------
    m("failed_row_counts_as_applied", RUNNER, "        elif not row.success:", "        elif row.success is None:",
      RUNNER_TESTS, "a row left failed by a crash is taken for applied"),
    m("out_of_order_inverted", RUNNER, '"out_of_order" if file.version < newest_applied else "pending"',
      '"out_of_order" if file.version > newest_applied else "pending"', RUNNER_TESTS,
      "new versions reported out of order, old ones applied silently"),
    m("checksum_length_only", RUNNER, "        elif row.checksum != file.checksum:",
      "        elif len(row.checksum) != len(file.checksum):", RUNNER_TESTS,
      "an edited applied file goes unnoticed (only the digest length compared)"),
    m("failed_not_refused", RUNNER, '        if state.state == "failed":\n            raise DatabaseStateError(',
      '        if state.state == "dirty":\n            raise DatabaseStateError(', RUNNER_TESTS,
      "apply runs on over a migration a crash left half done"),
    m("missing_not_refused", RUNNER, '        if state.state == "missing":', '        if state.state == "gone":',
      RUNNER_TESTS, "apply runs although an applied file is gone"),
    m("apply_to_exclusive", RUNNER, "        todo = [s for s in todo if s.version <= to]",
      "        todo = [s for s in todo if s.version < to]", RUNNER_TESTS, "--to V stops before V"),
    m("marker_says_success", RUNNER,
      "history.record(conn, migration.version, migration.description, migration.checksum, False, 0)",
      "history.record(conn, migration.version, migration.description, migration.checksum, True, 0)",
      RUNNER_TESTS + ("tests/test_crash_boundaries.py",),
      "a no-transaction file is recorded as applied before it runs: a crash leaves a lie"),
    m("no_marker_before_down", RUNNER, "        history.mark_failed(conn, migration.version)\n", "        pass\n",
      RUNNER_TESTS, "a no-transaction down file runs without a marker"),
    m("data_loss_guard_inverted", RUNNER, "    if not options.allow_data_loss and steps:",
      "    if options.allow_data_loss and steps:", ("tests/test_policy.py",), "the data-loss guard never runs"),
    m("resolve_applied_forgets", RUNNER, "                history.mark_resolved(conn, version, checksum)",
      "                history.forget(conn, version)", RUNNER_TESTS, "resolve --applied forgets the migration"),
    m("baseline_excludes_version", RUNNER, "        chosen = [f for f in files if f.version <= version]",
      "        chosen = [f for f in files if f.version < version]", RUNNER_TESTS,
      "baseline --version V leaves V unrecorded"),
    m("rollback_default_two", RUNNER,
      "        chosen = [state for group in change_groups(applied)[-(steps or 1):] for state in group]",
      "        chosen = [state for group in change_groups(applied)[-(steps or 2):] for state in group]",
      RUNNER_TESTS + ("tests/test_workflow.py",), "rollback without --steps undoes two changes"),
    m("rollback_by_file_default_two", RUNNER, "        chosen = applied[-(steps or 1):] if applied else []",
      "        chosen = applied[-(steps or 2):] if applied else []", RUNNER_TESTS + ("tests/test_workflow.py",),
      "rollback --by-file without --steps undoes two files"),
    m("retry_one_short", RUNNER, "            if attempt > options.retries:",
      "            if attempt >= options.retries:",
      RUNNER_TESTS + ("tests/test_proofs_retries.py",), "one retry fewer than configured"),

    # -- lock --------------------------------------------------------------------------------------------
    m("lock_key_not_sqlx", LOCK, "    return 0x3D32AD9E * zlib.crc32(database.encode(\"utf-8\"))",
      "    return 0x3D32AD9E + zlib.crc32(database.encode(\"utf-8\"))", LOCK_TESTS,
      "a lock key SQLx does not share: a Rust service migrating at the same time is not excluded"),
    m("lock_holder_not_named", LOCK, "            raise LockTimeout(timeout, lock_holder(conn, key))",
      "            raise LockTimeout(timeout, None)", LOCK_TESTS, "the timeout message cannot name the holder"),
    m("lock_holder_wrong_subid", LOCK, "AND l.objsubid = 1 AND l.database = (\n      SELECT oid FROM pg_database",
      "AND l.objsubid = 2 AND l.database = (\n      SELECT oid FROM pg_database", LOCK_TESTS,
      "the holder query never matches a bigint advisory lock"),
    m("lock_holder_wrong_split", LOCK, "return unsigned >> 32, unsigned & 0xFFFFFFFF",
      "return unsigned >> 31, unsigned & 0xFFFFFFFF", LOCK_TESTS,
      "the holder query (and the check that the lock is still ours) looks for another key"),
    m("lock_loss_not_checked", RUNNER,
      '            held.require(conn, f"nothing of {migration.label} was applied (its transaction was rolled back)")\n',
      "", ("tests/test_unexpected_states.py::test_a_migration_lock_lost_mid_file_rolls_the_file_back_and_says_so",),
      "a file commits after the lock's session ended: another apply may be running alongside"),
    m("lock_not_waited_for", LOCK, "        if row and row[0]:\n            break",
      "        if True:\n            break", LOCK_TESTS, "the lock is never actually held: two applies interleave"),

    # -- history -----------------------------------------------------------------------------------------
    m("history_no_primary_key", HISTORY, "    version BIGINT PRIMARY KEY,", "    version BIGINT,",
      ("tests/test_proofs_history.py",), "the history table is not SQLx's (no primary key)"),
    m("history_time_in_ms", HISTORY,
      "    conn.execute(_INSERT, (version, description, success, checksum, execution_time_ns))",
      "    conn.execute(_INSERT, (version, description, success, checksum, execution_time_ns // 1_000_000))",
      ("tests/test_proofs_history.py",), "execution_time stored in ms where SQLx stores ns"),
    m("mark_done_keeps_failed", HISTORY,
      '_MARK_DONE = "UPDATE public._sqlx_migrations SET success = true, execution_time = %s WHERE version = %s"',
      '_MARK_DONE = "UPDATE public._sqlx_migrations SET execution_time = %s WHERE version = %s"', RUNNER_TESTS,
      "a finished no-transaction file stays marked failed"),
    m("mark_resolved_keeps_checksum", HISTORY,
      '_MARK_RESOLVED = "UPDATE public._sqlx_migrations SET success = true, checksum = %s WHERE version = %s"',
      '_MARK_RESOLVED = "UPDATE public._sqlx_migrations SET success = true WHERE version = %s AND %s IS NOT NULL"',
      RUNNER_TESTS, "resolve --applied keeps a stale checksum"),
    m("history_description_underscored", "veza_schema/migrations/files.py",
      '        return self.name.replace("_", " ")', "        return self.name", ("tests/test_cli_apply.py",),
      "the description is not SQLx's (underscores kept)"),

    # -- differ ------------------------------------------------------------------------------------------
    m("differ_ignores_nullability", DIFFER, "    if before.nullable != after.nullable:",
      "    if before.nullable != after.nullable and after.nullable:", DIFF_TESTS, "SET NOT NULL is never planned"),
    m("differ_ignores_default", DIFFER, "    if normalize_sql(before.default) != normalize_sql(after.default):",
      "    if before.default is None and after.default is not None:", DIFF_TESTS,
      "a changed or removed default is not planned"),
    m("differ_modified_index_kept", DIFFER, "            changes += [drop(before[name]), add(after[name])]",
      "            pass", DIFF_TESTS, "a redefined index, check or key keeps its old definition"),
    m("differ_enum_append_only", DIFFER, "            if extends(after.values, before.values):",
      "            if after.values[: len(before.values)] == before.values:", DIFF_TESTS,
      "a value inserted in the middle of an enum rebuilds the type (rewrites tables)"),
    m("differ_pk_change_ignored", DIFFER, "    if before == after:\n        return []\n    changes: list[Change] = []\n"
      "    if before is not None:",
      "    if before is None or after is None or before.columns == after.columns:\n        return []\n"
      "    changes: list[Change] = []\n    if before is not None:", DIFF_TESTS,
      "adding or dropping a primary key is not planned"),
    m("differ_comment_ignored", DIFFER,
      "    return [] if before == after else [SetComment(target, before, after, meta=meta)]",
      "    return [] if before == after or after is None else [SetComment(target, before, after, meta=meta)]",
      DIFF_TESTS, "a removed comment stays"),
    m("differ_partitioning_ignored", DIFFER,
      "    if before.partition != after.partition or _premake(before) != _premake(after):",
      "    if before.partition is None and after.partition is not None:", DIFF_TESTS,
      "partitioning and premake changes are not planned"),

    # -- planner -----------------------------------------------------------------------------------------
    m("plan_check_validated_inline", PLAN,
      "            return [main([render.add_constraint(table, render.check_clause(ck, not_valid=True))],",
      "            return [main([render.add_constraint(table, render.check_clause(ck, not_valid=False))],",
      PLAN_TESTS, "a CHECK on an existing table validated under ACCESS EXCLUSIVE"),
    m("plan_fk_validated_inline", PLAN,
      "            return [main([render.add_constraint(table, render.foreign_key_clause(fk, not_valid=True))],",
      "            return [main([render.add_constraint(table, render.foreign_key_clause(fk, not_valid=False))],",
      PLAN_TESTS, "a foreign key on an existing table validated while writes wait"),
    m("plan_index_not_concurrent", PLAN,
      "render.create_index(index, True, if_not_exists=True)",
      "render.create_index(index, False, if_not_exists=True)",
      PLAN_TESTS, "CREATE INDEX without CONCURRENTLY on an existing table"),
    m("plan_set_not_null_direct", PLAN, "    if after.nullable or table in ctx.created:",
      "    if True:", PLAN_TESTS, "SET NOT NULL scans the table under ACCESS EXCLUSIVE"),
    m("plan_volatile_default_allowed", PLAN, "    elif is_volatile(column.default, ctx.desired):",
      "    elif False:", PLAN_TESTS, "ADD COLUMN with a volatile default rewrites the table"),
    # A file's down runs its changes newest first. (Within one change the steps are not reversed by a
    # mutant: the planner gives each change at most one step per file, so that order is not observable.)
    m("plan_down_not_reversed", PLAN, "        for steps in reversed(_grouped(self.steps)):",
      "        for steps in _grouped(self.steps):", PLAN_TESTS, "a down file undoes its changes front to back"),
    m("plan_enum_value_position", PLAN,
      "            statements.append(render.add_enum_value(change.after.name, value, after=wanted[i - 1]))",
      "            statements.append(render.add_enum_value(change.after.name, value))", PLAN_TESTS,
      "a new enum value lands at the end"),
    m("plan_rewriting_type_allowed", PLAN, "            if rewrites_rows(before.type, after.type):",
      "            if False:", PLAN_TESTS, "a type change that rewrites the table is planned in place"),
    m("typechange_int_catalog_only", TYPECHANGE, '            return "widening", f"every value fits; {_REWRITE_NOTE}"\n'
      '        return "narrowing", "values outside the smaller range',
      '            return "widening", f"every value fits; {_NO_REWRITE_NOTE}"\n'
      '        return "narrowing", "values outside the smaller range', PLAN_TESTS,
      "integer -> bigint taken for catalog-only"),
    m("plan_not_null_check_kept", PLAN,
      "              render.drop_constraint(table, check, if_exists=True)),\n"
      "             (render.add_constraint_if_missing(table, check, clause),",
      "              ),\n             (render.add_constraint_if_missing(table, check, clause),",
      PLAN_TESTS, "the temporary NOT NULL check stays after SET NOT NULL"),

    m("plan_validate_not_rerunnable", PLAN, "(render.validate_constraint_if_exists(table, check),",
      "(render.validate_constraint(table, check),", PLAN_TESTS + ("tests/test_crash_boundaries.py",),
      "a no-transaction SET NOT NULL file fails when recovery runs it again"),

    # -- loader ------------------------------------------------------------------------------------------
    m("loader_nullable_by_default", LOADER,
      '            flags[key] = bool(self.r.boolean(values[key], f"{key} of {what}")) if key in values else False',
      '            flags[key] = bool(self.r.boolean(values[key], f"{key} of {what}")) if key in values else '
      'key == "nullable"', LOADER_TESTS, "columns without `nullable` become nullable"),
    m("loader_short_form_nullable", LOADER,
      "            return Column(name, type_text, meta=Meta(self.r.pos(key_node))), False, False, None",
      "            return Column(name, type_text, nullable=True, meta=Meta(self.r.pos(key_node))), False, False, None",
      LOADER_TESTS, "a column in short form (`name: text`) is nullable"),
    m("loader_nullable_pk_accepted", LOADER, '        if flags["primary_key"] and flags["nullable"]:',
      '        if flags["primary_key"] and flags["nullable"] and False:', LOADER_TESTS,
      "a nullable primary key column is accepted"),
    m("loader_nulls_default_kept", LOADER,
      '        if (nulls == "last" and not descending) or (nulls == "first" and descending):',
      '        if nulls == "last" and not descending:', LOADER_TESTS,
      "DESC NULLS FIRST kept in the model though PostgreSQL drops it: a perpetual diff"),
    m("loader_premake_default", LOADER, "        premake = 3\n", "        premake = 2\n", LOADER_TESTS,
      "the documented premake default is not 3"),
    m("loader_where_not_stripped", LOADER,
      '            where = self.check(where.strip(), values["where"], "index", "where", f"where of {what}")',
      '            where = self.check(where, values["where"], "index", "where", f"where of {what}")', LOADER_TESTS,
      "a partial index's predicate keeps its whitespace"),

    # -- policy ------------------------------------------------------------------------------------------
    m("policy_narrowing_allowed", CLASSIFY, '    if verdict.kind in ("same", "widening"):',
      '    if verdict.kind in ("same", "widening", "narrowing"):', POLICY_TESTS, "a narrowing type change allowed"),
    m("policy_premake_shrink_maintenance", CLASSIFY, "    if after.premake < before.premake:",
      "    if after.premake < before.premake - 1:", POLICY_TESTS, "dropping one future partition needs no RFC"),
    m("policy_forbidden_not_refused", POLICY, "    if report.forbidden:\n        lines =",
      "    if report.forbidden and allow_forbidden:\n        lines =", POLICY_TESTS,
      "generate writes forbidden changes"),
    m("policy_allow_forbidden_without_rfc", POLICY, "    if allow_forbidden and rfc is None:",
      "    if allow_forbidden and rfc is None and False:", POLICY_TESTS,
      "--allow-forbidden accepted without an RFC"),
    m("policy_deprecation_ignored", CLASSIFY,
      "    deprecation = ctx.deprecation(change.table, change.column.name, change.column.meta)\n"
      "    if deprecation is not None:",
      "    deprecation = ctx.deprecation(change.table, change.column.name, change.column.meta)\n"
      "    if deprecation is None and False:", POLICY_TESTS, "a deprecated column still needs an RFC to drop"),

    # -- quoting -----------------------------------------------------------------------------------------
    m("quote_reserved_words_bare", TEXT, "    return not _SIMPLE.match(name) or name in RESERVED_KEYWORDS",
      "    return not _SIMPLE.match(name)", TEXT_TESTS, "reserved words (user, order) left unquoted"),
    m("quote_capitals_bare", TEXT, '_SIMPLE = re.compile(r"^[a-z_][a-z0-9_$]*$")',
      '_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")', TEXT_TESTS, "names with capitals left unquoted"),
    m("quote_by_hand", TEXT, "        return Sql(sql.Identifier(name).as_string(None))",
      "        return Sql(f'\"{name}\"')",
      TEXT_TESTS + ("tests/test_proofs_quoting.py",), "an identifier quoted by hand: an embedded quote is not doubled"),
    m("dollar_quote_fixed_tag", TEXT, '    while (body + f"${tag}$").find(f"${tag}$") != len(body):',
      "    while False:",
      TEXT_TESTS + ("tests/test_proofs_quoting.py",), "a function body containing $$ ends its own dollar quote"),
    m("literal_by_hand", TEXT, "    return Sql(sql.Literal(value).as_string(None))", "    return Sql(f\"'{value}'\")",
      TEXT_TESTS, "a literal quoted by hand: it's breaks out of the string"),
    m("wrapped_whole_first_group_only", PARSE, "            if depth == 0 and position != len(found) - 1:",
      "            if depth < 0:", TEXT_TESTS + ("tests/test_proofs_quoting.py",),
      "(a) + (b) read as one parenthesized value: a list or an operator loses its parentheses"),
]
