"""What a CHECK or an index predicate allows, as far as comparisons with constants tell.

Rules ask two questions of such expressions: can it ever be true (``a > 10 AND a < 5``,
``a BETWEEN 10 AND 5``, ``status = 'a' AND status = 'b'``), and can it ever be false
(``a IS NULL OR a IS NOT NULL``, ``a >= 0 OR a < 0``). Expressions are parsed by PostgreSQL's
grammar (:mod:`veza_schema.sql.parse`), put in disjunctive normal form over comparisons of one
column with constants, and each conjunction is checked for a value that satisfies it. Parts
that are not such comparisons (function calls, two columns) are left out: a conjunction whose
known parts already contradict each other is unsatisfiable whatever the rest says, so every
answer is sound, and "cannot tell" is the answer for everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import veza_schema.types
from veza_schema.sql.parse import SqlSyntaxError, ast, enums, expression_node, walk
from veza_schema.sql.parse_cache import on_disk
from veza_schema.types import TypeSyntaxError, normalize_type

# What the disk-cached answers below are worked out by (besides parse.py, which every key covers): an edit
# to either file re-answers, even in a checkout whose version did not change.
ANSWER_SOURCES = (Path(__file__), Path(veza_schema.types.__file__))

_MAX_TERMS = 64
_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATE = {"=": "<>", "<>": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<", "is null": "is not null",
           "is not null": "is null", "in": "not in", "not in": "in"}


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: its value, and its type when the text says (a cast, a number, a boolean)."""

    value: Decimal | str | bool
    type: str | None  # None: an untyped string literal, typed by its context


@dataclass(frozen=True, slots=True)
class Atom:
    """``column op constant(s)``; ``op`` is a comparison, ``in``/``not in`` or a null test."""

    column: str
    op: str
    values: tuple[Literal, ...] = ()

    def negated(self) -> Atom:
        return Atom(self.column, _NEGATE[self.op], self.values)


# A conjunction of atoms; None stands for FALSE (a constant false, or an empty IN list).
Term = tuple[Atom, ...] | None


def _column(node: Any) -> str | None:
    if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
        return str(node.fields[-1].sval)
    return None


def literal_of(node: Any) -> Literal | None:
    cast: str | None = None
    if isinstance(node, ast.TypeCast) and node.typeName is not None:
        names = [getattr(n, "sval", "") for n in node.typeName.names or ()]
        try:
            cast = normalize_type(names[-1]) if names and not node.typeName.typmods else None
        except TypeSyntaxError:
            cast = None
        if cast is None:
            return None
        node = node.arg
    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    value = node.val
    if isinstance(value, ast.Integer):
        return Literal(Decimal(value.ival), cast or "integer")
    if isinstance(value, ast.Float):
        try:
            return Literal(Decimal(value.fval), cast or "numeric")
        except InvalidOperation:
            return None
    if isinstance(value, ast.Boolean):
        return Literal(bool(value.boolval), cast or "boolean")
    if isinstance(value, ast.String):
        text = str(value.sval)
        if cast in ("integer", "bigint", "smallint", "numeric", "real", "double precision"):
            try:
                return Literal(Decimal(text.strip()), cast)
            except InvalidOperation:
                return Literal(text, cast)
        return Literal(text, cast)
    return None


def _atom(node: Any) -> Atom | None:
    """One comparison of a column with constants, or None."""
    if isinstance(node, ast.NullTest):
        column = _column(node.arg)
        if column is None:
            return None
        return Atom(column, "is null" if node.nulltesttype == enums.NullTestType.IS_NULL else "is not null")
    if not isinstance(node, ast.A_Expr):
        return None
    kind = node.kind.name if hasattr(node.kind, "name") else str(node.kind)
    operator = getattr(node.name[-1], "sval", "") if node.name else ""
    column = _column(node.lexpr)
    if kind == "AEXPR_OP":
        operator = "<>" if operator == "!=" else operator
        if operator not in _FLIP:
            return None
        if column is not None:
            value = literal_of(node.rexpr)
        else:
            column, value, operator = _column(node.rexpr), literal_of(node.lexpr), _FLIP[operator]
        if column is None or value is None:
            return None
        return Atom(column, operator, (value,))
    if column is None:
        return None
    if kind == "AEXPR_IN":
        values = tuple(literal_of(v) for v in node.rexpr or ())
        if any(v is None for v in values):
            return None
        return Atom(column, "in" if operator == "=" else "not in", values)  # type: ignore[arg-type]
    if kind in ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN") and node.rexpr and len(node.rexpr) == 2:
        low, high = literal_of(node.rexpr[0]), literal_of(node.rexpr[1])
        if low is None or high is None:
            return None
        return Atom(column, "between" if kind == "AEXPR_BETWEEN" else "not between", (low, high))
    return None


def _terms(node: Any, negate: bool = False) -> list[Term] | None:
    """Disjunctive normal form: a list of conjunctions; None when it grows too large.

    Parts that are not comparisons of a column with constants become the empty conjunction
    (no known constraint), which keeps every unsatisfiability found sound.
    """
    if isinstance(node, ast.BoolExpr):
        op = node.boolop.name if hasattr(node.boolop, "name") else str(node.boolop)
        if op == "NOT_EXPR":
            return _terms(node.args[0], not negate)
        parts = [_terms(arg, negate) for arg in node.args]
        if any(p is None for p in parts):
            return None
        conjunctive = (op == "AND_EXPR") != negate
        if not conjunctive:
            return [term for part in parts for term in part][:_MAX_TERMS + 1]  # type: ignore[union-attr]
        result: list[Term] = [()]
        for part in parts:
            result = [None if a is None or b is None else a + b for a in result for b in part]  # type: ignore[union-attr]
            if len(result) > _MAX_TERMS:
                return None
        return result
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Boolean):
        return [() if bool(node.val.boolval) != negate else None]
    atom = _atom(node)
    if atom is None:
        return [()]
    if atom.op in ("between", "not between"):
        low, high = atom.values
        if (atom.op == "between") != negate:
            return [(Atom(atom.column, ">=", (low,)), Atom(atom.column, "<=", (high,)))]
        return [(Atom(atom.column, "<", (low,)),), (Atom(atom.column, ">", (high,)),)]
    if atom.op == "in" and not atom.values:
        return [None] if not negate else [()]
    return [(atom.negated() if negate else atom,)]


@dataclass(slots=True)
class _Range:
    """What one column may be, as the atoms of one conjunction say.

    A bound is None when there is none (not an infinite float: comparing a Decimal with a float
    converts the float each time, the slowest step of lint on a big schema).
    """

    low: Decimal | None = None
    low_open: bool = False
    high: Decimal | None = None
    high_open: bool = False
    equal: set[object] | None = None  # the only values allowed
    unequal: set[object] = field(default_factory=set)
    null: bool | None = None  # True: must be NULL; False: must not be
    contradiction: bool = False
    mixed: bool = False  # equalities of different kinds of constants: not compared

    def empty(self) -> bool:
        if self.contradiction:
            return True
        if self.null is True and (self.equal is not None or self.low is not None or self.high is not None):
            return True
        if self.low is not None and self.high is not None and (
                self.low > self.high or (self.low == self.high and (self.low_open or self.high_open))):
            return True
        if self.equal is not None and not self.equal:
            return True
        if self.equal is not None:
            allowed = {v for v in self.equal if v not in self.unequal and self._in_range(v)}
            return not allowed
        return False

    def _in_range(self, value: object) -> bool:
        if not isinstance(value, Decimal):
            return True
        if self.low is not None and (value < self.low or (value == self.low and self.low_open)):
            return False
        return self.high is None or not (value > self.high or (value == self.high and self.high_open))


_EQUALITIES = frozenset({"=", "in", "<>", "not in"})


def _apply(state: _Range, atom: Atom) -> None:
    op = atom.op
    if op == "is null" or op == "is not null":
        must_be_null = op == "is null"
        if state.null is (not must_be_null):
            state.contradiction = True
        state.null = must_be_null
        return
    if state.null is True:  # a comparison is never true on NULL
        state.contradiction = True
        return
    if op not in _EQUALITIES:  # a bound: the common case, kept short
        if len(atom.values) == 1:
            value = atom.values[0].value
            if isinstance(value, Decimal) and not value.is_nan():  # NaN: see below
                low, high = state.low, state.high
                if op in (">", ">=") and (low is None or value > low or (value == low and op == ">")):
                    state.low, state.low_open = value, op == ">"
                elif op in ("<", "<=") and (high is None or value < high or (value == high and op == "<")):
                    state.high, state.high_open = value, op == "<"
        return
    values = [v.value for v in atom.values]
    if any(isinstance(v, Decimal) and v.is_nan() for v in values):
        return  # 'NaN'::numeric: PostgreSQL orders it above every number, Decimal refuses to compare it
    kinds = {type(v) for v in values} | {type(v) for v in (state.equal or ())} | {type(v) for v in state.unequal}
    if len(kinds) > 1:
        # An untyped '5' next to 5: PostgreSQL casts one to the other, lint does not guess.
        state.equal, state.unequal, state.mixed = None, set(), True
        return
    if state.mixed:
        return
    if op in ("=", "in"):
        allowed: set[object] = set(values)
        state.equal = allowed if state.equal is None else state.equal & allowed
    else:
        state.unequal |= set(values)


def satisfiable(term: Term, not_null: frozenset[str] = frozenset()) -> bool:
    """Whether some row makes every known atom of the conjunction TRUE (``not_null`` columns are never NULL)."""
    if term is None:
        return False
    states: dict[str, _Range] = {}
    for atom in term:
        state = states.get(atom.column)
        if state is None:
            state = states[atom.column] = _Range(null=False if atom.column in not_null else None)
        _apply(state, atom)
    return not any(state.empty() for state in states.values())


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the questions below need of one expression; ``terms`` and ``negated`` are None when the
    text does not parse or its normal form grows too large."""

    parsed: bool
    terms: tuple[Term, ...] | None = None
    negated: tuple[Term, ...] | None = None
    comparisons: tuple[Atom, ...] = ()


# Kept in the disk cache as plain values (marshal knows no Decimal): a run that saw the text
# before answers without parsing it.
def _encode(facts: _Facts) -> tuple[Any, ...]:
    def terms(found: tuple[Term, ...] | None) -> Any:
        return None if found is None else tuple(None if t is None else tuple(map(_encode_atom, t)) for t in found)

    return facts.parsed, terms(facts.terms), terms(facts.negated), tuple(map(_encode_atom, facts.comparisons))


def _encode_atom(atom: Atom) -> tuple[str, str, tuple[tuple[str, str | bool, str | None], ...]]:
    return atom.column, atom.op, tuple(("d", str(v.value), v.type) if isinstance(v.value, Decimal)
                                       else ("b" if isinstance(v.value, bool) else "s", v.value, v.type)
                                       for v in atom.values)


def _decode(stored: Any) -> _Facts:
    def terms(found: Any) -> tuple[Term, ...] | None:
        return None if found is None else tuple(None if t is None else tuple(map(_decode_atom, t)) for t in found)

    parsed, positive, negative, compared = stored
    return _Facts(bool(parsed), terms(positive), terms(negative), tuple(map(_decode_atom, compared)))


# Equal atoms as one object: 10,000 tables repeat ``deleted_at IS NULL`` and ``score >= 0``. Keyed by the
# atom itself (an lru_cache keyed by the stored tuple kept those tuples too, ~8 MiB at 10,000 tables).
# Their parts too, for atoms that differ only by column (``score_1 >= 0``, ``score_2 >= 0``): a Decimal and
# its Literal take ~160 bytes, and marshal gives each atom its own column string (~11 MiB of atoms at
# 10,000 tables before, ~6 after).
_ATOMS: dict[Atom, Atom] = {}
_PARTS: dict[object, Any] = {}


def _shared(value: Any) -> Any:
    return _PARTS.setdefault(value, value)


def _decode_atom(stored: Any) -> Atom:
    column, op, values = stored
    try:
        literals = tuple(_shared(Literal(Decimal(value) if kind == "d" else value, type_))
                         for kind, value, type_ in values)
    except InvalidOperation:  # a damaged entry: the cache answers afresh
        raise ValueError(stored) from None
    atom = Atom(_shared(str(column)), _shared(str(op)), _shared(literals))
    return _ATOMS.setdefault(atom, atom)


# Small on purpose: the rules keep verdicts (booleans, cached below), not these trees. Texts many tables
# share (``deleted_at IS NULL``, ``price >= 0``) stay here; a text only one table has is decoded again by
# each rule that asks about it, which costs less than holding the trees of a 10,000-table schema
# (~19 MiB, read by no one once each rule has its verdict).
@lru_cache(maxsize=65536)
@on_disk("predicate_facts", _encode, _decode, sources=ANSWER_SOURCES)
def _facts(text: str) -> _Facts:
    try:
        node = expression_node(text)
    except SqlSyntaxError:
        return _Facts(parsed=False)
    positive, negative = _terms(node), _terms(node, negate=True)
    compared = tuple(atom for atom in map(_atom, walk(node)) if atom is not None and atom.values)
    return _Facts(True, None if positive is None else tuple(positive), None if negative is None else tuple(negative),
                  compared)


@lru_cache(maxsize=65536)
def can_be_true(text: str, not_null: frozenset[str] = frozenset()) -> bool | None:
    """False when no row makes the expression TRUE; None when the text does not parse or is too complex.

    Cached by value: every table of a big schema asks it of ``deleted_at IS NULL`` with the same columns.
    """
    terms = _facts(text).terms
    if terms is None:
        return None
    return any(satisfiable(term, not_null) for term in terms)


@lru_cache(maxsize=65536)
def can_be_false(text: str, not_null: frozenset[str] = frozenset()) -> bool | None:
    """False when no row makes the expression FALSE (a CHECK that rejects nothing)."""
    terms = _facts(text).negated
    if terms is None:
        return None
    return any(satisfiable(term, not_null) for term in terms)


def _allowed_with(true_term: Term, check_term: Term, not_null: frozenset[str]) -> bool:
    """Whether a row makes ``true_term`` TRUE while a CHECK's ``check_term`` is not FALSE.

    A CHECK lets a row pass when its condition is NULL: a comparison on a NULL column is NULL,
    so each column either is NULL (when nothing forbids it) or has a value satisfying both.
    """
    if true_term is None or check_term is None:
        return False
    columns = {atom.column for atom in true_term} | {atom.column for atom in check_term}
    for column in columns:
        mine = tuple(a for a in true_term if a.column == column)
        theirs = tuple(a for a in check_term if a.column == column)
        may_be_null = column not in not_null and all(a.op == "is null" for a in mine) \
            and all(a.op != "is not null" for a in theirs)
        if may_be_null and satisfiable(mine + tuple(a for a in theirs if a.op == "is null")):
            continue
        if not satisfiable(mine + theirs + (Atom(column, "is not null"),), not_null):
            return False
    return True


def both_true(predicate: str, check: str, not_null: frozenset[str] = frozenset()) -> bool | None:
    """False when no row makes ``predicate`` TRUE and passes ``check`` (an index WHERE against a CHECK)."""
    a, b = _facts(predicate).terms, _facts(check).terms
    if a is None or b is None or len(a) * len(b) > _MAX_TERMS:
        return None
    if _term_columns(predicate).isdisjoint(_term_columns(check)):
        # _allowed_with judges each column alone: with no column in common, each side is judged alone
        # (and the predicate's answer, ``deleted_at IS NULL`` on every table, is cached).
        return _alone(predicate, not_null, True) and _alone(check, not_null, False)
    return any(_allowed_with(x, y, not_null) for x in a for y in b)


@lru_cache(maxsize=65536)
def _term_columns(text: str) -> frozenset[str]:
    """The columns the known atoms of the expression's normal form compare."""
    return frozenset(atom.column for term in _facts(text).terms or () if term for atom in term)


@lru_cache(maxsize=65536)
def _alone(text: str, not_null: frozenset[str], as_predicate: bool) -> bool:
    """:func:`both_true`'s verdict on one side when the other side shares no column with it."""
    terms = _facts(text).terms or ()
    if as_predicate:
        return any(_allowed_with(term, (), not_null) for term in terms)
    return any(_allowed_with((), term, not_null) for term in terms)


def comparisons(text: str) -> Iterator[Atom]:
    """Every comparison of a column with constants inside the expression, at any depth."""
    yield from _facts(text).comparisons


def columns_of(term: Term) -> set[str]:
    return set() if term is None else {atom.column for atom in term}


def release() -> None:
    """Forget what this module learnt: lint calls it once its rules ran (the answers of a 10,000-table
    schema hold megabytes that nothing reads afterwards)."""
    for cached in (_facts, can_be_true, can_be_false, _term_columns, _alone):
        cached.cache_clear()
    _ATOMS.clear()
    _PARTS.clear()
