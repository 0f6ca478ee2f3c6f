"""Where to connect: ``--dsn``, else ``VEZA_DATABASE_URL``, ``DATABASE_URL``, libpq ``PG*``
variables, else the embedded default server (started on demand)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import psycopg
from psycopg import conninfo

from veza_schema.db.servers import EmbeddedServer
from veza_schema.errors import DatabaseError, UsageError

LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGSERVICEFILE")


@dataclass(frozen=True)
class Target:
    """A resolved connection target and where it came from (for messages)."""

    dsn: str
    source: str

    @property
    def display(self) -> str:
        return redact(self.dsn) if self.dsn else "(libpq environment)"


def resolve_dsn(option: str | None, start_embedded: bool = True) -> Target:
    """The target: ``option``, else the variables, else the embedded server of the project root.

    Raises:
        UsageError: an empty ``--dsn`` or DSN variable (exit 2): an empty value never silently
            means the embedded server.
    """
    if option is not None:
        _not_empty(option, "--dsn is empty: give a DSN, or leave the option out")
        return Target(_checked(option, "--dsn"), "--dsn")
    for variable in ("VEZA_DATABASE_URL", "DATABASE_URL"):
        value = os.environ.get(variable)
        if value is not None:
            _not_empty(value, f"{variable} is set but empty: give a DSN, or unset it")
            return Target(_checked(value, variable), variable)
    if any(os.environ.get(variable) for variable in LIBPQ_VARIABLES):
        return Target("", "PG* environment variables")
    if not start_embedded:
        raise UsageError("no database given: use --dsn, VEZA_DATABASE_URL, DATABASE_URL or PG* variables")
    server = EmbeddedServer()
    return Target(server.start(), f"embedded server ({server.data_dir})")


def _not_empty(value: str, message: str) -> None:
    if not value.strip():
        raise UsageError(message)


def _checked(dsn: str, source: str) -> str:
    reason = malformed_reason(dsn)
    if reason is not None:
        raise DatabaseError(f"malformed DSN in {source}: {reason} (not shown: it may hold a password)")
    return dsn


# -- secrets: one redaction for every form a DSN takes ------------------------------------------------
# libpq parameters whose value is a secret (a password file or key *path* is not).
SENSITIVE_PARAMETERS = frozenset({"password", "sslpassword"})
_MASK = "***"
_URI = re.compile(r"^(?P<scheme>postgres(?:ql)?://)(?P<rest>.*)$", re.DOTALL)
# A DSN quoted in a message ends before punctuation that follows it ("cannot connect to <dsn>: ...").
_URI_IN_TEXT = re.compile(r"postgres(?:ql)?://[^\s'\"<>]*[^\s'\"<>:,.;)]")
_KEY_VALUE_SECRET = re.compile(r"\b(?P<key>(?:ssl)?password)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'?|[^\s'\"]+)",
                               re.IGNORECASE)
_PARAMETER_NAME = re.compile(r"^[a-z_]{1,40}$")


def redact(dsn: str) -> str:
    """The DSN with every secret masked, in its own form (URI or key=value), for printing.

    Covers the password in a URI's user-info, ``password``/``sslpassword`` in its query string
    (percent-encoded names too) and in the key=value form. A DSN that does not parse is never
    shown: see :func:`malformed_reason`.
    """
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(malformed DSN)"
    match = _URI.match(dsn)
    if match:
        shown = match.group("scheme") + _redact_uri_rest(match.group("rest"))
    else:
        shown = conninfo.make_conninfo(**{k: (_MASK if k in SENSITIVE_PARAMETERS else str(v))
                                          for k, v in params.items() if v is not None})
    # A DSN redacted already holds the mask as its password: showing the mask again leaks nothing.
    secrets = [str(params[k]) for k in SENSITIVE_PARAMETERS if params.get(k) and params[k] != _MASK]
    if any(_leaks(shown, secret) for secret in secrets):  # an unusual spelling: show only what is safe
        shown = conninfo.make_conninfo(**{k: str(v) for k, v in params.items()
                                          if v is not None and k not in SENSITIVE_PARAMETERS})
    return shown


def _redact_uri_rest(rest: str) -> str:
    """``user:pw@host/db?password=x`` -> ``user:***@host/db?password=***`` (libpq's own split points)."""
    at, slash = rest.find("@"), rest.find("/")
    if at != -1 and (slash == -1 or at < slash):  # libpq reads credentials up to the first '@' before any '/'
        userinfo, rest = rest[:at], rest[at + 1:]
        user, colon, password = userinfo.partition(":")
        rest = f"{user}{':' + _MASK if colon and password else ''}@{rest}"
    elif at != -1 and (rest.find("?") == -1 or at < rest.find("?")) and ":" in rest[:at]:
        # libpq sees no password here (a '/' came first), but a person meant one: mask it all the same.
        user = rest[:rest.index(":")]
        rest = f"{user}:{_MASK}@{rest[rest.rindex('@', 0, rest.find('?') if '?' in rest else len(rest)) + 1:]}"
    base, question, query = rest.partition("?")
    if not question:
        return base
    parts = []
    for item in query.split("&"):
        key, equals, _ = item.partition("=")
        parts.append(f"{key}={_MASK}" if equals and unquote(key) in SENSITIVE_PARAMETERS else item)
    return f"{base}?{'&'.join(parts)}"


def _leaks(text: str, secret: str) -> bool:
    return secret in text or quote(secret, safe="") in text


def malformed_reason(dsn: str) -> str | None:
    """Which part of a DSN does not parse, in words that never quote it; None when it parses."""
    try:
        conninfo.conninfo_to_dict(dsn)
        return None
    except psycopg.ProgrammingError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    form = "URI" if _URI.match(dsn) else "key=value string"
    name = re.search(r'(?:invalid URI query parameter|invalid connection option) "([^"]*)"', message)
    if name and _PARAMETER_NAME.match(name.group(1)):
        return f"unknown parameter '{name.group(1)}' in the {form}"
    for pattern, reason in _MALFORMED:
        if pattern in message:
            return f"{reason} in the {form}"
    position = re.search(r"at position (\d+)", message)
    if position:
        return f"unexpected character at position {position.group(1)} of the {form}"
    return f"the {form} does not parse"


_MALFORMED = (
    ('matching "]" in IPv6 host address', "an IPv6 host address without its closing ']'"),
    ("IPv6 host address may not be empty", "an empty IPv6 host address"),
    ("missing key/value separator", "a query parameter without '='"),
    ("extra key/value separator", "a query parameter with two '='"),
    ("invalid URI query parameter", "an unknown query parameter"),
    ("invalid percent-encoded token", "an invalid %-escape"),
    ("forbidden value %00", "a %00 (NUL) escape"),
    ('missing "=" after', "a word without '='"),
    ("unterminated quoted string", "an unterminated quoted value"),
    ("invalid connection option", "an unknown parameter"),
)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Any text (a message, a traceback) with DSNs redacted and the given secrets masked wherever they appear."""
    text = _URI_IN_TEXT.sub(lambda m: redact(m.group()) if malformed_reason(m.group()) is None
                            else "(a DSN, not shown)", text)
    text = _KEY_VALUE_SECRET.sub(lambda m: f"{m.group('key')}={_MASK}", text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, _MASK).replace(quote(secret, safe=""), _MASK)
    return text


def secrets_from(values: Iterable[str]) -> set[str]:
    """The secrets (passwords) held by any of ``values`` that parses as a DSN, and by ``PGPASSWORD``."""
    found = {os.environ[name] for name in ("PGPASSWORD",) if os.environ.get(name)}
    for value in values:
        if value.startswith("--") and "=" in value:  # --dsn=postgresql://...
            value = value.split("=", 1)[1]
        if "=" not in value and "://" not in value:
            continue
        try:
            params = conninfo.conninfo_to_dict(value)
        except psycopg.ProgrammingError:
            found |= _secret_like_parts(value)
            continue
        found |= {str(params[k]) for k in SENSITIVE_PARAMETERS if params.get(k)}
    return found


def _secret_like_parts(value: str) -> set[str]:
    """From a DSN that does not parse, the parts that may be a password: a URI's user-info after ':',
    and whatever follows a password key."""
    found = set()
    match = _URI.match(value)
    if match:
        userinfo = match.group("rest").split("@", 1)[0] if "@" in match.group("rest") else ""
        if ":" in userinfo:
            found.add(userinfo.split(":", 1)[1])
    found |= {m.group("value").strip("'") for m in _KEY_VALUE_SECRET.finditer(value)}
    words = value.split()
    found |= {words[i + 1] for i, word in enumerate(words[:-1]) if word.lower() in SENSITIVE_PARAMETERS}
    return {s for s in found if s}


def connect(target: Target, *, autocommit: bool = False, application_name: str = "veza-schema"
            ) -> psycopg.Connection:
    """Open a connection; failures become one-line :class:`DatabaseError` (exit 3)."""
    try:
        return psycopg.connect(target.dsn, autocommit=autocommit, connect_timeout=10,
                               application_name=application_name)
    except psycopg.Error as exc:
        reason = redact_text(_first_line(str(exc)), secrets_from([target.dsn]))
        raise DatabaseError(f"cannot connect to {target.display}: {reason}") from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
