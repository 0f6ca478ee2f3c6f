"""Is a column type change lossless? One answer shared by ``check`` and the ``apply`` data-loss guard.

Why a closed list: PostgreSQL casts almost anything to anything (``USING col::type``), and an
explicit cast to ``varchar(n)`` silently truncates; only changes known to keep every value
exactly are "widening", everything else is "narrowing" (same family, smaller) or
"incompatible" (another family), both forbidden by the seed. Types are compared in the
model's ``format_type`` spelling (:func:`veza_schema.types.normalize_type`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TypeChangeKind = Literal["same", "widening", "narrowing", "incompatible"]

_TYPE = re.compile(
    r"^(?P<base>[a-z_][a-z0-9_ ]*?)(?:\((?P<mods>\d+(?:,\d+)?)\))?(?P<tz> with(?:out)? time zone)?$"
)
_INTEGER_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
_INTEGER_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_TEXTUAL = ("character varying", "text", "character")
# Catalog-only (no rewrite) in PostgreSQL: binary-coercible, or a longer/removed length limit.
_NO_REWRITE_NOTE = "catalog-only, no table rewrite"
_REWRITE_NOTE = "rewrites the table under ACCESS EXCLUSIVE"


@dataclass(frozen=True, slots=True)
class TypeChange:
    kind: TypeChangeKind
    note: str  # why, in a few words: "a shorter length limit: the cast truncates longer values silently"


@dataclass(frozen=True, slots=True)
class _Parsed:
    base: str
    mods: tuple[int, ...]
    array: bool


def _parse(text: str) -> _Parsed | None:
    cleaned = " ".join(text.strip().lower().split())
    array = cleaned.endswith("[]")
    cleaned = cleaned.removesuffix("[]").strip()
    match = _TYPE.match(cleaned)
    if not match:
        return None
    base = match.group("base").strip() + (match.group("tz") or "")
    mods = tuple(int(m) for m in match.group("mods").split(",")) if match.group("mods") else ()
    return _Parsed(base, mods, array)


def classify_type_change(before: str, after: str) -> TypeChange:
    """Compare two canonical type spellings.

    Example:
        >>> classify_type_change("character varying(50)", "character varying(100)").kind
        'widening'
        >>> classify_type_change("bigint", "integer").kind
        'narrowing'
        >>> classify_type_change("text", "integer").kind
        'incompatible'
    """
    if before == after:
        return TypeChange("same", "unchanged")
    old, new = _parse(before), _parse(after)
    if old is None or new is None:
        return TypeChange("incompatible", "not a type spelling the policy understands")
    if old.array != new.array:
        return TypeChange("incompatible", "array and scalar are different types")
    kind, note = _scalar(old, new)
    return TypeChange(kind, note)


def _scalar(old: _Parsed, new: _Parsed) -> tuple[TypeChangeKind, str]:
    if old.base in _TEXTUAL and new.base in _TEXTUAL:
        return _textual(old, new)
    if old.base in _INTEGER_RANK and new.base in _INTEGER_RANK:
        if _INTEGER_RANK[new.base] > _INTEGER_RANK[old.base]:
            return "widening", f"every value fits; {_REWRITE_NOTE}"
        return "narrowing", "values outside the smaller range make the migration fail or must be changed"
    if old.base in _INTEGER_DIGITS and new.base == "numeric":
        if not new.mods or new.mods[0] - (new.mods[1] if len(new.mods) > 1 else 0) >= _INTEGER_DIGITS[old.base]:
            return "widening", f"every value fits; {_REWRITE_NOTE}"
        return "narrowing", "the numeric precision cannot hold every integer value"
    if old.base == "numeric" and new.base == "numeric":
        return _numeric(old.mods, new.mods)
    if (old.base, new.base) in (("real", "double precision"), ("smallint", "real"),
                                ("smallint", "double precision"), ("integer", "double precision")):
        return "widening", f"every value is represented exactly; {_REWRITE_NOTE}"
    if old.base == new.base and old.base.startswith(("timestamp", "time", "interval", "bit varying")):
        if not new.mods or (old.mods and new.mods[0] >= old.mods[0]):
            return "widening", f"more precision or length; {_NO_REWRITE_NOTE}"
        return "narrowing", "less precision or length rounds or truncates values"
    if old.base == new.base:
        return "incompatible", "a different type modifier of a type the policy does not know"
    return "incompatible", "a different type family: values are converted, or the cast fails"


def _textual(old: _Parsed, new: _Parsed) -> tuple[TypeChangeKind, str]:
    """varchar(n) / varchar / text / char(n): longer or unlimited is lossless."""
    old_limit = old.mods[0] if old.mods else None
    new_limit = new.mods[0] if new.mods else None
    if new.base == "character" and old.base != "character":
        return "incompatible", "char(n) pads with spaces and truncates: values change"
    if new_limit is None:
        return "widening", f"no length limit any more; {_NO_REWRITE_NOTE}"
    if old_limit is not None and new_limit >= old_limit:
        return "widening", f"a longer length limit; {_NO_REWRITE_NOTE}"
    return "narrowing", "a shorter length limit: the cast truncates longer values silently"


def _numeric(old: tuple[int, ...], new: tuple[int, ...]) -> tuple[TypeChangeKind, str]:
    if not new:
        return "widening", f"unconstrained numeric holds every value; {_NO_REWRITE_NOTE}"
    if not old:
        return "narrowing", "a precision limit on an unconstrained numeric rounds or rejects values"
    old_scale = old[1] if len(old) > 1 else 0
    new_scale = new[1] if len(new) > 1 else 0
    if new_scale >= old_scale and new[0] - new_scale >= old[0] - old_scale:
        return "widening", f"more digits on both sides of the point; {_REWRITE_NOTE}"
    return "narrowing", "fewer digits: values are rounded or rejected"


def rewrites_rows(before: str, after: str) -> bool:
    """Whether ``ALTER COLUMN ... TYPE`` from ``before`` to ``after`` reads every row under ACCESS EXCLUSIVE
    (a rewrite, or a re-check of every value): everything except the changes known to be catalog-only."""
    verdict = classify_type_change(before, after)
    return verdict.kind != "same" and not verdict.note.endswith(_NO_REWRITE_NOTE)
