"""The project a command works on: its root, found like git finds a repository, and its settings.

Why: a command run from ``schema/`` or ``docs/`` must act on the same project as one run from
the root (the same YAML, the same migrations, the same embedded server), never on a second
``.veza`` it would create beside the caller. The root is the nearest directory, from the
working directory upwards, holding either a ``pyproject.toml`` with a ``[tool.veza-schema]``
table or both ``schema/`` and ``migrations/``. Without one, the embedded server is refused
(exit 2) rather than started in some unrelated folder.

Settings: ``[tool.veza-schema]`` in that ``pyproject.toml`` (every key in :data:`SETTINGS`;
paths relative to the root), each overridden by its ``VEZA_*`` environment variable (paths
relative to the working directory, like a flag); a flag overrides both, and the command's
built-in default applies when none is given. Only the data lives here; the command line maps
each setting to its option (``veza_schema.cli.config``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from veza_schema.errors import UsageError

PYPROJECT = "pyproject.toml"
TABLE = "veza-schema"
STATE_DIR = ".veza"
DEFAULT_RFC_PATTERN = r"^RFC-\d{4,}$"

Kind = Literal["path", "text", "pattern", "duration", "seconds", "count", "dsn", "format", "codes", "severities"]
SettingSource = Literal["environment", "settings"]

SEVERITIES = ("error", "warning")
# Rule families by name, for severity overrides (`naming = "error"` means every NAM rule).
FAMILY_PREFIXES: Mapping[str, str] = {"naming": "NAM", "immutable": "IMM", "integrity": "INT", "pitfalls": "PG",
                                      "waivers": "LNT"}
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class Setting:
    """One project setting: its key in ``[tool.veza-schema]`` (``lint.select`` is ``[tool.veza-schema.lint]``
    ``select``), its environment variable, the option it gives a default to, and on which commands
    (empty: every command that has the option)."""

    key: str
    kind: Kind
    env: str
    option: str
    help: str
    commands: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = (
    Setting("schema-dir", "path", "VEZA_SCHEMA_DIR", "--schema-dir", "directory of the module YAML files"),
    Setting("migrations-dir", "path", "VEZA_MIGRATIONS_DIR", "--migrations-dir", "directory of the migration files"),
    Setting("docs-dir", "path", "VEZA_DOCS_DIR", "--out", "directory of the generated schema pages", ("docs",)),
    Setting("rfc-pattern", "pattern", "VEZA_RFC_PATTERN", "--rfc-pattern",
            "regular expression every RFC reference must match"),
    Setting("lock-timeout", "duration", "VEZA_LOCK_TIMEOUT", "--lock-timeout",
            "SET lock_timeout written at the top of each generated file", ("generate",)),
    Setting("statement-timeout", "duration", "VEZA_STATEMENT_TIMEOUT", "--statement-timeout",
            "SET statement_timeout written at the top of each generated file", ("generate",)),
    Setting("migration-lock-timeout", "seconds", "VEZA_MIGRATION_LOCK_TIMEOUT", "--lock-timeout",
            "seconds apply and rollback wait for the migration lock", ("apply", "rollback")),
    Setting("max-locks-per-file", "count", "VEZA_MAX_LOCKS_PER_FILE", "--max-locks-per-file",
            "lock-table slots one generated transactional file may hold (diff.locks)", ("generate",)),
    Setting("shadow-dsn", "dsn", "VEZA_SHADOW_DSN", "--shadow-dsn",
            "server for shadow databases: a DSN or docker://IMAGE[:TAG]"),
    Setting("format", "format", "VEZA_FORMAT", "--format",
            "default output format of every command that offers it (or a table: command = format)"),
    Setting("lint.select", "codes", "VEZA_LINT_SELECT", "--select", "lint only these rule codes or prefixes",
            ("lint",)),
    Setting("lint.ignore", "codes", "VEZA_LINT_IGNORE", "--ignore", "skip these rule codes or prefixes", ("lint",)),
    Setting("lint.severity", "severities", "VEZA_LINT_SEVERITY", "--severity",
            "severity per rule code, prefix or family name (error or warning)", ("lint",)),
)
SETTINGS_BY_KEY: Mapping[str, Setting] = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Value:
    """A setting's value as given, and where it came from (for ``veza-schema config``)."""

    value: Any
    source: SettingSource
    origin: str  # "VEZA_SCHEMA_DIR" or "/path/pyproject.toml"


@dataclass(frozen=True)
class Project:
    """The project root (None: there is none), how it was recognised, and the settings in force."""

    root: Path | None
    marker: str
    settings_file: Path | None = None
    values: Mapping[str, Value] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """``<root>/.veza``: the embedded server and caches, always under the root.

        Raises:
            UsageError: there is no project root (exit 2), so there is nowhere safe to keep state.
        """
        if self.root is None:
            raise UsageError(f"no veza-schema project here: {self.marker}. Run the command inside a project, or "
                             "give --dsn (and --shadow-dsn) so no embedded server is needed")
        return self.root / STATE_DIR

    def path(self, key: str) -> Path | None:
        """A path setting, resolved: environment values against the working directory, settings
        against the root; None when not set."""
        given = self.values.get(key)
        if given is None:
            return None
        path = Path(given.value)
        if given.source == "settings" and self.root is not None and not path.is_absolute():
            return self.root / path
        return path


def find_root(start: Path) -> tuple[Path, str] | None:
    """The nearest directory from ``start`` upwards that is a project root, and why it is one."""
    for directory in (start, *start.parents):
        pyproject = directory / PYPROJECT
        if pyproject.is_file() and _declares_table(pyproject):
            return directory, f"{pyproject} has [tool.{TABLE}]"
        if (directory / "schema").is_dir() and (directory / "migrations").is_dir():
            return directory, f"{directory} holds schema/ and migrations/"
    return None


def _declares_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    return f"[tool.{TABLE}" in text or f'[tool."{TABLE}"' in text


def discover(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Project:
    """The project around ``cwd`` (default: the working directory) with its settings in force.

    Raises:
        UsageError: an invalid ``[tool.veza-schema]`` table or ``VEZA_*`` value (exit 2), named.
    """
    start = (cwd or Path.cwd()).resolve()
    env = os.environ if environ is None else environ
    found = find_root(start)
    values: dict[str, Value] = {}
    settings_file = None
    if found is None:
        root, marker = None, (f"neither {start} nor a parent holds a {PYPROJECT} with [tool.{TABLE}] or both "
                              "schema/ and migrations/")
    else:
        root, marker = found
        pyproject = root / PYPROJECT
        if pyproject.is_file() and _declares_table(pyproject):
            settings_file = pyproject
            for key, value in _read_table(pyproject).items():
                values[key] = Value(value, "settings", str(pyproject))
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None:
            continue
        values[setting.key] = Value(_from_environment(setting, raw), "environment", setting.env)
    return Project(root, marker, settings_file, values)


def _read_table(pyproject: Path) -> dict[str, Any]:
    import tomllib

    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{pyproject}: {exc}") from exc
    table = document.get("tool", {}).get(TABLE, {})
    if not isinstance(table, dict):
        raise UsageError(f"{pyproject}: [tool.{TABLE}] must be a table")
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict) and key != "format":
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[key] = value
    for key, value in flat.items():
        setting = SETTINGS_BY_KEY.get(key)
        if setting is None:
            close = difflib.get_close_matches(key, SETTINGS_BY_KEY, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(SETTINGS_BY_KEY)})"
            raise UsageError(f"{pyproject}: [tool.{TABLE}] has no setting {key!r}{hint}")
        flat[key] = _checked(setting, value, f"{pyproject}: [tool.{TABLE}] {key}")
    return flat


def _from_environment(setting: Setting, raw: str) -> Any:
    where = f"environment variable {setting.env}"
    if not raw.strip():
        raise UsageError(f"{where} is set but empty: unset it or give a value")
    value: Any = raw
    if setting.kind == "codes":
        value = [code.strip() for code in raw.split(",") if code.strip()]
    elif setting.kind == "severities":
        value = dict(_pair(item, where) for item in raw.split(",") if item.strip())
    elif setting.kind == "count":
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"{where}: {raw!r} is not a whole number") from None
    elif setting.kind == "seconds":
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"{where}: {raw!r} is not a number of seconds") from None
    return _checked(setting, value, where)


def _pair(item: str, where: str) -> tuple[str, str]:
    code, sep, level = item.partition("=")
    if not sep:
        raise UsageError(f"{where}: {item.strip()!r} is not CODE=error or CODE=warning")
    return code.strip(), level.strip()


def _checked(setting: Setting, value: Any, where: str) -> Any:
    """``value`` if it has the setting's shape, else a :class:`UsageError` naming ``where``."""
    kind = setting.kind
    if kind in ("path", "text", "pattern", "duration", "dsn"):
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}: expected a non-empty string, got {value!r}")
        if kind == "pattern":
            try:
                re.compile(value)
            except re.error as exc:
                raise UsageError(f"{where}: {value!r} is not a regular expression ({exc})") from None
        if kind == "duration" and not _DURATION.match(value.strip()):
            raise UsageError(f"{where}: {value!r} is not a PostgreSQL duration such as 5s, 500ms or 15min")
        return value
    if kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UsageError(f"{where}: expected a number of seconds >= 0, got {value!r}")
        return float(value)
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{where}: expected a whole number >= 1, got {value!r}")
        return value
    if kind == "format":
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
        raise UsageError(f"{where}: expected a format name or a table of command = format, got {value!r}")
    if kind == "codes":
        if not isinstance(value, list) or not all(isinstance(code, str) and code.strip() for code in value):
            raise UsageError(f"{where}: expected a list of rule codes or prefixes, got {value!r}")
        return [code.strip().upper() for code in value]
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a table of rule code, prefix or family = severity, got {value!r}")
    severities: dict[str, str] = {}
    for code, level in value.items():
        if level not in SEVERITIES:
            raise UsageError(f"{where}: {code} = {level!r}: the severity is error or warning")
        severities[FAMILY_PREFIXES.get(str(code).lower(), str(code).upper())] = level
    return severities


def project_relative(path: Path, project: Project | None = None) -> str:
    """``path`` as written relative to the project root when it lies under it (stable text for files
    such as migration headers, whatever directory the command ran from), else as given."""
    root = (project or discover()).root
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix().rstrip("/")
