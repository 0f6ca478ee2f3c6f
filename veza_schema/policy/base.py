"""The base a change set is judged against: a git ref, a directory, or the applied migrations.

Why extract a git ref's YAML into a temporary directory: the loader reads files, and reading
the ref's own files (``git show REF:path``) keeps the base exactly what was committed, with
no dependence on the working tree or on ``export-ignore`` attributes. Positions inside the
extracted copy are mapped back to the repository's paths, so a dropped column is reported
at ``schema/accounts.yaml:12:7`` (the line it had in the base).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from veza_schema.errors import UsageError
from veza_schema.model import Schema, SourcePos

MIGRATIONS_BASE = "migrations"


@dataclass(frozen=True)
class Base:
    """A base model, how to name it, and how to show its positions."""

    schema: Schema
    label: str
    relocate: Callable[[SourcePos | None], SourcePos | None] = field(default=lambda pos: pos)
    # Earlier states consulted for deprecations besides the base's own.
    prior: tuple[Schema, ...] = ()


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _git_dir(schema_dir: Path) -> Path:
    """A directory inside the repository: the schema directory, or the working directory."""
    return schema_dir if schema_dir.is_dir() else Path.cwd()


def default_ref(schema_dir: Path) -> tuple[str, str]:
    """(commit, label): the merge base with ``origin/main`` if it exists, else ``HEAD``.

    Raises:
        UsageError: not inside a git repository, or no commit yet.
    """
    cwd = _git_dir(schema_dir)
    if _git(["rev-parse", "--verify", "--quiet", "origin/main^{commit}"], cwd).returncode == 0:
        merge_base = _git(["merge-base", "HEAD", "origin/main"], cwd)
        if merge_base.returncode != 0 or not merge_base.stdout.strip():
            # Falling back to HEAD here would compare the branch with itself: a silent pass.
            raise UsageError("origin/main exists but has no merge base with HEAD (a shallow clone?): fetch the "
                             "history (fetch-depth: 0) or pass --base REF")
        commit = merge_base.stdout.strip()
        return commit, f"merge base with origin/main ({commit[:12]})"
    head = _git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd)
    if head.returncode != 0:
        raise UsageError("no --base given and no git history to take one from (not a git repository, or no "
                         "commit yet): pass --base REF, --base DIRECTORY or --base migrations")
    commit = head.stdout.strip()
    return commit, f"HEAD ({commit[:12]})"


def load_at_ref(ref: str, schema_dir: Path, label: str | None = None) -> Base:
    """The schema directory as committed at ``ref``.

    Raises:
        UsageError: ``ref`` is not a commit of the repository.
        SchemaLoadError: the base's YAML does not load.
    """
    from veza_schema.yaml.loader import load_schema

    cwd = _git_dir(schema_dir)
    resolved = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    if resolved.returncode != 0:
        raise UsageError(f"--base {ref}: not a directory, not 'migrations', and not a git commit of this repository")
    commit = resolved.stdout.strip()
    label = label or f"{ref} ({commit[:12]})"
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd).stdout.strip())
    try:
        relative = schema_dir.resolve().relative_to(top.resolve()).as_posix()
    except ValueError as exc:
        raise UsageError(f"--schema-dir {schema_dir} is outside the git repository {top}") from exc
    listing = _git(["ls-tree", "-r", "-z", "--name-only", commit, "--", relative], top)
    prefix = "" if relative == "." else relative + "/"
    names = [n for n in listing.stdout.split("\0") if n.endswith((".yaml", ".yml"))
             and n.startswith(prefix) and "/" not in n[len(prefix):]]
    if not names:
        return Base(Schema(), f"{label}: no schema files there (an empty base)")
    with tempfile.TemporaryDirectory(prefix="veza-base-") as tmp:
        extracted = Path(tmp).resolve() / "schema"
        extracted.mkdir()
        for name in names:
            blob = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=top, capture_output=True, check=False)
            if blob.returncode != 0:
                raise UsageError(f"--base {ref}: cannot read {name}: {blob.stderr.decode(errors='replace').strip()}")
            (extracted / Path(name).name).write_bytes(blob.stdout)
        schema = load_schema(extracted)
    return Base(schema, label, _relocator(extracted, schema_dir))


def _relocator(extracted: Path, schema_dir: Path) -> Callable[[SourcePos | None], SourcePos | None]:
    """Map positions in the extracted copy to the schema directory as the loader shows it."""
    from veza_schema.yaml.loader import display_path

    shown = display_path(schema_dir)

    def relocate(pos: SourcePos | None) -> SourcePos | None:
        if pos is None:
            return None
        path = Path(pos.file)
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            rest = absolute.resolve().relative_to(extracted)
        except ValueError:
            return pos
        return replace(pos, file=(Path(shown) / rest).as_posix())

    return relocate


def prior_from_git(schema_dir: Path) -> tuple[Schema, ...]:
    """The default git base's model, for deprecations; empty when there is none or it does not load."""
    from veza_schema.errors import VezaSchemaError

    try:
        commit, label = default_ref(schema_dir)
        return (load_at_ref(commit, schema_dir, label).schema,)
    except (VezaSchemaError, OSError):
        return ()


def resolve_base(spec: str | None, schema_dir: Path, migrations_dir: Path) -> Base:
    """``--base``: ``migrations``, a directory, a git ref; default the merge base with origin/main, else HEAD.

    Raises:
        UsageError: an unusable base (exit 2).
        SchemaLoadError: the base's YAML does not load (exit 2).
    """
    from veza_schema.yaml.loader import load_schema

    if spec is None:
        commit, label = default_ref(schema_dir)
        return load_at_ref(commit, schema_dir, label)
    if spec == MIGRATIONS_BASE:
        from veza_schema.migrations.generate import SNAPSHOT_FILE, read_snapshot

        snapshot = read_snapshot(migrations_dir)
        if snapshot is None:
            raise UsageError(f"--base migrations: {migrations_dir / SNAPSHOT_FILE} not found (no migration "
                             "generated yet?)")
        return Base(snapshot, f"the applied migrations ({migrations_dir / SNAPSHOT_FILE})",
                    prior=prior_from_git(schema_dir))
    if Path(spec).is_dir():
        return Base(load_schema(Path(spec)), f"directory {spec}")
    return load_at_ref(spec, schema_dir)
