"""``schema/`` as committed at a git ref, loaded with positions that point at the repository's paths.

Why read each file with ``git show REF:path`` into a temporary directory: the loader reads
files, and the ref's own blobs keep the base exactly what was committed, independent of the
working tree and of ``export-ignore`` attributes. Positions inside the extracted copy are
mapped back, so a column dropped since the ref is reported at ``schema/accounts.yaml:12:7``
(the line it had there). ``check --base``, ``generate`` (earlier deprecations) and
``diff --from/--to`` all read refs through here.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from veza_schema.errors import UsageError
from veza_schema.model import Schema, SourcePos
from veza_schema.yaml import load_cache
from veza_schema.yaml.loader import display_path, load_schema

Relocate = Callable[[SourcePos | None], SourcePos | None]


@dataclass(frozen=True)
class SchemaAtRef:
    """A model read from a ref, how to name it, and how to show its positions."""

    schema: Schema
    label: str
    relocate: Relocate = field(default=lambda pos: pos)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except OSError as exc:
        raise UsageError(f"git is needed to read refs: {exc}") from exc


def _out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8", errors="replace").strip()


def _git_dir(schema_dir: Path) -> Path:
    """A directory inside the repository: the schema directory, or the working directory."""
    return schema_dir if schema_dir.is_dir() else Path.cwd()


def is_commit(ref: str, schema_dir: Path) -> bool:
    return _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], _git_dir(schema_dir)).returncode == 0


def default_ref(schema_dir: Path) -> tuple[str, str]:
    """(commit, label): the merge base with ``origin/main`` if it exists, else ``HEAD``.

    Raises:
        UsageError: not inside a git repository, or no commit yet.
    """
    cwd = _git_dir(schema_dir)
    if _git(["rev-parse", "--verify", "--quiet", "origin/main^{commit}"], cwd).returncode == 0:
        merge_base = _git(["merge-base", "HEAD", "origin/main"], cwd)
        if merge_base.returncode != 0 or not _out(merge_base):
            # Falling back to HEAD here would compare the branch with itself: a silent pass.
            raise UsageError("origin/main exists but has no merge base with HEAD (a shallow clone?): fetch the "
                             "history (fetch-depth: 0) or pass --base REF")
        commit = _out(merge_base)
        return commit, f"merge base with origin/main ({commit[:12]})"
    head = _git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd)
    if head.returncode != 0:
        raise UsageError("no --base given and no git history to take one from (not a git repository, or no "
                         "commit yet): pass --base REF, --base DIRECTORY or --base migrations")
    commit = _out(head)
    return commit, f"HEAD ({commit[:12]})"


def load_at_ref(ref: str, schema_dir: Path, label: str | None = None) -> SchemaAtRef:
    """The schema directory as committed at ``ref`` (an empty model when it had none).

    Raises:
        UsageError: ``ref`` is not a commit of the repository, or the directory is outside it.
        SchemaLoadError: the ref's YAML does not load.
    """
    cwd = _git_dir(schema_dir)
    resolved = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    if resolved.returncode != 0:
        raise UsageError(f"{ref!r}: not a directory, and not a git commit of this repository")
    commit = _out(resolved)
    label = label or f"{ref} ({commit[:12]})"
    top = Path(_out(_git(["rev-parse", "--show-toplevel"], cwd)))
    try:
        relative = schema_dir.resolve().relative_to(top.resolve()).as_posix()
    except ValueError as exc:
        raise UsageError(f"schema directory {schema_dir} is outside the git repository {top}") from exc
    listing = _git(["ls-tree", "-r", "-z", "--name-only", commit, "--", relative], top)
    prefix = "" if relative == "." else relative + "/"
    names = [n for n in listing.stdout.decode("utf-8", errors="replace").split("\0")
             if n.endswith((".yaml", ".yml")) and n.startswith(prefix) and "/" not in n[len(prefix):]]
    if not names:
        return SchemaAtRef(Schema(), f"{label}: no schema files there (an empty schema)")
    with tempfile.TemporaryDirectory(prefix="veza-ref-") as tmp:
        extracted = Path(tmp).resolve() / "schema"
        extracted.mkdir()
        for name in names:
            blob = _git(["show", f"{commit}:{name}"], top)
            if blob.returncode != 0:
                raise UsageError(f"{ref}: cannot read {name}: {blob.stderr.decode(errors='replace').strip()}")
            (extracted / Path(name).name).write_bytes(blob.stdout)
        with load_cache.suspended():  # a temporary path: its entries would never be read again
            schema = load_schema(extracted)
    return SchemaAtRef(schema, label, _relocator(extracted, schema_dir))


def _relocator(extracted: Path, schema_dir: Path) -> Relocate:
    """Map positions in the extracted copy to the schema directory as the loader shows it."""
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


def load_version(ref: str, schema_dir: Path) -> Schema:
    """The model of ``schema_dir`` at ``ref``: a directory of YAML, or a git ref (empty when absent there)."""
    as_path = Path(ref)
    if as_path.is_dir():
        return load_schema(as_path) if any(as_path.glob("*.y*ml")) else Schema()
    return load_at_ref(ref, schema_dir).schema
