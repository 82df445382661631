"""Shared test fixtures: Ctrl-C as a terminal delivers it, and a real PostgreSQL server on loopback.

A shell's background job (``cmd &`` in a script) starts with SIGINT ignored, and Python then
leaves it ignored, so the Ctrl-C tests would see nothing; ``ctrl_c_raises`` restores Python's
own handler for the session (subprocesses started from it get the default again).


``postgres_url`` gives each test its own fresh database on one server that the session starts
from Debian's ``postgresql`` binaries (``initdb`` + ``pg_ctl`` in a temporary data folder, on
127.0.0.1 and a free port) and stops at the end. The URL carries a password, so tests can
check that it never leaks. Without the binaries the tests that need the server are skipped
with the reason, except in CI (``CI`` set), where they fail: CI installs PostgreSQL.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_USER = "autolr"
POSTGRES_PASSWORD = "pg-Secret-7319"  # distinctive, so a leak is easy to grep for
_database_numbers = itertools.count()


@pytest.fixture(autouse=True)
def torch_threads_restored() -> Iterator[None]:
    """Each test ends with torch's thread count as it began (when torch is loaded): a CLI command run in-process
    that set 2 threads and kept them once made every later in-process training test many times slower on a busy
    2-core machine (threads spinning on cores other work holds)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_raises() -> None:
    """SIGINT raises KeyboardInterrupt here and reaches subprocesses, however the suite was started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and how to reach it as the test user."""

    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server, password included."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg2

        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database}"')
        connection.close()
        return self.url(database)


def postgres_bin_dir() -> Path | None:
    """The folder of the newest installed PostgreSQL server binaries, or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(Path(path).parent.name.split(".")[0])
    )
    candidates = [path for path in candidates if os.access(Path(path) / "initdb", os.X_OK)]
    if candidates:
        return Path(candidates[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session on 127.0.0.1 (password authentication only)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install Debian's postgresql package")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="autolr-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres", group="postgres")
    data, socket_dir, password_file = root / "data", root / "socket", root / "password"
    password_file.write_text(POSTGRES_PASSWORD + "\n")
    socket_dir.mkdir()
    if os.geteuid() == 0:
        for path in (password_file, socket_dir):
            shutil.chown(path, user="postgres", group="postgres")
    port = _free_port()
    server = PostgresServer("127.0.0.1", port, POSTGRES_USER, POSTGRES_PASSWORD)
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        _run([
            str(bin_dir / "initdb"), "-D", str(data), "-U", POSTGRES_USER, f"--pwfile={password_file}",
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        ])
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "-t", "60", "start"])
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL did not start: {error}")
        pytest.skip(f"PostgreSQL did not start: {error}")
    try:
        yield server
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL (with password) of a fresh, empty database on the session's server."""
    return postgres_server.create_database(f"test_{os.getpid()}_{next(_database_numbers)}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the server carry the ``postgres`` marker (``-m 'not postgres'`` skips them)."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
