"""Opening an Optuna storage from a URL: SQLite (default), any SQLAlchemy database, journal files.

Accepted URLs:

- ``sqlite:///path/study.db``: one file, the default (``<out>/<name>/study.db``). Fine for one
  process; several processes writing at once contend for SQLite's single write lock.
- ``postgresql://user:password@host/db`` (and ``mysql://``, any SQLAlchemy URL Optuna
  supports): for workers on several machines.
- ``journal:///path/study.log``: Optuna's append-only journal file
  (``JournalStorage(JournalFileBackend)``). Every write is one appended line under a file
  lock, readers replay the log, so many local processes can share it without SQLite's
  "database is locked" errors; a fresh study run with ``--workers N`` uses one in its run
  folder (see :func:`run_folder_storage_url`).

Every message that shows a URL shows it with its password masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from autolr.errors import StudyError
from autolr.redact import redact_text

JOURNAL_SCHEME = "journal://"
SQLITE_SCHEME = "sqlite:///"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
SQLITE_TIMEOUT_S = 60  # how long a SQLite writer waits for the lock before failing
OPEN_ATTEMPTS = 3  # tries at opening a database that other processes are setting up at the same moment


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of a SQLite file (absolute path)."""
    return SQLITE_SCHEME + str(Path(path).resolve())


def journal_url(path: str | Path) -> str:
    """The ``journal:///`` URL of an Optuna journal file (absolute path)."""
    return JOURNAL_SCHEME + str(Path(path).resolve())


def run_folder_storage_url(folder: str | Path, workers: int = 1) -> str:
    """The default storage of the study whose run folder is ``folder``.

    ``study.log`` (a journal file) when it exists or when a fresh study starts with several
    local workers, otherwise ``study.db`` (SQLite). SQLite serialises writers on one lock
    and fails with "database is locked" under many parallel trials, while Optuna's journal
    file appends each write under a file lock, so parallel local workers get the journal.
    A study already stored in ``study.db`` stays there when resumed with workers (SQLite
    waits up to ``SQLITE_TIMEOUT_S`` for its lock; a handful of workers writing one trial
    per epoch stay well inside that) so no study is ever split over two files.
    """
    folder = Path(folder)
    journal, database = folder / "study.log", folder / "study.db"
    if journal.exists() or (workers > 1 and not database.exists()):
        return journal_url(journal)
    return sqlite_url(database)


def open_storage(url: str, reader: bool = False) -> optuna.storages.BaseStorage:
    """The Optuna storage for ``url``; an unsupported URL or unreachable database raises StudyError.

    ``reader``: the caller only reads (a report, a progress poll). On SQLite its transactions
    then begin deferred, so they read a WAL snapshot without taking, or waiting for, the
    write lock that the searching processes share.
    """
    if not isinstance(url, str) or not url:
        raise StudyError("storage must be an Optuna storage URL such as sqlite:///study.db")
    shown = redact_text(url)
    if url.startswith(JOURNAL_SCHEME):
        return _journal_storage(url[len(JOURNAL_SCHEME):], shown)
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if "://" not in url or scheme not in DATABASE_SCHEMES:
        raise StudyError(
            f"unsupported storage URL {shown!r}; use sqlite:///FILE, postgresql://USER@HOST/DB "
            "or journal:///FILE"
        )
    if scheme == "sqlite":
        folder = Path(url[len(SQLITE_SCHEME):]).parent if url.startswith(SQLITE_SCHEME) else None
        if folder is not None and str(folder) not in ("", ".") and not folder.is_dir():
            raise StudyError(f"the folder of storage {shown!r} does not exist")
    engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if scheme == "sqlite" else {}
    if scheme in ("postgresql", "postgres"):
        url = _postgresql_driver(url)
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    for attempt in range(OPEN_ATTEMPTS):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
            break
        except ImportError as error:
            missing = getattr(error.__cause__, "name", None) or error.name or "its driver"
            raise StudyError(
                f"storage {shown!r} needs the database driver {missing!r}, which is not installed") from None
        except Exception as error:  # SQLAlchemy's errors: unreachable server, bad credentials, bad URL
            if attempt + 1 < OPEN_ATTEMPTS and _tables_created_meanwhile(error):
                continue  # another process created Optuna's tables at the same moment: they exist now
            reason = redact_text(str(error).splitlines()[0]) if str(error) else type(error).__name__
            raise StudyError(f"cannot open storage {shown!r}: {reason}") from None
    if scheme == "sqlite":
        _configure_sqlite(storage, begin="BEGIN" if reader else "BEGIN IMMEDIATE")
    return storage


def _postgresql_driver(url: str) -> str:
    """``postgres://`` and ``postgresql://`` with the PostgreSQL driver that is installed:
    SQLAlchemy's default (psycopg 3) when present, else psycopg2."""
    import importlib.util

    head, rest = url.split("://", 1)
    if "+" in head:
        return url
    driver = "" if importlib.util.find_spec("psycopg") else "+psycopg2" if importlib.util.find_spec("psycopg2") else ""
    return f"postgresql{driver}://{rest}"


def _tables_created_meanwhile(error: Exception) -> bool:
    """Whether opening a new database failed because another process created Optuna's tables
    (or their version row) at the same moment, as workers starting together on it do."""
    from sqlalchemy.exc import IntegrityError

    return isinstance(error, IntegrityError) or "already exists" in str(error)


def _configure_sqlite(storage: optuna.storages.RDBStorage, begin: str) -> None:
    """SQLite in WAL mode with ``synchronous=NORMAL``, every transaction begun with ``begin``.

    WAL: each commit is an append, not an fsync (about 10x fewer milliseconds per trial
    report on a plain disk). A killed process loses nothing it committed; only an
    operating-system crash can lose the last commits. Readers (a report built during the
    search) no longer block the writer either.

    ``BEGIN IMMEDIATE``: Python's sqlite3 starts a transaction only at the first write, so
    Optuna's read-then-update of a queued trial (``SELECT ... FOR UPDATE``, which SQLite
    ignores) could let two processes both take the same queued trial (a baseline or a
    retry) and train it twice. Taking the write lock when the transaction begins makes
    that read and update one step (SQLAlchemy's documented recipe for pysqlite). Readers
    begin deferred (``BEGIN``): a poll every 50 ms that queued for the write lock behind
    several workers could wait out a whole search.
    """
    from sqlalchemy import event

    def on_connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # the driver emits no BEGIN of its own; on_begin does
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    event.listen(storage.engine, "connect", on_connect)
    event.listen(storage.engine, "begin", on_begin)
    storage.engine.dispose()  # connections opened before the listeners reconnect with them


def _journal_storage(path_text: str, shown: str) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = Path(path_text)
    if not path_text or path_text.endswith("/"):
        raise StudyError(f"storage {shown!r} must name a journal file, e.g. journal:///runs/study.log")
    if not path.parent.is_dir():
        raise StudyError(f"the folder of storage {shown!r} does not exist")
    try:
        # The open-lock (O_EXCL lock file) works on every file system, NFS included.
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    except OSError as error:
        raise StudyError(f"cannot open storage {shown!r}: {error.strerror or error}") from None
