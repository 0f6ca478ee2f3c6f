"""Reading YAML as positioned nodes, so every problem can name its file, line and column.

PyYAML's ``safe_load`` drops positions and silently keeps the last of duplicate keys;
we compose the node graph instead and read it through these few typed accessors.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from sys import intern

import yaml
import yaml.constructor
import yaml.resolver

from veza_schema.errors import Problem
from veza_schema.model import Meta, Notes, SourcePos


def node_pos(file: str, node: yaml.Node) -> SourcePos:
    return SourcePos(file, node.start_mark.line + 1, node.start_mark.column + 1)


def located_meta(file: str, node: yaml.Node, items: list[tuple[str, yaml.Node, yaml.Node]],
                 notes: Notes | None = None) -> Meta:
    """An object's :class:`Meta`: where it was declared (``node``) and where each of its mapping's values
    was written (``items`` as :meth:`NodeReader.mapping` returns them), packed without a position object."""
    mark = node.start_mark
    numbers = [mark.line + 1, mark.column + 1]
    for _, _, value in items:
        value_mark = value.start_mark
        numbers += (value_mark.line + 1, value_mark.column + 1)
    return Meta.packed(file, tuple([key for key, _, _ in items]), numbers, notes)


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _construct(node: yaml.Node) -> object:
    """A scalar node's value by PyYAML's safe constructor, which is then made to forget the node.

    The constructor remembers every node it constructed (for aliases within one document): kept
    for the whole run, it held every non-string scalar node of every file, ~15 MB at 10,000 tables.
    """
    try:
        return _CONSTRUCTOR.construct_object(node, deep=True)
    finally:
        _CONSTRUCTOR.constructed_objects.clear()


# libyaml's parser when PyYAML has it (about ten times faster); same nodes and positions.
_STR_TAG = "tag:yaml.org,2002:str"
_SEQUENCE_TAG = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_MAPPING_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_BASE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """Remembers how each plain scalar resolves: schemas repeat `uuid`, `true`, `now()` thousands of times."""

    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                tag = self._plain_tags.get(value)
                if tag is None:
                    tag = self._plain_tags[value] = super().resolve(kind, value, implicit)
                return tag
        elif not self.yaml_path_resolvers:  # none is registered: a list or mapping is just that
            return _SEQUENCE_TAG if kind is yaml.SequenceNode else _MAPPING_TAG
        return str(super().resolve(kind, value, implicit))


_LOADER = _Loader


@dataclass
class NodeReader:
    """Typed access to one file's nodes; problems are collected, never raised one by one."""

    file: str
    problems: list[Problem]
    # One SourcePos per place in the file: a table's name is where it is declared and where its
    # model says it is; sharing them saves objects in the model and in the load cache.
    _positions: dict[tuple[int, int], SourcePos] = field(default_factory=dict, repr=False)

    def pos(self, node: yaml.Node) -> SourcePos:
        mark = node.start_mark
        place = (mark.line, mark.column)
        found = self._positions.get(place)
        if found is None:
            found = self._positions[place] = SourcePos(self.file, mark.line + 1, mark.column + 1)
        return found

    def problem(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(Problem(self.pos(node) if node is not None else SourcePos(self.file, 1, 1),
                                     message))

    def scalar(self, node: yaml.Node) -> object:
        """A scalar's Python value (str, int, float, bool, None)."""
        if node.tag == _STR_TAG:  # the common case, without the constructor's bookkeeping
            return intern(node.value)  # `uuid`, `now()`, `cascade`: one string each, not one per table
        return _construct(node)

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]] | None:
        """Items of a mapping as (key, key node, value node); duplicates and non-string keys reported."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping, got {describe(node)}")
            return None
        try:  # the common case: plain keys (a list or mapping as a key has a list value: TypeError), no two alike
            items = [(intern(key_node.value), key_node, value_node) for key_node, value_node in node.value]
        except TypeError:
            pass
        else:
            if len({key for key, _, _ in items}) == len(items):
                return items
        items = []
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, f"{what}: keys must be plain names")
                continue
            key = intern(str(key_node.value))  # keys repeat in every object and the model keeps them
            if key in seen:
                first = self.pos(seen[key])
                self.problem(key_node, f"duplicate key '{key}' in {what} (first declared at line {first.line})")
                continue
            seen[key] = key_node
            items.append((key, key_node, value_node))
        return items

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{what} must be a list, got {describe(node)}")
            return None
        return list(node.value)

    def string(self, node: yaml.Node, what: str, *, allow_scalars: bool = False) -> str | None:
        """A text value; with ``allow_scalars`` a bare number or boolean becomes its SQL text."""
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"{what} must be a string, got {describe(node)}")
            return None
        value = self.scalar(node)
        if isinstance(value, str):
            return value
        if allow_scalars and isinstance(value, bool):
            return "true" if value else "false"
        if allow_scalars and isinstance(value, int | float):
            return str(node.value)
        if value is None:
            self.problem(node, f"{what} must not be empty")
            return None
        self.problem(node, f"{what} must be a string, got {describe(node)}")
        return None

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, bool):
            self.problem(node, f"{what} must be true or false, got {describe(node)}")
            return None
        return value

    def integer(self, node: yaml.Node, what: str) -> int | None:
        value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(node, f"{what} must be an integer, got {describe(node)}")
            return None
        return value

    def string_list(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]] | None:
        """A list of strings, or a single string taken as a one-item list."""
        if isinstance(node, yaml.ScalarNode):
            text = self.string(node, what)
            return None if text is None else [(text, node)]
        items = self.sequence(node, what)
        if items is None:
            return None
        out: list[tuple[str, yaml.Node]] = []
        for item in items:
            text = self.string(item, f"item of {what}", allow_scalars=True)
            if text is not None:
                out.append((text, item))
        return out

    def check_keys(self, items: list[tuple[str, yaml.Node, yaml.Node]], allowed: tuple[str, ...],
                   what: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        """Yield known keys; report unknown ones with a suggestion."""
        for key, key_node, value_node in items:
            if key in allowed:
                yield key, key_node, value_node
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of: {', '.join(allowed)}"
            self.problem(key_node, f"unknown key '{key}' in {what}{hint}")


def describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = _construct(node)
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {node.value!r}"


def read_bytes(path: Path) -> bytes | None:
    """A file's bytes, or None when it cannot be read (:func:`compose_file` then says why)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def compose_file(path: Path, display: str, problems: list[Problem], data: bytes | None = None) -> yaml.Node | None:
    """Parse one file (``data``: its bytes, when already read) into nodes; a syntax error becomes a located problem."""
    try:
        if data is None:
            data = path.read_bytes()
        # Decoded as Path.read_text decodes (universal newlines), from the very bytes a cache key was made of.
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(SourcePos(display, 1, 1), f"cannot read file: {exc}"))
        return None
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = SourcePos(display, mark.line + 1, mark.column + 1) if mark else SourcePos(display, 1, 1)
        problems.append(Problem(pos, f"invalid YAML: {exc.problem or exc.context}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(SourcePos(display, 1, 1), f"invalid YAML: {exc}"))
        return None
    # An explicit tag needs a '!': files without one (nearly all) skip the walk.
    if node is not None and "!" in text:
        bad = list(_tag_problems(display, node))
        if bad:
            problems.extend(bad)
            return None
    return node


# The tags PyYAML's safe constructor knows (str, int, bool, null, float, timestamp, binary, map, seq,
# set, omap, pairs) and the merge key: anything else (``!!python/name:...``, ``!custom``) is refused.
STANDARD_TAGS: frozenset[str] = frozenset(
    {tag for tag in yaml.constructor.SafeConstructor.yaml_constructors if tag} | {"tag:yaml.org,2002:merge"})


def _tag_problems(display: str, root: yaml.Node) -> Iterator[Problem]:
    """Every node with a tag outside :data:`STANDARD_TAGS`, or a standard tag its text does not fit."""
    stack = [root]
    seen: set[int] = set()  # aliases share nodes: visit each once (an alias bomb stays linear)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in STANDARD_TAGS:
            yield Problem(node_pos(display, node), f"unsupported YAML tag {_short_tag(node.tag)!r}: only plain "
                                                   "values, lists and mappings are read (no !! or ! tags)")
            continue
        if isinstance(node, yaml.ScalarNode):
            try:
                _construct(node)
            except (yaml.YAMLError, ValueError, TypeError) as exc:
                reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
                yield Problem(node_pos(display, node), f"invalid {_short_tag(node.tag)} value: {reason}")
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
