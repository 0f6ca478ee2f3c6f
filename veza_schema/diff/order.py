"""Dependency order of changes: its own pass, after the diff.

Why phases plus local sorts: PostgreSQL's dependencies between object kinds are fixed
(a trigger needs its function and table, a view its tables, a column its enum), so each
change gets a phase rank; inside a phase, tables follow their foreign keys
(:func:`veza_schema.sql.render.order_tables`) and views follow the views they read. Drops of
dependents come before drops of what they depend on, creates the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddEnumValue,
    AddExclusion,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnCollation,
    AlterColumnDefault,
    AlterColumnGenerated,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnStatistics,
    AlterColumnType,
    AlterCompositeType,
    AlterDefaultPrivileges,
    AlterExtension,
    AlterGrants,
    AlterRole,
    AlterRowSecurity,
    AlterSequence,
    AlterTablePersistence,
    Change,
    ChangePartitioning,
    CreateCompositeType,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreateNamespace,
    CreatePartitionHelper,
    CreatePolicy,
    CreateRole,
    CreateSequence,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropCompositeType,
    DropEnum,
    DropExclusion,
    DropExtension,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropNamespace,
    DropPartitionHelper,
    DropPolicy,
    DropPrimaryKey,
    DropRole,
    DropSequence,
    DropTable,
    DropTrigger,
    DropUnique,
    DropView,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameFunction,
    RenameIndex,
    RenameTable,
    ReorderColumns,
    ReplaceFunction,
    ReplaceView,
    SetComment,
    SetSequenceOwner,
)
from veza_schema.diff.differ import sort_key
from veza_schema.model import View
from veza_schema.sql.render import order_tables, order_views


class _ReleaseSequence:
    """Phase marker: a :class:`SetSequenceOwner` to no owner runs with the drops, before its table goes."""


# One tuple per phase, in running order.
PHASES: tuple[tuple[type, ...], ...] = (
    (CreateRole, AlterRole),  # grants, policies and default privileges name them
    (CreateNamespace,),
    (CreateExtension, AlterExtension),
    (CreateEnum, AddEnumValue),
    (AlterCompositeType, CreateCompositeType),
    (CreateSequence, AlterSequence),  # before the defaults that draw from them
    (RenameTable, RenameFunction),
    (RenameColumn,),
    (RenameConstraint, RenameIndex),
    (DropPolicy,),
    (DropTrigger,),
    (DropView,),
    (DropForeignKey,),
    (DropCheck, DropUnique, DropIndex, DropExclusion),
    (DropPrimaryKey,),
    (_ReleaseSequence,),  # OWNED BY NONE, so the sequence outlives its table or column until its own drop
    (DropTable,),
    (DropColumn,),
    (DropFunction,),
    (DropPartitionHelper,),
    (CreatePartitionHelper,),
    (CreateFunction,),  # non-SQL bodies; SQL-language ones are moved after the tables
    (CreateTable,),
    (AddColumn, ReorderColumns),
    (AlterColumnType, AlterColumnDefault, AlterColumnNullability, AlterColumnIdentity, AlterColumnGenerated,
     AlterColumnCollation, AlterColumnStatistics),
    (SetSequenceOwner,),  # OWNED BY table.column, once the column exists
    (AlterTablePersistence,),
    (ChangePartitioning,),
    (RecreateEnum,),
    (AddPrimaryKey,),
    (AddUnique, AddCheck, AddExclusion),
    (AddForeignKey,),
    (CreateIndex,),
    (ReplaceFunction,),  # after the tables: SQL bodies are checked at creation
    (CreateView, ReplaceView),
    (CreateTrigger,),
    (AlterRowSecurity,),
    (CreatePolicy,),  # after functions, tables and views their expressions may read
    (AlterGrants,),
    (SetComment,),
    (AlterDefaultPrivileges,),
    (DropSequence,),  # after the defaults that drew from them changed
    (DropCompositeType,),
    (DropEnum,),
    (DropExtension,),
    (DropNamespace,),
    (DropRole,),
)
_RANK: dict[type, int] = {kind: rank for rank, kinds in enumerate(PHASES) for kind in kinds}
_SQL_FUNCTIONS_RANK = _RANK[ReplaceFunction]


def phase(change: Change) -> int:
    """The phase rank of a change (lower runs first)."""
    if isinstance(change, CreateFunction) and change.function.language == "sql":
        return _SQL_FUNCTIONS_RANK
    if isinstance(change, SetSequenceOwner) and change.after is None:
        return _RANK[_ReleaseSequence]
    return _RANK[type(change)]


def order_changes(changes: Sequence[Change]) -> list[Change]:
    """``changes`` in an order PostgreSQL accepts (pure, deterministic).

    Example:
        >>> [type(c).__name__ for c in order_changes([CreateTrigger(t), CreateFunction(f)])]  # doctest: +SKIP
        ['CreateFunction', 'CreateTrigger']
    """
    created = {c.table.name: c.table for c in changes if isinstance(c, CreateTable)}
    dropped = {c.table.name: c.table for c in changes if isinstance(c, DropTable)}
    create_rank = {name: i for i, name in enumerate(order_tables(created).tables)}
    drop_rank = {name: -i for i, name in enumerate(order_tables(dropped).tables)}
    new_views = _views(changes, dropping=False)
    old_views = _views(changes, dropping=True)
    view_rank = {name: i for i, name in enumerate(order_views(new_views))}
    view_drop_rank = {name: -i for i, name in enumerate(order_views(old_views))}

    def key(change: Change) -> tuple[int, int, tuple[str, str]]:
        local = 0
        if isinstance(change, CreateTable):
            local = create_rank[change.table.name]
        elif isinstance(change, DropTable):
            local = drop_rank[change.table.name]
        elif isinstance(change, CreateView):
            local = view_rank[change.view.name]
        elif isinstance(change, ReplaceView):
            local = view_rank[change.after.name]
        elif isinstance(change, DropView):
            local = view_drop_rank[change.view.name]
        elif isinstance(change, AddColumn):
            local = change.position
        return phase(change), local, sort_key(change)

    return sorted(changes, key=key)


def _views(changes: Sequence[Change], dropping: bool) -> dict[str, View]:
    """Views created (or dropped) by the changes, keyed by name, for :func:`order_views`."""
    found: dict[str, View] = {}
    for change in changes:
        if dropping and isinstance(change, DropView) or not dropping and isinstance(change, CreateView):
            found[change.view.name] = change.view
        elif not dropping and isinstance(change, ReplaceView):
            found[change.after.name] = change.after
    if dropping:
        # A snapshot keeps no depends_on: borrow it from a view of the same name being created.
        borrowed = _views(changes, dropping=False)
        found = {n: v if v.depends_on or n not in borrowed else borrowed[n] for n, v in found.items()}
    return found
