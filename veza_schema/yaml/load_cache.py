"""What the loader read from each schema file, kept on disk between runs.

Why: at 10,000 tables, composing the YAML and reading it into the model is most of a
``lint --offline`` run, and most runs see the same files as the run before. Keyed by a hash of
a file's bytes, a warm run takes the file's objects from the cache and composes no YAML.

- What is kept: one file's objects as the loader read them alone (:func:`veza_schema.yaml.loader.
  load_schema` merges them with the other files' and resolves references across files afterwards).
  Only files read without a problem are kept: a file with problems is read from YAML every time,
  so its messages are always the loader's own. A large schema's files are read by forked workers
  too (:mod:`veza_schema.yaml.workers`): each writes its files' entries and hands the parent the
  very bytes it wrote, which the parent loads as it would load the entry.
- Key: the file's bytes, the path it is shown as and its module stem (positions name the file).
- Where: the parse cache's directory (:func:`veza_schema.sql.parse_cache.default_directory`),
  one entry per file version, ``load-<fingerprint>-<key>.pickle``: files ``0600`` in a ``0700``
  directory, written whole under a temporary name and renamed into place (a reader sees an old
  entry or a new one, never half of one). An unreadable entry counts as absent. ``VEZA_NO_CACHE=1``
  turns it off.
- Shrinking: entries of any fingerprint unused for 30 days are removed at the end of a run that
  wrote one (:func:`veza_schema.sql.parse_cache.remove_unused`, the parse cache's age rule). An
  entry's mtime is its last use: a hit sets it to now when it is a day old or more (atime is not
  kept on noatime or relatime mounts), so a warm run touches each entry at most once a day.
- Invalidation: the entry's name carries a fingerprint of the tool's version, the source of every
  module loading runs (``yaml/``, ``sql/``, the model, types, errors and managed names), PyYAML's and pglast's
  versions and the Python version: any change starts new entries.
- Format: pickle, because the objects are frozen dataclasses (about 50 per table) and pickle
  rebuilds them in C; marshalled tuples walked in Python to rebuild them took 1.5 times as long
  (500 tables: 0.13 s against 0.085 s CPU, medians of 5).
  It is not pickle of arbitrary classes: the pickler refuses any object but plain values, the
  dataclasses it is given (each reduced to ``cls(*fields)``), read-only mappings and the model's
  packed positions (:class:`veza_schema.model.Meta`, its layouts); the unpickler resolves no other
  name, so loading an entry can only run those dataclasses' ``__init__`` (field assignments),
  :func:`veza_schema.model.meta_from`, :func:`veza_schema.model.position_layout` and
  ``MappingProxyType``. A damaged or foreign entry is a miss. The directory is the user's own.
- Opt-in: the library reads YAML only; the CLI calls :func:`enable` and :func:`disable`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

import veza_schema
from veza_schema import model
from veza_schema.sql.parse_cache import NO_CACHE_ENV, default_directory, read_in_use, remove_unused, untrusted

FORMAT = 1
PROTOCOL = 5
_PACKAGE = Path(veza_schema.__file__).parent
# The modules whose code decides what loading a file gives (their source is in the fingerprint).
_SOURCES = ("model.py", "types.py", "errors.py", "managed.py", "yaml/*.py", "sql/*.py")


def fingerprint(version: str = veza_schema.__version__) -> str:
    """What every entry depends on besides the file itself."""
    digest = hashlib.sha256(f"{FORMAT}\0{version}\0{sys.implementation.cache_tag}\0{yaml.__version__}\0"
                            f"{getattr(yaml, '__with_libyaml__', False)}\0".encode())
    for pattern in _SOURCES:
        for source in sorted(_PACKAGE.glob(pattern)):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
    spec = importlib.util.find_spec("pglast")
    if spec is not None and spec.origin:
        digest.update(Path(spec.origin).read_bytes())  # holds pglast's __version__
    return digest.hexdigest()[:20]


def _mapping_proxy(items: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(items)


def _model_classes() -> tuple[type, ...]:
    return tuple(value for value in vars(model).values()
                 if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == model.__name__)


def _field_reducer(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """``obj`` -> ``(cls, (field values...))``: rebuilt by the class's own ``__init__``."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    if any(not f.init for f in dataclasses.fields(cls)) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__qualname__} cannot be rebuilt from its fields")
    if len(names) == 1:
        (name,) = names
        return lambda obj: (cls, (getattr(obj, name),))
    values = attrgetter(*names)  # one C call for every field
    return lambda obj: (cls, values(obj))


def _meta_arguments(meta: model.Meta) -> tuple[Any, ...]:
    """Its layout (pickled once per file by pickle's memo, rebuilt as the process's shared one) and numbers."""
    return model.meta_from, (meta.layout, meta.numbers())


def _layout_arguments(layout: model.PositionLayout) -> tuple[Any, ...]:
    return model.position_layout, (layout.file, layout.located, layout.keys, layout.width, layout.notes)


class Codec:
    """Pickling restricted to plain values and the given dataclasses (the model's are always given)."""

    def __init__(self, classes: Iterable[type] = ()) -> None:
        self.reducers = _Reducers({cls: _field_reducer(cls) for cls in (*_model_classes(), *classes)})
        self.reducers[MappingProxyType] = lambda proxy: (_mapping_proxy, (dict(proxy),))
        self.reducers[model.Meta] = _meta_arguments
        self.reducers[model.PositionLayout] = _layout_arguments
        self.names: dict[tuple[str, str], Any] = {(cls.__module__, cls.__qualname__): cls for cls in self.reducers
                                                  if cls not in (MappingProxyType, model.Meta, model.PositionLayout)}
        self.names.update({(rebuild.__module__, rebuild.__qualname__): rebuild
                           for rebuild in (_mapping_proxy, model.meta_from, model.position_layout)})

    def dumps(self, value: Any) -> bytes:
        out = io.BytesIO()
        _Pickler(out, self.reducers).dump(value)
        return out.getvalue()

    def loads(self, data: bytes) -> Any:
        return _Unpickler(io.BytesIO(data), self.names).load()


class _Reducers(dict[type, Callable[[Any], Any]]):
    """The pickler's dispatch table: an object of any class but these is refused, not pickled by name.

    Plain values (str, int, float, bytes, tuple, list, dict, set, frozenset, None, bools) and
    classes (by name) are written by pickle before this table is consulted; the unpickler still
    resolves only the allowed names."""

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        raise pickle.PicklingError(f"not kept in the load cache: {cls.__qualname__}")


class _Pickler(pickle.Pickler):
    def __init__(self, out: io.BytesIO, reducers: _Reducers) -> None:
        super().__init__(out, protocol=PROTOCOL)
        self.dispatch_table = reducers


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: io.BytesIO, names: dict[tuple[str, str], Any]) -> None:
        super().__init__(data)
        self._names = names

    def find_class(self, module: str, name: str) -> Any:
        found = self._names.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the load cache")
        return found


class LoadCache:
    """Entries keyed by a schema file's bytes, read and written one file each."""

    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.hits = 0
        self.misses = 0  # a run that missed wrote entries (or tried to): it prunes (see prune)

    @staticmethod
    def key(display: str, stem: str, data: bytes) -> str:
        digest = hashlib.blake2b(f"{display}\0{stem}\0".encode(), digest_size=16)
        digest.update(data)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / f"load-{self.fingerprint}-{key}.pickle"

    def get(self, key: str, codec: Codec) -> Any:
        """The stored value, or None (absent, damaged, or holding anything but the codec's classes)."""
        try:
            value = codec.loads(read_in_use(self.path(key)))
        except Exception:  # noqa: BLE001 - absent, damaged or foreign: only a miss; YAML is read instead
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any, codec: Codec) -> None:
        """Store one entry; never raises (a cache that cannot be written only costs time)."""
        data = encode(value, codec)
        if data is not None:
            self.write(key, data)

    def write(self, key: str, data: bytes) -> None:
        """Store one entry already encoded by :func:`encode`; never raises."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".load-", dir=self.directory)  # 0600
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, self.path(key))
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            pass

    def prune(self) -> None:
        """Remove the entries no run used for 30 days, when this run wrote some: once, after every read
        (pruning first could remove an old entry this run was about to read, and renew)."""
        if self.misses:
            remove_unused(self.directory, "load-", ".pickle")


def encode(value: Any, codec: Codec) -> bytes | None:
    """An entry's bytes, or None when ``value`` holds an object the codec refuses."""
    try:
        return codec.dumps(value)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


_active: LoadCache | None = None


def enable(directory: Path | None = None, version: str = veza_schema.__version__) -> LoadCache | None:
    """Use the load cache in this process (None when ``VEZA_NO_CACHE`` is set or the directory is not
    private to this user: :func:`veza_schema.sql.parse_cache.enable` has warned about it)."""
    global _active
    directory = directory or default_directory()
    if os.environ.get(NO_CACHE_ENV) or untrusted(directory):
        return None
    _active = LoadCache(directory, fingerprint(version))
    return _active


def disable() -> None:
    """Stop using the cache, pruning it (:meth:`LoadCache.prune`): the CLI calls it once, at the end of a run."""
    global _active
    if _active is not None:
        _active.prune()
    _active = None


def active() -> LoadCache | None:
    return _active


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No entry read or written meanwhile: for files whose path is new every run (a git ref's temporary
    copy), whose entries would never be read again."""
    global _active
    kept, _active = _active, None
    try:
        yield
    finally:
        _active = kept
