"""Engine tuning per backend."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Engine, event

T = TypeVar("T")


def engine_options(
    url: str, *, synchronous_commit: bool = True, application_name: str = "cms"
) -> dict[str, Any]:
    """Engine settings; ``synchronous_commit=False`` is for the delivery workers only.

    Every worker transaction can be lost in a crash without losing anything:
    a lost relay leaves its events unrelayed (relayed again, same webhook ids),
    a lost outcome leaves its delivery leased (sent again when the lease
    expires). So workers do not wait for the WAL flush; the API, whose commits
    hold what editors wrote, always does.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    # Pre-ping: a connection the server dropped (restart, failover, pg_terminate_backend)
    # is replaced at checkout instead of failing the request or the worker's round.
    # It costs a round trip per checkout; reads of one article take the ReadPool instead.
    connect_args: dict[str, Any] = {"application_name": application_name}
    if not synchronous_commit:
        connect_args["options"] = "-c synchronous_commit=off"
    return {
        "pool_size": 10,
        "max_overflow": 10,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }


class ReadPool:
    """Idle autocommit psycopg connections for single-statement reads (PostgreSQL).

    ``GET /articles/{id}`` is the hottest request and a single prepared
    statement; taking a connection from SQLAlchemy's pool (events, reset,
    bookkeeping) cost about a tenth of it. Connections here are plain psycopg
    ones in a queue: a broken one is discarded (and the read retried once on a
    fresh connection), and none is kept longer than ``max_age`` seconds.
    """

    def __init__(
        self, url: str, *, max_idle: int = 16, max_age: float = 1800.0, application_name: str = "cms"
    ) -> None:
        from sqlalchemy.engine import make_url

        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.application_name = application_name
        self.max_idle = max_idle
        self.max_age = max_age
        self._idle: queue.SimpleQueue[tuple[float, Any]] = queue.SimpleQueue()

    def _take(self) -> tuple[float, Any, bool]:
        while True:
            try:
                born, conn = self._idle.get_nowait()
            except queue.Empty:
                import psycopg

                conn = psycopg.connect(self.dsn, autocommit=True, application_name=self.application_name)
                return time.monotonic(), conn, True
            if conn.closed or time.monotonic() - born > self.max_age:
                conn.close()
                continue
            return born, conn, False

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)``; retried once on a new connection if a pooled one was dead."""
        import psycopg

        born, conn, fresh = self._take()
        try:
            result = work(conn)
        except psycopg.OperationalError:
            conn.close()
            if fresh:
                raise
            # The server dropped it, and most likely every other idle one with it
            # (a restart, pg_terminate_backend): retry on a new connection.
            self.close()
            born, conn, fresh = self._take()
            try:
                result = work(conn)
            except psycopg.Error:
                conn.close()
                raise
        except psycopg.Error:
            conn.close()
            raise
        except BaseException:
            self._give_back(born, conn)  # a domain error (e.g. not found): the connection is fine
            raise
        self._give_back(born, conn)
        return result

    def _give_back(self, born: float, conn: Any) -> None:
        if conn.closed or self._idle.qsize() >= self.max_idle:
            conn.close()
        else:
            self._idle.put((born, conn))

    def close(self) -> None:
        while True:
            try:
                _born, conn = self._idle.get_nowait()
            except queue.Empty:
                return
            conn.close()


def read_pool(url: str, application_name: str = "cms") -> ReadPool | None:
    """The pool for single-statement reads on PostgreSQL (``None`` elsewhere)."""
    return ReadPool(url, application_name=application_name) if url.startswith("postgresql") else None


# Whether transactions begun in this context may write. Requests that only read
# (GET, HEAD) set it False: on SQLite they then begin DEFERRED and read from a WAL
# snapshot, never queueing behind a writer.
may_write: ContextVar[bool] = ContextVar("cms_may_write", default=True)


def configure_sqlite(engine: Engine, *, durable: bool = True) -> None:
    """WAL, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction that may write.

    pysqlite's own transaction handling starts transactions late and breaks
    savepoints; taking the write lock at ``BEGIN`` means a read-then-write
    transaction can never fail on a stale snapshot, and writers simply queue
    (busy timeout) instead of erroring. SQLite ignores ``FOR UPDATE``, so
    this is also what serialises two editors saving one article. Read-only
    requests (``may_write`` False) begin DEFERRED instead: WAL readers do not wait.

    ``durable``: ``synchronous=FULL``, so an acknowledged commit survives a power
    loss (in WAL mode NORMAL may lose the last ones). Workers pass False, as they
    turn off synchronous_commit on PostgreSQL: what they write can be redone.
    """
    synchronous = "FULL" if durable else "NORMAL"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if may_write.get() else "BEGIN")
