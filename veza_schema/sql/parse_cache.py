"""What :mod:`veza_schema.sql.parse` learnt about a SQL text, kept on disk between runs.

Why: most runs of ``lint`` (or ``check``, ``generate``) see the same few hundred expressions
as the run before. Keyed by a hash of each text (as ruff keys its cache by file content), a
warm run answers from one small file and never loads the parser at all.

- Where: ``$VEZA_CACHE_DIR``, else ``$XDG_CACHE_HOME/veza-schema``, else ``~/.cache/veza-schema``:
  out of the checkout, per user (directory ``0700``, files ``0600``). ``VEZA_NO_CACHE=1`` turns it off.
  A directory another user owns or may write to is not used (:func:`untrusted`): cached answers
  stand in for checks.
- Invalidation: the file's name carries a fingerprint of the tool's version, the parse module's
  own source, pglast's version and the Python version; any change starts a new file.
- Concurrent runs: each run writes a complete new file and renames it into place (atomic on
  POSIX), merging what another run saved meanwhile; a reader sees an old or a new file, never
  half of one. An unreadable file counts as empty.
- Format: ``marshal`` of a pair: a dict from key to the ``marshal`` bytes of one answer (plain
  values: str, bool, None, tuples, frozensets; loading never runs code, unlike pickle), ordered
  by the day (since the epoch, UTC) a run last used each answer, and those days as ``(day, count)``
  spans. Loading the file makes one bytes object per answer; an answer is unpacked when a run
  asks for it (at 10,000 tables a run holds ~30,000 answers: unpacking them all up front cost
  more than parsing the few it needs). The spans cost nothing to load, unlike a day per key.
- Shrinking: an answer no run used for :data:`STALE_AFTER_DAYS` is dropped when a run saves the
  file, and other fingerprints' files (other versions: never read again) are removed by the same
  age rule (:func:`remove_unused`, which the load cache's entries go through too). A run that
  only reads renews the answers it used when their day is not today, so a warm run rewrites the
  file at most once a day; on other runs a hit costs one lookup in an empty set.
- Opt-in: the library caches in memory only; the CLI calls :func:`enable` and :func:`save`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import time
from collections.abc import Callable, Sequence
from functools import wraps
from itertools import islice, pairwise
from pathlib import Path
from typing import Any, TypeVar

import veza_schema

FORMAT = 3
CACHE_DIR_ENV = "VEZA_CACHE_DIR"
NO_CACHE_ENV = "VEZA_NO_CACHE"
MISSING = object()  # what DiskCache.get answers for a key it has no (readable) answer for
STALE_AFTER_DAYS = 30  # what no run used for this long is removed when a run writes
DAY = 86400  # seconds

T = TypeVar("T")


def default_directory() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veza-schema"


def untrusted(directory: Path) -> str | None:
    """Why ``directory`` may not hold our cache, or None when it may.

    Cached answers stand in for checks (an expression's route verdict, the statements that can
    destroy data): whoever can write the directory could make those checks pass. So, as ssh does
    for its keys, a directory another user owns or may write to is not used at all. A directory
    that does not exist yet is fine: it is created ``0700``."""
    try:
        status = directory.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not stat.S_ISDIR(status.st_mode):
        return "is not a directory"
    if status.st_uid != os.geteuid():
        return f"belongs to another user (uid {status.st_uid})"
    if status.st_mode & 0o022:
        return f"is writable by others (mode {stat.S_IMODE(status.st_mode):04o})"
    return None


def remove_unused(directory: Path, prefix: str, suffix: str) -> None:
    """Remove the files ``prefix*suffix`` of ``directory`` (and the temporaries ``.prefix*`` a killed
    run left) not modified for :data:`STALE_AFTER_DAYS`: the age rule of every cache in the directory.

    Cheap at tens of thousands of files: one ``scandir`` and one ``lstat`` each, no file opened.
    Never raises: a file another run removed meanwhile, or one this user may not remove, stays
    as it is (a cache that cannot be pruned only costs disk)."""
    cutoff = time.time() - STALE_AFTER_DAYS * DAY
    temporary = "." + prefix
    try:
        with os.scandir(directory) as listing:
            for entry in listing:
                name = entry.name
                if (name.startswith(prefix) and name.endswith(suffix)) or name.startswith(temporary):
                    with contextlib.suppress(OSError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
    except OSError:
        pass


def read_in_use(path: Path) -> bytes:
    """A cache file's bytes, marking it in use for :func:`remove_unused`: its mtime is set to now when it
    is a day old or more (atime is not kept on noatime or relatime mounts), so a warm run touches each
    file at most once a day. A file that cannot be marked (a read-only cache) is still read.

    Raises:
        OSError: the file cannot be read (absent: FileNotFoundError).
    """
    with open(path, "rb") as file:
        data = file.read()
        if os.fstat(file.fileno()).st_mtime < time.time() - DAY:
            with contextlib.suppress(OSError):
                os.utime(file.fileno())
    return data


def fingerprint(version: str = veza_schema.__version__) -> str:
    """What every cached answer depends on besides the text itself."""
    digest = hashlib.sha256(f"{FORMAT}\0{version}\0{sys.implementation.cache_tag}\0".encode())
    digest.update(Path(__file__).with_name("parse.py").read_bytes())
    spec = importlib.util.find_spec("pglast")
    if spec is not None and spec.origin:
        digest.update(Path(spec.origin).read_bytes())  # holds pglast's __version__
    return digest.hexdigest()[:20]


class DiskCache:
    """Answers keyed by (kind, text), loaded from one file on first use, written back by :meth:`save`."""

    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory = directory
        self.path = directory / f"parse-{fingerprint}.marshal"
        self.today = int(time.time() // DAY)
        self._entries: dict[bytes, bytes] | None = None
        self._renewable: set[bytes] = set()  # keys last used before today: a hit stamps them today
        self._added: dict[bytes, bytes] = {}  # new answers, and those a hit renewed: what save writes
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(kind: str, text: str) -> bytes:
        return hashlib.blake2b(f"{kind}\0{text}".encode(), digest_size=16).digest()

    @property
    def entries(self) -> dict[bytes, bytes]:
        """Each answer's marshal bytes, by key."""
        if self._entries is None:
            self._entries, spans = _read(self.path)
            before_today = sum(count for day, count in spans if day < self.today)  # the first ones: by day
            if before_today:
                self._renewable = set(islice(self._entries, before_today))
        return self._entries

    def get(self, key: bytes) -> Any:
        """The stored answer, or :data:`MISSING` (absent or damaged)."""
        packed = self.entries.get(key)
        if packed is None:
            return MISSING
        if key in self._renewable:
            self._renewable.discard(key)
            self._added[key] = packed
        try:
            return marshal.loads(packed)
        except (EOFError, ValueError, TypeError):
            return MISSING

    def put(self, key: bytes, value: Any) -> None:
        packed = marshal.dumps(value)
        self.entries[key] = packed
        self._added[key] = packed

    def save(self) -> None:
        """Write new and renewed answers, if any, merged with what is on disk now, without the answers
        no run used for :data:`STALE_AFTER_DAYS`; then remove old files (:func:`remove_unused`). Never raises."""
        if not self._added:
            return
        import tempfile  # only a run that learnt or renewed something writes

        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            entries, spans = _read(self.path)
            handle, temporary = tempfile.mkstemp(prefix=".parse-", dir=self.directory)
            try:
                with os.fdopen(handle, "wb") as out:
                    marshal.dump(_used_lately(entries, spans, self._added, self.today), out)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._added.clear()
            remove_unused(self.directory, "parse-", ".marshal")
        except OSError:
            pass  # a cache that cannot be written only costs time


Spans = tuple[tuple[int, int], ...]  # (day, how many answers a run last used that day), oldest first


def _used_lately(entries: dict[bytes, bytes], spans: Spans, used_today: dict[bytes, bytes], today: int
                 ) -> tuple[dict[bytes, bytes], Spans]:
    """What a saved file holds: the answers of ``entries`` (read with ``spans``) used in the last
    :data:`STALE_AFTER_DAYS` days, and ``used_today`` as used today; ordered by day, with their spans."""
    oldest = today - STALE_AFTER_DAYS
    by_day: dict[int, dict[bytes, bytes]] = {}
    days = (day for day, count in spans for _ in range(count))
    for (key, packed), day in zip(entries.items(), days, strict=True):
        if day >= oldest and key not in used_today:
            by_day.setdefault(day, {})[key] = packed
    by_day.setdefault(today, {}).update(used_today)
    kept: dict[bytes, bytes] = {}
    for day in sorted(by_day):
        kept.update(by_day[day])
    return kept, tuple((day, len(by_day[day])) for day in sorted(by_day))


def _read(path: Path) -> tuple[dict[bytes, bytes], Spans]:
    """The file's answers and their days' spans; a missing, unreadable or damaged file is empty."""
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return {}, ()
    if not (isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], dict) and isinstance(data[1], tuple)):
        return {}, ()
    entries, spans = data
    if not (all(isinstance(span, tuple) and len(span) == 2 and type(span[0]) is type(span[1]) is int and span[1] >= 0
                for span in spans)
            and all(earlier[0] < later[0] for earlier, later in pairwise(spans))
            and sum(count for _, count in spans) == len(entries)):
        return {}, ()
    return entries, spans


_active: DiskCache | None = None


def enable(directory: Path | None = None, version: str = veza_schema.__version__) -> DiskCache | None:
    """Use the disk cache in this process (None when ``VEZA_NO_CACHE`` is set, or when the directory
    is not private to this user: then a warning says so and every answer is worked out afresh)."""
    global _active
    if os.environ.get(NO_CACHE_ENV):
        return None
    directory = directory or default_directory()
    reason = untrusted(directory)
    if reason:
        from veza_schema.errors import printable

        print(printable(f"veza-schema: warning: not using the cache in {directory}: it {reason}; "
                        f"make it private (chmod 700, owned by you) or set {CACHE_DIR_ENV}"), file=sys.stderr)
        return None
    _active = DiskCache(directory, fingerprint(version))
    return _active


def learnt() -> dict[bytes, bytes]:
    """The answers this process added to the enabled cache or renewed (a loading worker hands them to its parent)."""
    return dict(_active._added) if _active is not None else {}


def adopt(answers: dict[bytes, bytes]) -> None:
    """Take answers another process of this run learnt (:func:`learnt`), to be saved with this one's."""
    if _active is not None and answers:
        _active.entries.update(answers)
        _active._added.update(answers)


def save_and_disable() -> None:
    global _active
    if _active is not None:
        _active.save()
    _active = None


def on_disk(kind: str, encode: Callable[[T], Any], decode: Callable[[Any], T], *, sources: Sequence[Path] = ()
            ) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Decorate a pure function of one SQL text so its answers are kept in the enabled disk cache.

    ``sources``: the files holding the function's logic besides ``parse.py`` (which the file's
    fingerprint covers already); their bytes are part of every key, so an edit re-answers.
    """
    kinds: list[str] = []  # the kind with the sources' digest, made on first cached use

    def decorate(function: Callable[[str], T]) -> Callable[[str], T]:
        @wraps(function)
        def cached(text: str) -> T:
            cache = _active
            if cache is None:
                return function(text)
            if not kinds:
                kinds.append(_with_sources(kind, sources))
            key = DiskCache.key(kinds[0], text)
            stored = cache.get(key)
            if stored is not MISSING:
                try:
                    value = decode(stored)
                except (TypeError, ValueError):  # a damaged entry: answer afresh
                    pass
                else:
                    cache.hits += 1
                    return value
            cache.misses += 1
            value = function(text)
            cache.put(key, encode(value))
            return value

        return cached

    return decorate


def _with_sources(kind: str, sources: Sequence[Path]) -> str:
    if not sources:
        return kind
    digest = hashlib.blake2b(digest_size=8)
    for source in sources:
        digest.update(source.read_bytes())
    return f"{kind}@{digest.hexdigest()}"

