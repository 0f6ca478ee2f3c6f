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
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnDefault,
    AlterColumnGenerated,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnType,
    AlterCompositeType,
    Change,
    ChangePartitioning,
    CreateCompositeType,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreatePartitionHelper,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropCompositeType,
    DropEnum,
    DropExtension,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropPartitionHelper,
    DropPrimaryKey,
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
    ReplaceFunction,
    ReplaceView,
    SetComment,
)
from veza_schema.diff.differ import sort_key
from veza_schema.model import View
from veza_schema.sql.render import order_tables, order_views

# One tuple per phase, in running order.
PHASES: tuple[tuple[type, ...], ...] = (
    (CreateExtension,),
    (CreateEnum, AddEnumValue),
    (AlterCompositeType, CreateCompositeType),
    (RenameTable, RenameFunction),
    (RenameColumn,),
    (RenameConstraint, RenameIndex),
    (DropTrigger,),
    (DropView,),
    (DropForeignKey,),
    (DropCheck, DropUnique, DropIndex),
    (DropPrimaryKey,),
    (DropTable,),
    (DropColumn,),
    (DropFunction,),
    (DropPartitionHelper,),
    (CreatePartitionHelper,),
    (CreateFunction,),  # non-SQL bodies; SQL-language ones are moved after the tables
    (CreateTable,),
    (AddColumn,),
    (AlterColumnType, AlterColumnDefault, AlterColumnNullability, AlterColumnIdentity, AlterColumnGenerated),
    (ChangePartitioning,),
    (RecreateEnum,),
    (AddPrimaryKey,),
    (AddUnique, AddCheck),
    (AddForeignKey,),
    (CreateIndex,),
    (ReplaceFunction,),  # after the tables: SQL bodies are checked at creation
    (CreateView, ReplaceView),
    (CreateTrigger,),
    (SetComment,),
    (DropCompositeType,),
    (DropEnum,),
    (DropExtension,),
)
_RANK: dict[type, int] = {kind: rank for rank, kinds in enumerate(PHASES) for kind in kinds}
_SQL_FUNCTIONS_RANK = _RANK[ReplaceFunction]


def phase(change: Change) -> int:
    """The phase rank of a change (lower runs first)."""
    if isinstance(change, CreateFunction) and change.function.language == "sql":
        return _SQL_FUNCTIONS_RANK
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
